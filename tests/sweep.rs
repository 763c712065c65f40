//! Sweeps: grid expansion, validation before any work, shards merged equal one unsharded run
//! row for row, and a resume after a kill loses and repeats nothing.

use std::path::{Path, PathBuf};

use icq::sweep::{expand, merge, sweep, Shard};

const CONFIG: &str = "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
    [learner]\nnetwork = \"tabular\"\nstep_size = { inverse = { alpha = 1.0, t0 = 100 } }\n\
    [run]\ninstances = 5\nepochs = 600\ncheckpoints = 2\nbackend = \"cpu\"\n\
    [sweep]\ninterface_noise = [0.0, 0.2, 0.4]\nwidth = [4, 8]\nseeds = [1, 2]\n";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("icq-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(d: &Path, text: &str) -> PathBuf {
    let p = d.join("sweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `width` needs an MLP: the grid uses one.
fn mlp(text: &str) -> String {
    text.replace(
        "network = \"tabular\"",
        "network = { mlp = { width = 4, depth = 1 } }",
    )
    .replace(
        "step_size = { inverse = { alpha = 1.0, t0 = 100 } }",
        "step_size = { constant = { alpha = 0.05 } }",
    )
}

#[test]
fn grid_expands_in_canonical_order() {
    let units = expand(&mlp(CONFIG), Path::new("sweep.toml")).unwrap();
    assert_eq!(units.len(), 3 * 2 * 2);
    // Axes in name order (interface_noise, width), the last fastest; seeds innermost.
    let u = &units[5];
    assert_eq!((u.point, u.seed), (2, 2));
    assert_eq!(u.values[0].1.as_float(), Some(0.2));
    assert_eq!(u.values[1].1.as_integer(), Some(4));
    assert!((u.input.model.options[0].artifact_transition[0][0] >= 0.0));
    assert_eq!(u.input.config.run.seed, 2);
    assert!(units.iter().enumerate().all(|(i, u)| u.index == i));
}

#[test]
fn bad_axes_fail_before_any_work() {
    let cases = [
        ("[sweep]\nlazyness = [0.5]\n", "sweep.lazyness"),
        (
            "[sweep]\nlaziness = 0.5\n",
            "sweep.laziness: expected a non-empty list",
        ),
        ("[sweep]\nlaziness = [0.5, 0.0]\n", "model.laziness"),
        ("[sweep]\nseeds = [-1]\n", "sweep.seeds"),
        ("[sweep]\n\"learner.network.mlp.widht\" = [4]\n", "widht"),
    ];
    for (sweep_table, want) in cases {
        let d = dir("bad");
        let text = CONFIG.split("[sweep]").next().unwrap().to_string() + sweep_table;
        let path = config(&d, &text);
        let out = d.join("out");
        let err = sweep(&path, &out, None, false, None, false)
            .err()
            .expect("a bad sweep fails")
            .to_string();
        assert!(err.contains(want), "expected {want:?} in {err:?}");
        assert!(
            !out.join("parts").exists(),
            "work was done before the error"
        );
    }
}

#[test]
fn shards_merge_into_the_unsharded_run() {
    let d = dir("shards");
    let path = config(&d, &mlp(CONFIG));
    let whole = d.join("whole");
    let report = sweep(&path, &whole, None, false, None, false).unwrap();
    assert_eq!(report.rows, 12 * 2, "one row per unit and checkpoint");
    let shards: Vec<PathBuf> = (1..=3).map(|k| d.join(format!("shard{k}"))).collect();
    for (k, out) in shards.iter().enumerate() {
        let r = sweep(
            &path,
            out,
            Some(Shard { k: k + 1, n: 3 }),
            false,
            None,
            false,
        )
        .unwrap();
        assert_eq!(r.mine, 4);
    }
    // A merge with a shard missing says so.
    let err = merge(&shards[..2], &d.join("partial"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("4 of 12 units have no results"), "{err}");
    let merged = d.join("merged");
    assert_eq!(merge(&shards, &merged).unwrap(), 24);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(
        read(&whole.join("results.csv")),
        read(&merged.join("results.csv"))
    );
    assert_eq!(
        read(&whole.join("results.jsonl")),
        read(&merged.join("results.jsonl"))
    );
}

#[test]
fn resume_after_a_kill_loses_and_repeats_nothing() {
    let d = dir("resume");
    let path = config(&d, &mlp(CONFIG));
    let reference = d.join("reference");
    sweep(&path, &reference, None, false, None, false).unwrap();
    // A run killed in the middle: some units finished, one half-written temporary file, no
    // results yet.
    let killed = d.join("killed");
    std::fs::create_dir_all(killed.join("parts")).unwrap();
    let finished = [0usize, 1, 4];
    for u in finished {
        let name = format!("unit-{u:06}.jsonl");
        std::fs::copy(
            reference.join("parts").join(&name),
            killed.join("parts").join(&name),
        )
        .unwrap();
    }
    std::fs::write(killed.join("parts/unit-000002.jsonl.partial"), "{\"trunc").unwrap();
    let modified = || -> Vec<_> {
        finished
            .iter()
            .map(|u| {
                std::fs::metadata(killed.join(format!("parts/unit-{u:06}.jsonl")))
                    .unwrap()
                    .modified()
                    .unwrap()
            })
            .collect()
    };
    let before = modified();
    // Without --resume the folder is refused; with it the sweep finishes.
    assert!(sweep(&path, &killed, None, false, None, false).is_err());
    let r = sweep(&path, &killed, None, true, None, false).unwrap();
    assert_eq!((r.units, r.skipped), (12, 3));
    let after = modified();
    assert_eq!(before, after, "a finished unit was run again");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(
        read(&reference.join("results.csv")),
        read(&killed.join("results.csv"))
    );
}

#[test]
fn shard_from_text_and_environment() {
    assert_eq!(Shard::parse("2/5").unwrap(), Shard { k: 2, n: 5 });
    for bad in ["0/3", "4/3", "x/3", "3"] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
    let s = Shard { k: 2, n: 3 };
    assert_eq!(
        (0..9).filter(|&u| s.takes(u)).collect::<Vec<_>>(),
        vec![1, 4, 7]
    );
}
