//! The oracle against an independent recomputation, in NumPy, of every figure `icq oracle
//! --json` writes (`scripts/check_oracle.py`, written from the design's definitions, not from
//! this code), on the models of `tests/oracle_models/`:
//! - synthetic ones with geometric, fixed and Poisson durations, laziness, interface noise up to
//!   1, private weight up to 2, lazy and reset samplers and pipelines (`L*.toml`, `s*.toml`);
//! - random model files with 2–3 agents, interfaces of different sizes, terminal options,
//!   sparse kernels, several closed classes and unreachable states (`r*.json`, run with samplers
//!   and pipelines by `f*.toml`);
//! - slowly drained transient states (`t*.json`: μ is zero there however slowly the mass
//!   leaves, which a threshold on μ got wrong).
//!
//! Every figure must agree to 1e-8 relative (absolute below 1e-4, since figures that are exactly
//! zero come out of value iteration at rounding level). Needs python3 with NumPy: without them
//! the test says so and passes, unless `ICQ_REQUIRE_NUMPY=1` (CI) makes it fail.

use std::path::Path;
use std::process::Command;

#[test]
fn every_oracle_figure_agrees_with_numpy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let required = std::env::var("ICQ_REQUIRE_NUMPY").is_ok_and(|v| v == "1");
    let numpy = Command::new("python3")
        .args(["-c", "import numpy, tomllib"])
        .output();
    if !numpy.is_ok_and(|o| o.status.success()) {
        assert!(
            !required,
            "ICQ_REQUIRE_NUMPY=1 but python3 with NumPy (and tomllib, Python 3.11+) is not there"
        );
        eprintln!("skipped: python3 with NumPy is not there (pip install numpy)");
        return;
    }
    let dir = root.join("tests/oracle_models");
    let mut models: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            // The r*.json files are run through the f*.toml configs that name them.
            name.ends_with(".toml") || (name.ends_with(".json") && !name.starts_with('r'))
        })
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    models.sort();
    assert!(models.len() >= 16, "{models:?}");
    let out = Command::new("python3")
        .arg(root.join("scripts/check_oracle.py"))
        .args(["--icq", env!("CARGO_BIN_EXE_icq"), "--rtol", "1e-8"])
        .args(&models)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One block per model, every figure checked.
    assert_eq!(text.matches("joint states").count(), models.len(), "{text}");
    assert!(
        text.contains("ais_bound") && text.contains("spectral_gap"),
        "{text}"
    );
}
