//! The command line: model export round trips, the oracle's JSON, and bad input — each kind
//! of mistake gets its own message naming the field, exit code 2, and never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use icq::model::{load_model_file, ModelFile};
use serde_json::{json, Value};

fn icq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_icq"))
        .args(args)
        .output()
        .expect("the icq binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("icq-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A valid model file as JSON (the two-agent model of `common`).
fn valid_json() -> Value {
    serde_json::to_value(ModelFile::from(common::two_agent_model())).unwrap()
}

#[test]
fn export_then_load_round_trips() {
    let dir = scratch("export");
    let cfg = dir.join("m.toml");
    std::fs::write(
        &cfg,
        "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\nprivate_states = 2\n\
         interface_noise = 0.2\nduration = { poisson = { mean = 2.5 } }\nmodel_seed = 3\n",
    )
    .unwrap();
    let out = dir.join("model.json");
    let o = icq(&[
        "model",
        "export",
        cfg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let loaded = load_model_file(&out).unwrap();
    let built = icq::config::load_input(&cfg).unwrap().model;
    assert_eq!(loaded, built);
    // The model file is itself accepted wherever a config is.
    let o = icq(&["model", "check", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("64 joint states"));
}

#[test]
fn oracle_writes_json_in_canonical_order() {
    let dir = scratch("json");
    let model = dir.join("model.json");
    std::fs::write(&model, valid_json().to_string()).unwrap();
    let out = dir.join("oracle.json");
    let o = icq(&[
        "oracle",
        model.to_str().unwrap(),
        "--json",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("t_mix(1/4)") && stdout.contains("ε_φ"),
        "{stdout}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let states: Vec<Vec<u64>> = serde_json::from_value(doc["states"].clone()).unwrap();
    // h major, then x, then p_0, p_1 (the last fastest); S = 1, M = (1, 2).
    assert_eq!(
        states,
        vec![
            vec![0, 0, 0, 0],
            vec![0, 0, 0, 1],
            vec![1, 0, 0, 0],
            vec![1, 0, 0, 1]
        ]
    );
    let q: Vec<Vec<f64>> = serde_json::from_value(doc["q_star"].clone()).unwrap();
    assert!((q[0][0] - 5.05).abs() < 1e-9, "Q*(0,0) = {}", q[0][0]);
    for key in [
        "mu",
        "t_mix",
        "spectral_gap",
        "eps_phi",
        "delta_phi",
        "q_star_obs",
        "interface_term",
    ] {
        assert!(!doc[key].is_null(), "missing {key}");
    }
    assert_eq!(doc["q_star_obs"].as_array().unwrap().len(), 4);
}

/// Writes `doc` as a model file, runs `icq oracle` and `icq model check` on it, and checks
/// both fail with exit code 2 and a message containing `want`.
fn rejects(name: &str, doc: &str, want: &str) {
    let dir = scratch("bad");
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, doc).unwrap();
    for cmd in [["oracle"], ["model"]] {
        let args: Vec<&str> = if cmd[0] == "model" {
            vec!["model", "check", path.to_str().unwrap()]
        } else {
            vec!["oracle", path.to_str().unwrap()]
        };
        let o = icq(&args);
        let err = stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{name}: exit code {:?}, stderr {err}",
            o.status
        );
        assert!(err.contains(want), "{name}: expected {want:?} in {err:?}");
        assert!(!err.contains("panicked"), "{name}: panic: {err}");
    }
}

fn mutated(f: impl FnOnce(&mut Value)) -> String {
    let mut v = valid_json();
    f(&mut v);
    v.to_string()
}

#[test]
fn bad_model_files_name_their_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("not-json", "{ this is not json".into(), "line 1"),
        (
            "format",
            mutated(|v| v["format"] = json!("icq-model/0")),
            "model.format",
        ),
        (
            "unknown-key",
            mutated(|v| v["colour"] = json!(1)),
            "unknown field `colour`",
        ),
        (
            "missing-key",
            mutated(|v| {
                v.as_object_mut().unwrap().remove("gamma");
            }),
            "missing field `gamma`",
        ),
        (
            "gamma",
            mutated(|v| v["gamma"] = json!(1.0)),
            "model.gamma: expected 0 < gamma < 1",
        ),
        (
            "row-sum",
            mutated(|v| v["options"][0]["private_transition"][1] = json!([0.9, 0.07])),
            "model.options[0].private_transition[1]: row sums to 0.97",
        ),
        (
            "negative",
            mutated(|v| v["options"][0]["private_transition"][0] = json!([-0.5, 1.5])),
            "model.options[0].private_transition[0][0]",
        ),
        (
            "executor",
            mutated(|v| v["options"][2]["executor"] = json!(5)),
            "model.options[2].executor",
        ),
        (
            "shape",
            mutated(|v| v["options"][1]["reward"] = json!([[0.5, 0.1]])),
            "model.options[1].reward[0]: expected 1 entries, found 2",
        ),
        (
            "duration-mean",
            mutated(|v| v["options"][0]["duration"] = json!({"geometric": {"mean": 0.5}})),
            "model.options[0].duration.mean",
        ),
        (
            // Its per-step stop threshold ⌊2³²/mean⌋ would be 0: an option that never ends.
            "duration-mean-huge",
            mutated(|v| v["options"][0]["duration"] = json!({"geometric": {"mean": 1e12}})),
            "model.options[0].duration.mean: expected a geometric mean ≤ 10000",
        ),
        (
            "duration-steps",
            mutated(|v| v["options"][3]["duration"] = json!({"fixed": {"steps": 0}})),
            "model.options[3].duration.steps",
        ),
        (
            "duration-kind",
            mutated(|v| v["options"][0]["duration"] = json!({"uniform": {"mean": 2}})),
            "unknown variant `uniform`",
        ),
        (
            "action-options-row",
            mutated(|v| v["action_options"][1] = json!([0])),
            "model.action_options[1]: expected 2 entries",
        ),
        (
            "action-options-index",
            mutated(|v| v["action_options"][0][1] = json!(9)),
            "model.action_options[0][1]: expected an option index below 4",
        ),
        (
            "interface-length",
            mutated(|v| v["agents"][1]["interface"] = json!([0, 0])),
            "model.agents[1].interface: expected 1 entries",
        ),
        (
            "interface-gap",
            mutated(|v| {
                v["artifact_states"] = json!(1);
                v["agents"][0]["interface"] = json!([1]);
            }),
            "model.agents[0].interface",
        ),
        (
            "initial-agent",
            mutated(|v| v["initial"]["agent"] = json!(2)),
            "model.initial.agent",
        ),
        (
            "initial-private",
            mutated(|v| v["initial"]["private"] = json!([[1.0]])),
            "model.initial.private: expected 2 laws",
        ),
        (
            "initial-artifact",
            mutated(|v| v["initial"]["artifact"] = json!([0.5])),
            "model.initial.artifact: row sums to 0.5",
        ),
        (
            "private-states",
            mutated(|v| v["agents"][0]["private_states"] = json!(0)),
            "model.agents[0].private_states",
        ),
        (
            "joint-states",
            mutated(|v| v["agents"][0]["private_states"] = json!(100_000_000)),
            "model.agents: 2 agents",
        ),
        (
            "huge-reward",
            mutated(|v| v["options"][0]["reward"][0][0] = json!(1e308)),
            "model.options[0].reward[0][0]",
        ),
    ];
    assert!(cases.len() >= 10);
    for (name, doc, want) in cases {
        rejects(name, &doc, want);
    }
}

#[test]
fn bad_configs_name_their_key() {
    let dir = scratch("cfg");
    let cases = [
        (
            "unknown",
            "[model]\nlazyness = 0.5\n",
            "unknown field `lazyness`",
        ),
        ("table", "[modle]\nagents = 2\n", "unknown field `modle`"),
        (
            "divisor",
            "[model]\nartifact_states = 10\ninterface_states = 4\n",
            "model.interface_states",
        ),
        ("laziness", "[model]\nlaziness = 0.0\n", "model.laziness"),
        (
            "noise",
            "[model]\ninterface_noise = 1.5\n",
            "model.interface_noise",
        ),
        ("type", "[model]\nagents = \"three\"\n", "invalid type"),
        (
            "bare-variant",
            "[learner]\nstep_size = \"constant\"\n",
            "step_size = \"constant\" takes settings: write step_size = { constant = { … } }",
        ),
        ("builder", "[model]\nbuilder = \"maze\"\n", "model.builder"),
        (
            "sampler",
            "[learner]\nsampler = { lazy = { rho = 1.5 } }\n",
            "learner.sampler.lazy.rho",
        ),
        (
            "file-and-knobs",
            "[model]\nfile = \"m.json\"\nagents = 2\ngamma = 0.5\n",
            "model.file: a model file takes no builder and no knobs, and this [model] table also sets agents, gamma",
        ),
        (
            "missing-file",
            "[model]\nfile = \"nowhere.json\"\n",
            "nowhere.json: No such file",
        ),
        // A config named as a model file (this very one): what a model file is.
        (
            "toml-model-file",
            "[model]\nfile = \"toml-model-file.toml\"\n",
            "a model file is JSON in the icq-model/1 format",
        ),
        (
            "checkpoints-fraction",
            "[run]\ncheckpoints = 2.5\n",
            "expected a count of checkpoints (a whole number ≥ 1) or a list of epochs",
        ),
        (
            "checkpoints-negative",
            "[run]\ncheckpoints = [-5]\n",
            "expected a count of checkpoints (a whole number ≥ 1) or a list of epochs",
        ),
        // Sizes are checked before anything is allocated, and their products cannot wrap
        // (33 agents with 4 private states each once wrapped to 0 joint states).
        (
            "wrapping-joint-states",
            "[model]\nagents = 33\nprivate_states = 4\nartifact_states = 1\ninterface_states = 1\n",
            "model.private_states: 33 agents",
        ),
        (
            "huge-artifact",
            "[model]\nartifact_states = 18446744073709551615\ninterface_states = 1\n",
            "model.artifact_states",
        ),
        (
            "huge-private",
            "[model]\nprivate_states = 4000000000\n",
            "model.private_states",
        ),
        ("many-agents", "[model]\nagents = 1000000\n", "model.agents"),
        (
            "huge-tables",
            "[model]\nagents = 2\nartifact_states = 40000\ninterface_states = 1\n",
            "model.artifact_states",
        ),
        (
            "huge-private-tables",
            "[model]\nagents = 1\nartifact_states = 1\ninterface_states = 1\nprivate_states = 65536\n",
            "model.private_states: 1 agents × (1 artifact states, 65536 private states)",
        ),
        // Under every model limit, but the oracle's dense per-option system would need 32 GiB.
        (
            "huge-option-system",
            "[model]\nagents = 1\nartifact_states = 256\ninterface_states = 1\nprivate_states = 256\n",
            "model.options[0]: its executor's local space has 256 artifact × 256 private",
        ),
        (
            "huge-rewards",
            "[model]\nreward_scale = 1e300\n",
            "model.reward_scale",
        ),
        (
            "pipeline-length",
            "[run]\npipeline = [1, 2]\n",
            "run.pipeline: expected one action per agent (3), found 2",
        ),
        (
            "pipeline-action",
            "[model]\nagents = 2\n[run]\npipeline = [1, 2]\n",
            "run.pipeline[1]: expected an action below 2, found 2",
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let o = icq(&["oracle", path.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected {want:?} in {err:?}");
    }
    let o = icq(&[
        "oracle",
        Path::new("/nonexistent/config.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    // The I/O cause is printed once, beside the path.
    assert_eq!(stderr(&o).matches("os error").count(), 1, "{}", stderr(&o));
    let o = icq(&["oracle"]);
    assert_eq!(o.status.code(), Some(2), "a missing argument is bad input");
}

#[test]
fn failed_export_leaves_nothing_behind() {
    let dir = scratch("atomic");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[model]\ngamma = 2.0\n").unwrap();
    let out = dir.join("never.json");
    let o = icq(&[
        "model",
        "export",
        bad.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists(), "a failed export wrote {}", out.display());
}

/// A tabular two-agent sweep over `seeds` (a TOML list), a fraction of a second, at `dir/c.toml`.
fn tiny_sweep(dir: &Path, seeds: &str) -> PathBuf {
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\nagents = 2\nartifact_states = 4\ninterface_states = 2\n\
             [learner]\nnetwork = \"tabular\"\n[run]\ninstances = 2\nepochs = 50\n\
             backend = \"cpu\"\n[sweep]\nseeds = {seeds}\n"
        ),
    )
    .unwrap();
    config
}

/// An output folder that cannot be one is refused before any training, naming `--out`.
#[test]
fn unwritable_out_fails_before_training() {
    let dir = scratch("out");
    let config = tiny_sweep(&dir, "[0, 1]");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("sub");
    let to = |command: &str, out: &Path| {
        icq(&[
            command,
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    for command in ["run", "sweep"] {
        for out in [&file, &under_file] {
            let o = to(command, out);
            let err = stderr(&o);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{command} {}: {err}",
                out.display()
            );
            assert!(err.contains("--out: "), "{err}");
            assert!(
                !String::from_utf8_lossy(&o.stdout).contains("trained"),
                "{err}"
            );
        }
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");

    // A folder where a results file goes is refused before training, and none of the three
    // files is written.
    for (command, stem) in [("run", "checkpoints"), ("sweep", "results")] {
        let out = dir.join(format!("blocked-{command}"));
        std::fs::create_dir_all(out.join(format!("{stem}.parquet"))).unwrap();
        let o = to(command, &out);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{command}: {err}");
        assert!(err.contains("is in the way"), "{err}");
        assert!(!out.join(format!("{stem}.csv")).exists(), "{command}");
        assert!(!out.join("parts").exists(), "{command}: nothing ran");
    }
}

/// A sweep whose figure cannot be drawn from its results still writes them, then fails
/// (exit 1) saying so, so that scripts notice.
#[test]
fn a_figure_not_drawn_fails_the_sweep() {
    let dir = scratch("figure-fails");
    let config = tiny_sweep(&dir, "[0, 1]");
    let text = std::fs::read_to_string(&config).unwrap()
        + "[[figure]]\nx = \"epoch\"\ny = \"q_err\"\nwhere = { epoch = 7 }\n";
    std::fs::write(&config, text).unwrap();
    let out = dir.join("out");
    let o = icq(&[
        "sweep",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the filter epoch=7 keeps no row"), "{err}");
    assert!(err.contains("1 of 1 figures not drawn"), "{err}");
    assert!(out.join("results.csv").exists() && out.join("manifest.json").exists());
}

/// `icq run` on a sweep config runs its base settings once and says that it leaves the grid
/// aside.
#[test]
fn run_warns_of_a_sweep_table() {
    let dir = scratch("run-sweep");
    let config = tiny_sweep(&dir, "[0, 1]");
    let o = icq(&["run", config.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("has a [sweep] table, which `icq run` leaves aside"),
        "{err}"
    );
    let o = icq(&["bench", config.to_str().unwrap(), "--json"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("has a [sweep] table, which `icq bench` leaves aside: this benches"),
        "{err}"
    );
}

/// A bad flag is refused by its name before any work: an unknown backend, and a folder
/// where `oracle --json` writes a file.
#[test]
fn bad_flags_name_themselves() {
    let dir = scratch("flags");
    let config = tiny_sweep(&dir, "[0]");
    let c = config.to_str().unwrap();
    for command in ["run", "sweep", "bench"] {
        let o = icq(&[command, c, "--backend", "gpu"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{command}: {err}");
        assert!(err.contains("'gpu' for '--backend"), "{command}: {err}");
    }
    let o = icq(&["oracle", c, "--json", dir.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--json: ") && err.contains("is a folder, not a file"),
        "{err}"
    );
}

/// The hint for a variant named bare is given only there, not for a wrong value inside a
/// variant's table.
#[test]
fn settings_hint_only_for_bare_variants() {
    let dir = scratch("hint");
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        "[learner]\nbehavior = { epsilon_greedy = \"x\" }\n",
    )
    .unwrap();
    let o = icq(&["run", config.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("expected struct variant"), "{err}");
    assert!(!err.contains("takes settings"), "{err}");
}

/// More instances than the machine's memory holds are refused before anything is allocated
/// (which would abort the process), naming `run.instances`, by every command that trains.
/// 4·10⁹ instances of a width-64 MLP need tens of terabytes.
#[test]
fn instances_beyond_memory_are_refused() {
    if icq::io::available_memory().is_none() {
        eprintln!("skipped: this system does not say how much memory is available");
        return;
    }
    let dir = scratch("memory");
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
         [learner]\nnetwork = { mlp = { width = 64, depth = 1 } }\n\
         [run]\ninstances = 4000000000\nepochs = 10\nbackend = \"cpu\"\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let sweep_config = dir.join("s.toml");
    let text = std::fs::read_to_string(&config).unwrap() + "[sweep]\nseeds = [0, 1]\n";
    std::fs::write(&sweep_config, text).unwrap();
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    for args in [
        vec!["run", c, "--out", o],
        vec!["bench", c],
        vec!["sweep", sweep_config.to_str().unwrap(), "--out", o],
    ] {
        let run = icq(&args);
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("run.instances")
                && err.contains("4000000000 instances need about")
                && err.contains("more than the"),
            "{args:?}: {err}"
        );
        assert!(!out.join("parts").exists(), "{args:?}: nothing ran");
        assert!(!out.join("checkpoints.csv").exists(), "{args:?}");
        if args[0] == "run" {
            // `icq run` makes its folder only to write its files.
            assert!(!out.exists(), "{args:?}: no empty folder is left");
        }
    }
}

/// Every config and model file under `examples/` loads and validates (a sweep: every grid
/// point and figure).
#[test]
fn examples_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("toml" | "json")
        ) {
            icq::config::load_input(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("[sweep") {
                // Every grid point of a sweep validates, and so do its figures.
                icq::sweep::expand(&text, &path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let table: toml::Table = toml::from_str(&text).unwrap();
                icq::plot::figures_of(&table).unwrap();
            }
            seen += 1;
        }
    }
    assert!(seen >= 2, "only {seen} examples");
}

#[test]
fn run_writes_one_row_per_instance_and_checkpoint() {
    let dir = scratch("run");
    let cfg = dir.join("run.toml");
    std::fs::write(
        &cfg,
        "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\ninterface_noise = 0.1\n\
         [learner]\nnetwork = { mlp = { width = 8, depth = 1 } }\nstep_size = { constant = { alpha = 0.05 } }\n\
         [run]\ninstances = 5\nepochs = 300\ncheckpoints = [100, 300]\nseed = 3\nbackend = \"cpu\"\n\
         pipeline = [1, 0]\n",
    )
    .unwrap();
    let out = dir.join("out");
    let o = icq(&[
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("q_err_obs") && stdout.contains("backend    cpu"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(out.join("checkpoints.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for col in [
        "interface_noise",
        "mode",
        "width",
        "eps_phi",
        "delta_phi",
        "t_mix",
        "interface_term",
        "ais_bound",
        "interface_error_sup",
        "q_star_norm",
        "checkpoint",
        "epoch",
        "instance",
        "q_err",
        "q_err_obs",
        "q_err_sup",
        "policy_gap",
        "mean_tau",
        "mean_abs_y",
        "updates_0",
        "updates_1",
    ] {
        assert!(header.contains(&col), "missing column {col}");
    }
    assert_eq!(lines.count(), 10, "5 instances × 2 checkpoints");
    let jsonl = std::fs::read_to_string(out.join("checkpoints.jsonl")).unwrap();
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[9]["epoch"], 300);
    assert_eq!(rows[9]["instance"], 4);
    let updates = rows[9]["updates_0"].as_u64().unwrap() + rows[9]["updates_1"].as_u64().unwrap();
    assert_eq!(updates, 300, "one update per epoch");
    // The fixed handoff order's exact gap (the oracle's for [1, 0]) is beside every row.
    let model = icq::config::load_input(&cfg).unwrap().model;
    let options = icq::oracle::OracleOptions {
        pipeline: Some(vec![1, 0]),
        ..Default::default()
    };
    let exact = icq::oracle::Oracle::new(&model)
        .unwrap()
        .analyze(&options)
        .unwrap()
        .pipeline_policy_gap
        .unwrap();
    let gap = rows[0]["pipeline_policy_gap"].as_f64().expect("a gap");
    assert!(
        (gap - exact).abs() <= 1e-12 * exact.abs(),
        "{gap} ≠ {exact}"
    );
    assert!(rows
        .iter()
        .all(|r| r["pipeline_policy_gap"] == rows[0]["pipeline_policy_gap"]));
}

#[test]
fn bench_reports_json() {
    let dir = scratch("bench");
    let cfg = dir.join("b.toml");
    std::fs::write(
        &cfg,
        "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n",
    )
    .unwrap();
    let o = icq(&[
        "bench",
        cfg.to_str().unwrap(),
        "--instances",
        "33",
        "--epochs",
        "20",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["instances"], 33);
    assert_eq!(v["backend"], "cpu");
    assert!(v["handoff_updates_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["primitive_steps_per_s"].as_f64().unwrap() > 0.0);
    // The CPU reports no memory bandwidth of its own: no roofline without --peak-bandwidth.
    assert!(
        v["peak_gb_per_s"].is_null() && v["roofline_fraction"].is_null(),
        "{v}"
    );
    let traffic = |v: &Value| {
        v["bytes_per_update"].as_f64().unwrap() * v["handoff_updates_per_s"].as_f64().unwrap() / 1e9
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b;
    assert!(
        close(v["modeled_gb_per_s"].as_f64().unwrap(), traffic(&v)),
        "{v}"
    );

    let args = ["bench", cfg.to_str().unwrap(), "--epochs", "20", "--json"];
    let o = icq(&[&args[..], &["--peak-bandwidth", "250"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["peak_gb_per_s"], 250.0);
    let fraction = v["roofline_fraction"].as_f64().unwrap();
    assert!(close(fraction, traffic(&v) / 250.0), "{v}");
    for bad in ["0", "-3", "nan", "inf"] {
        let o = icq(&[&args[..], &["--peak-bandwidth", bad]].concat());
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--peak-bandwidth"), "{}", stderr(&o));
    }
}

#[test]
fn bad_learner_and_run_keys_name_their_key() {
    let dir = scratch("learner");
    let cases = [
        (
            "mode",
            "[learner]\nmode = \"telepathic\"\n",
            "unknown variant `telepathic`",
        ),
        (
            "width",
            "[learner]\nnetwork = { mlp = { width = 0, depth = 1 } }\n",
            "learner.network.mlp.width",
        ),
        (
            "depth",
            "[learner]\nnetwork = { mlp = { width = 8, depth = 3 } }\n",
            "learner.network.mlp.depth",
        ),
        (
            "alpha",
            "[learner]\nstep_size = { constant = { alpha = -1.0 } }\n",
            "learner.step_size.constant.alpha",
        ),
        (
            "epsilon",
            "[learner]\nbehavior = { epsilon_greedy = { epsilon = 2.0 } }\n",
            "learner.behavior.epsilon_greedy.epsilon",
        ),
        (
            "independent",
            "[learner]\nmode = \"independent\"\nsampler = { lazy = { rho = 0.5 } }\n",
            "learner.sampler",
        ),
        (
            "checkpoints",
            "[run]\nepochs = 10\ncheckpoints = [5, 3]\n",
            "run.checkpoints[1]",
        ),
        (
            "past",
            "[run]\nepochs = 10\ncheckpoints = [20]\n",
            "run.checkpoints",
        ),
        ("backend", "[run]\nbackend = \"abacus\"\n", "run.backend"),
        ("typo", "[run]\ninstance = 4\n", "unknown field `instance`"),
    ];
    for (name, text, want) in cases {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!("[model]\nagents = 2\nartifact_states = 4\ninterface_states = 2\n{text}"),
        )
        .unwrap();
        let o = icq(&["run", path.to_str().unwrap(), "--quiet"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected {want:?} in {err:?}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

/// A learner that blows up says so instead of printing NaNs silently.
#[test]
fn divergence_is_reported() {
    let dir = scratch("diverge");
    let cfg = dir.join("d.toml");
    std::fs::write(
        &cfg,
        "[model]\nagents = 2\nartifact_states = 4\ninterface_states = 2\n\
         [learner]\nnetwork = { mlp = { width = 8, depth = 2 } }\nstep_size = { constant = { alpha = 5.0 } }\n\
         [run]\ninstances = 4\nepochs = 2000\ncheckpoints = 1\nbackend = \"cpu\"\n",
    )
    .unwrap();
    let o = icq(&["run", cfg.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("4 of 4 instances diverged"),
        "{}",
        stderr(&o)
    );
}

/// A run whose behavior is ε-greedy (ε < 1) says that the oracle's μ is uniform behavior's;
/// one whose behavior is uniform, or ε-greedy with ε = 1, does not.
#[test]
fn epsilon_greedy_runs_note_that_mu_is_uniform_behaviors() {
    let dir = scratch("off-mu");
    let run = |behavior: &str| {
        let cfg = dir.join("e.toml");
        std::fs::write(
            &cfg,
            format!(
                "[model]\nagents = 2\nartifact_states = 4\ninterface_states = 2\n\
                 [learner]\nbehavior = {behavior}\n\
                 [run]\ninstances = 2\nepochs = 100\ncheckpoints = 1\nbackend = \"cpu\"\n"
            ),
        )
        .unwrap();
        let o = icq(&["run", cfg.to_str().unwrap(), "--quiet"]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).contains(icq::learn::OFF_MU_NOTE)
    };
    assert!(run("{ epsilon_greedy = { epsilon = 0.1 } }"));
    assert!(!run("{ epsilon_greedy = { epsilon = 1.0 } }"));
    assert!(!run("\"uniform\""));
}

/// A reader that closes the pipe early (`icq oracle m.json | head -1`) ends icq quietly, as it
/// does any Unix filter, instead of a panic on the next line written.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let dir = scratch("pipe");
    let model = dir.join("model.json");
    let o = icq(&[
        "model",
        "export",
        "examples/oracle.toml",
        "-o",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A pipe whose read end is closed before icq starts: its first write meets no reader.
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just made by `pipe` and are owned here alone.
    let (read, write) = unsafe {
        use std::os::fd::{FromRawFd, OwnedFd};
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(read);
    let o = Command::new(env!("CARGO_BIN_EXE_icq"))
        .args(["oracle", model.to_str().unwrap()])
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {err}",
        o.status
    );
}

/// The shard of a sweep comes from a Slurm job array or a Kubernetes Indexed Job when no
/// `--shard` is given; half of either pair is an error naming the missing variable.
#[test]
fn shard_from_the_environment() {
    let dir = scratch("shard-env");
    let config = tiny_sweep(&dir, "[0, 1, 2]");
    let sweep = |name: &str, vars: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_icq"));
        c.args(["sweep", config.to_str().unwrap(), "--quiet", "--out"])
            .arg(dir.join(name));
        for var in [
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_COUNT",
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_STEP",
            "JOB_COMPLETION_INDEX",
            "ICQ_SHARDS",
        ] {
            c.env_remove(var);
        }
        c.envs(vars.iter().copied());
        c.output().unwrap()
    };
    let o = sweep(
        "slurm",
        &[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("3 units in the grid, 1 here (shard 2/2)"),
        "{}",
        stderr(&o)
    );
    // One shard of one is the whole grid, its results written.
    let o = sweep("one", &[("JOB_COMPLETION_INDEX", "0"), ("ICQ_SHARDS", "1")]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("3 units in the grid, 3 here,"), "{out}");
    assert!(dir.join("one").join("results.csv").exists(), "{out}");
    // `sbatch --array=1-3`: task 3 is the third shard; `--array=0-4:2`: task 4 is the third.
    for (name, min, step, id) in [("from1", "1", "1", "3"), ("step2", "0", "2", "4")] {
        let o = sweep(
            name,
            &[
                ("SLURM_ARRAY_TASK_ID", id),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", min),
                ("SLURM_ARRAY_TASK_STEP", step),
            ],
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("3 units in the grid, 1 here (shard 3/3)"),
            "{name}: {}",
            stderr(&o)
        );
    }
    let o = sweep("k8s", &[("JOB_COMPLETION_INDEX", "0"), ("ICQ_SHARDS", "2")]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("3 units in the grid, 2 here (shard 1/2)"),
        "{}",
        stderr(&o)
    );
    for (vars, want) in [
        (
            &[("SLURM_ARRAY_TASK_ID", "1")][..],
            "SLURM_ARRAY_TASK_COUNT",
        ),
        (&[("JOB_COMPLETION_INDEX", "1")][..], "ICQ_SHARDS"),
        (
            &[("JOB_COMPLETION_INDEX", "2"), ("ICQ_SHARDS", "2")][..],
            "JOB_COMPLETION_INDEX: expected one of the 2 shards' indices, found 2",
        ),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "8"),
                ("SLURM_ARRAY_TASK_COUNT", "8"),
            ][..],
            "SLURM_ARRAY_TASK_ID: expected one of the 8 shards' indices, found 8 (an array \
             from 0 in steps of 1: its tasks are 0, 1, … 7; for other arrays pass --shard k/n)",
        ),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
                ("SLURM_ARRAY_TASK_STEP", "2"),
            ][..],
            "found 3 (an array from 0 in steps of 2: its tasks are 0, 2, 4;",
        ),
        // One task of an array submitted again alone cannot say which shard it was.
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "1"),
                ("SLURM_ARRAY_TASK_MIN", "3"),
            ][..],
            "SLURM_ARRAY_TASK_COUNT: an array of one task cannot say which shard",
        ),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", "one"),
            ][..],
            "SLURM_ARRAY_TASK_MIN: expected a task number, found \"one\"",
        ),
        (
            &[("JOB_COMPLETION_INDEX", "0"), ("ICQ_SHARDS", "x")][..],
            "ICQ_SHARDS: expected the number of shards, found \"x\"",
        ),
        (
            &[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "")][..],
            "SLURM_ARRAY_TASK_COUNT: expected the number of shards",
        ),
    ] {
        let o = sweep("bad", vars);
        assert_eq!(o.status.code(), Some(2), "{vars:?}");
        assert!(stderr(&o).contains(want), "{vars:?}: {}", stderr(&o));
    }
}

/// `icq model check` calls a model beyond the exact oracle valid and says which commands refuse
/// it (`icq oracle`, `icq run`, and `icq bench` with the reset sampler), as they then do;
/// `icq model export` says it leaves a `[sweep]` aside.
#[test]
fn model_check_and_export_say_what_other_commands_will_do() {
    let dir = scratch("check-big");
    let model =
        "[model]\nagents = 2\nartifact_states = 512\ninterface_states = 8\nprivate_states = 16\n";
    let big = dir.join("big.toml");
    std::fs::write(&big, model).unwrap();
    let reset = dir.join("reset.toml");
    std::fs::write(
        &reset,
        format!("{model}[learner]\nsampler = {{ reset = {{ rho = 0.1 }} }}\n"),
    )
    .unwrap();
    let too_big =
        "oracle: the model has 262144 joint states; the exact oracle handles at most 200000";
    for (path, says, bench_runs) in [
        (
            &big,
            "`icq oracle` and `icq run` refuse this model, `icq bench` runs it",
            true,
        ),
        (
            &reset,
            "`icq oracle`, `icq run` and `icq bench` (its reset sampler draws from μ) refuse \
             this model",
            false,
        ),
    ] {
        let path = path.to_str().unwrap();
        let o = icq(&["model", "check", path]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("valid;"), "{out}");
        assert!(out.contains(&format!("{too_big}; {says}")), "{out}");
        let o = icq(&["bench", path, "--instances", "1", "--epochs", "1"]);
        assert_eq!(o.status.success(), bench_runs, "{path}: {}", stderr(&o));
        let out = dir.join("out");
        for args in [
            vec!["oracle", path],
            vec!["run", path, "--out", out.to_str().unwrap()],
        ] {
            let o = icq(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains("262144 joint states"), "{}", stderr(&o));
        }
        assert!(!out.exists(), "a refused run makes no folder");
    }
    // Within the limits, nothing is said of the oracle.
    let o = icq(&["model", "check", "examples/quickstart.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("oracle"));

    let out = dir.join("base.json");
    let o = icq(&[
        "model",
        "export",
        "examples/sweep.toml",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("which `icq model export` leaves aside"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `icq bench` refuses to time nothing.
#[test]
fn bench_needs_work() {
    for flag in ["--epochs", "--instances"] {
        let o = icq(&["bench", "examples/quickstart.toml", flag, "0"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(&format!("{flag}: expected at least 1")));
    }
}

/// `icq plot` refuses up front, with exit code 2 and a message naming the culprit, and writes
/// nothing: an output folder that is a file, an input that is not there, a CSV where the JSON
/// lines are read, a group that is the x axis, and a checkpoint with x = epoch; a metric that
/// is not a column, found once the results are read, leaves none of the folders it made.
#[test]
fn plot_refuses_bad_paths_and_contradictions_up_front() {
    let dir = scratch("plot-refusals");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rows: Vec<String> = (1..=4)
        .map(|c| {
            format!(
                "{{\"checkpoint\":{c},\"epoch\":{},\"t_mix\":{},\"q_err\":{}}}",
                1000 * c,
                5 * c,
                1.0 / f64::from(c)
            )
        })
        .collect();
    std::fs::write(dir.join("results.jsonl"), rows.join("\n")).unwrap();
    std::fs::write(dir.join("results.csv"), "checkpoint,epoch\n").unwrap();
    let readme = dir.join("README.md");
    std::fs::write(&readme, "# notes\n").unwrap();
    let d = dir.to_str().unwrap();
    let missing = dir.join("no-such-sweep");
    let csv = dir.join("results.csv");
    let nested = dir.join("figures").join("deeper");
    let cases: [(Vec<&str>, &[&str]); 6] = [
        (
            vec![
                d,
                "--x",
                "t_mix",
                "--y",
                "q_err",
                "--out",
                readme.to_str().unwrap(),
            ],
            &["--out: ", "README.md is a file, not a folder"],
        ),
        (
            vec![missing.to_str().unwrap(), "--x", "t_mix", "--y", "q_err"],
            &["no-such-sweep: "],
        ),
        (
            vec![csv.to_str().unwrap(), "--x", "t_mix", "--y", "q_err"],
            &["results.csv is a .csv file", "results.jsonl instead"],
        ),
        (
            vec![d, "--x", "t_mix", "--y", "q_err", "--group", "t_mix"],
            &["group: t_mix is also the x axis (x = t_mix)"],
        ),
        (
            vec![d, "--x", "epoch", "--y", "q_err", "--checkpoint", "3"],
            &[
                "checkpoint: checkpoint 3 with x = epoch",
                "x = epoch plots every checkpoint",
            ],
        ),
        (
            vec![
                d,
                "--x",
                "t_mix",
                "--y",
                "nope",
                "--out",
                nested.to_str().unwrap(),
            ],
            &["nope: not a column of the results; columns: checkpoint, epoch, t_mix, q_err"],
        ),
    ];
    for (args, want) in cases {
        let o = icq(&[&["plot"], args.as_slice()].concat());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for w in want {
            assert!(err.contains(w), "{args:?}: expected {w:?} in {err:?}");
        }
    }
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), "# notes\n");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["README.md", "results.csv", "results.jsonl"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fit through two points has a slope and no interval: the table prints `-` for it, not
/// `[NaN, NaN]`.
#[test]
fn plot_prints_a_dash_for_an_interval_it_cannot_compute() {
    let dir = scratch("plot-two-points");
    std::fs::write(
        dir.join("results.jsonl"),
        "{\"width\":10,\"q_err_obs\":0.4}\n{\"width\":20,\"q_err_obs\":0.2}\n",
    )
    .unwrap();
    let o = icq(&[
        "plot",
        dir.to_str().unwrap(),
        "--x",
        "width",
        "--y",
        "q_err_obs",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let row = out.lines().find(|l| l.starts_with("all ")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["all", "-1.000", "-", "2"], "{out}");
    assert!(!out.contains("NaN"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether `dir` holds a temporary file whose name starts with `prefix`.
#[cfg(unix)]
fn holds_partial(dir: &Path, prefix: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(".partial")
        })
    })
}

/// Runs icq with `args`, sends it SIGTERM as soon as `writing()` holds, and checks that the
/// signal ended it (after its clean-up).
#[cfg(unix)]
fn stop_while(args: &[&str], writing: impl Fn() -> bool) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_icq"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let caught = loop {
        if writing() {
            break true;
        }
        if child.try_wait().unwrap().is_some() || started.elapsed().as_secs() > 300 {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(caught, "{args:?} ended before its files showed");
    // SAFETY: a plain kill(2) of the child this test spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{args:?}: {status:?}");
}

/// A stop (SIGTERM, as Ctrl-C's SIGINT) while `icq run --out` writes its rows ends the process
/// as the signal would, but only after the temporary files are removed, and the folders the
/// run made with them: 200 000 rows take seconds to write, and the signal comes as soon as the
/// first temporary file shows.
#[cfg(unix)]
#[test]
fn a_stop_while_writing_leaves_nothing_behind() {
    let dir = scratch("stop");
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
         [run]\ninstances = 40000\nepochs = 5\ncheckpoints = 5\nbackend = \"cpu\"\n",
    )
    .unwrap();
    let out = dir.join("made").join("out");
    let (c, o) = (config.to_str().unwrap(), out.to_str().unwrap());
    stop_while(&["run", c, "--quiet", "--out", o], || {
        holds_partial(&out, "")
    });
    assert!(
        !dir.join("made").exists(),
        "the folders the run made are gone"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sweep stopped while its first unit trains (Ctrl-C, a scheduler's stop) leaves no folder:
/// the folder is checked up front and made with the first file written.
#[cfg(unix)]
#[test]
fn a_sweep_stopped_before_its_first_unit_leaves_no_folder() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let dir = scratch("stop-first");
    let config = dir.join("c.toml");
    // About a minute of training on two cores: the stop comes long before it ends.
    std::fs::write(
        &config,
        "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
         [run]\ninstances = 4096\nepochs = 200000\ncheckpoints = 1\nbackend = \"cpu\"\n\
         [sweep]\nseeds = [0]\n",
    )
    .unwrap();
    let out = dir.join("made").join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_icq"))
        .args(["sweep", config.to_str().unwrap(), "--out"])
        .arg(&out)
        .env("ICQ_PROGRESS_SECONDS", "0.001")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The progress line comes once the checks are done and the unit is training.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let training = lines.any(|l| l.is_ok_and(|l| l.contains("0/1 units; running")));
    assert!(training, "no progress line");
    // SAFETY: a plain kill(2) of the child this test spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(!dir.join("made").exists(), "a folder was left");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The output file of `icq model export -o` and `icq oracle --json` is checked before any
/// work: never the input itself, and in a folder that can be one.
#[test]
fn output_files_are_checked_before_any_work() {
    let dir = scratch("output-files");
    let cfg = dir.join("small.toml");
    let text = "[model]\nagents = 2\nartifact_states = 4\ninterface_states = 2\n";
    std::fs::write(&cfg, text).unwrap();
    let afile = dir.join("afile");
    std::fs::write(&afile, "x").unwrap();
    let under_file = afile.join("x.json");
    let same = dir.join(".").join("small.toml");
    let cases = [
        (
            vec!["model", "export", "CFG", "-o"],
            "--output",
            &cfg,
            "is the input file",
        ),
        (
            vec!["model", "export", "CFG", "-o"],
            "--output",
            &same,
            "is the input file",
        ),
        (
            vec!["model", "export", "CFG", "-o"],
            "--output",
            &under_file,
            "afile is a file, not a folder",
        ),
        (
            vec!["oracle", "CFG", "--json"],
            "--json",
            &under_file,
            "afile is a file, not a folder",
        ),
        (
            vec!["oracle", "CFG", "--json"],
            "--json",
            &cfg,
            "is the input file",
        ),
    ];
    for (args, flag, out, want) in cases {
        let mut args: Vec<&str> = args
            .into_iter()
            .map(|a| if a == "CFG" { cfg.to_str().unwrap() } else { a })
            .collect();
        args.push(out.to_str().unwrap());
        let o = icq(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{flag}: ")) && err.contains(want),
            "{err}"
        );
        assert!(
            o.stdout.is_empty(),
            "work was done before the error: {args:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&afile).unwrap(), "x");
    // The model file a config names is an input too.
    let model = dir.join("m.json");
    let (cfg_s, model_s) = (cfg.to_str().unwrap(), model.to_str().unwrap());
    let exported = icq(&["model", "export", cfg_s, "-o", model_s]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let before = std::fs::read_to_string(&model).unwrap();
    let with_file = dir.join("with-file.toml");
    std::fs::write(&with_file, "[model]\nfile = \"m.json\"\n").unwrap();
    let with_s = with_file.to_str().unwrap();
    for args in [
        ["oracle", with_s, "--json", model_s].as_slice(),
        ["model", "export", with_s, "-o", model_s].as_slice(),
    ] {
        let o = icq(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("m.json is the input file"), "{err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(std::fs::read_to_string(&model).unwrap(), before);
}

/// `icq merge` of a folder that is not there is bad input naming it, and makes no `--out`.
#[test]
fn merge_of_a_missing_folder_is_bad_input() {
    let dir = scratch("merge-missing");
    let nope = dir.join("nope");
    let out = dir.join("out");
    let o = icq(&[
        "merge",
        nope.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("merge: {} does not exist", nope.display())),
        "{err}"
    );
    assert!(!out.exists());
}

/// With stderr not a terminal (a batch job's log), progress comes as whole lines, the first
/// at once, then one per `ICQ_PROGRESS_SECONDS` (0: none), and a last one when the work is
/// done; the results do not change.
#[test]
fn progress_goes_to_logs_as_lines() {
    let dir = scratch("log-lines");
    let config = tiny_sweep(&dir, "[0, 1, 2]");
    let sweep = |seconds: &str, out: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_icq"))
            .args(["sweep", config.to_str().unwrap(), "--out"])
            .arg(dir.join(out))
            .env("ICQ_PROGRESS_SECONDS", seconds)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    let every = sweep("0.000001", "every");
    let lines: Vec<&str> = every.lines().filter(|l| l.contains('%')).collect();
    assert!(lines.len() >= 2, "{every}");
    assert!(lines.iter().all(|l| !l.contains('\r')), "{every}");
    // However long between lines, the last says the work is done.
    let hourly = sweep("3600", "hourly");
    assert!(hourly.trim_end().ends_with("100% 3/3 units"), "{hourly}");
    let none = sweep("0", "none");
    assert!(!none.contains('%'), "{none}");
    let bad = sweep("abc", "bad");
    assert!(
        bad.contains("ICQ_PROGRESS_SECONDS=\"abc\" is not a number of seconds"),
        "{bad}"
    );
    let results = |out: &str| std::fs::read(dir.join(out).join("results.csv")).unwrap();
    assert_eq!(results("every"), results("none"));
}

/// `icq run --backend wgpu` (lavapipe in CI) writes the rows the CPU backend writes: every
/// column equal but `backend` and the four metrics that carry Q arithmetic, which agree to the
/// parity tolerance of `tests/gpu_parity.rs` (1e-4 relative). `policy_gap` is compared exactly:
/// it is the argmax policy's, and no two Q-values of a row of these seeds are near enough for
/// the backends' last-bit differences to swap them (an assumption about these seeds, which a
/// device that fuses more could break). `--backend auto` on a machine whose only adapter is a
/// software one takes the CPU and says why.
#[test]
fn run_on_wgpu_writes_the_cpu_rows() {
    let dir = scratch("run-wgpu");
    let cfg = dir.join("w.toml");
    std::fs::write(
        &cfg,
        "[model]\nagents = 3\nartifact_states = 8\ninterface_states = 4\nprivate_states = 2\n\
         interface_noise = 0.2\nmodel_seed = 5\n\
         [learner]\nnetwork = { mlp = { width = 8, depth = 1 } }\nstep_size = { constant = { alpha = 0.05 } }\n\
         [run]\ninstances = 6\nepochs = 400\ncheckpoints = 2\nseed = 5\n",
    )
    .unwrap();
    let run = |backend: &str| {
        let out = dir.join(backend);
        let o = icq(&[
            "run",
            cfg.to_str().unwrap(),
            "--backend",
            backend,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        (o, out)
    };
    let (o, on_wgpu) = run("wgpu");
    if !o.status.success() {
        let err = stderr(&o);
        assert!(
            !icq::backend::gpu::adapter_required(),
            "ICQ_REQUIRE_ADAPTER=1 but: {err}"
        );
        eprintln!("skipped: {err}");
        return;
    }
    let wgpu_said = String::from_utf8_lossy(&o.stdout).into_owned();
    let (o, on_cpu) = run("cpu");
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = |dir: &Path| -> Vec<serde_json::Map<String, Value>> {
        std::fs::read_to_string(dir.join("checkpoints.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (g, c) = (rows(&on_wgpu), rows(&on_cpu));
    assert_eq!(g.len(), 12, "6 instances × 2 checkpoints");
    assert_eq!(g.len(), c.len());
    let near = ["q_err", "q_err_obs", "q_err_sup", "mean_abs_y"];
    for (i, (g, c)) in g.iter().zip(&c).enumerate() {
        assert_eq!(
            g.keys().collect::<Vec<_>>(),
            c.keys().collect::<Vec<_>>(),
            "row {i}"
        );
        assert_eq!(
            (&g["backend"], &c["backend"]),
            (&json!("wgpu"), &json!("cpu"))
        );
        for (key, x) in g.iter().filter(|(k, _)| *k != "backend") {
            let y = &c[key];
            if near.contains(&key.as_str()) {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!(
                    (x - y).abs() <= 1e-4 * y.abs(),
                    "row {i}, {key}: wgpu {x} cpu {y}"
                );
            } else {
                assert_eq!(x, y, "row {i}, {key}");
            }
        }
    }
    // auto: a software adapter (wgpu's device type `Cpu`) is no reason to leave the CPU.
    if wgpu_said.contains("llvmpipe") {
        assert!(wgpu_said.contains(", Cpu,"), "{wgpu_said}");
    }
    if wgpu_said.contains(", Cpu,") {
        let o = icq(&["run", cfg.to_str().unwrap(), "--backend", "auto", "--quiet"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let said = String::from_utf8_lossy(&o.stdout);
        assert!(
            said.starts_with("backend    cpu")
                && said.contains("auto: no hardware GPU adapter found")
                && said.contains("--backend wgpu runs on it"),
            "{said}"
        );
    }
}

/// `icq plot`'s flags reach the figure: `--where` keeps only its rows, `--name` names the
/// files, `--reference` draws a column's line, `--excess` fits the excess over the smallest
/// x, `--out` puts it all in another folder. The rows are made so that each flag changes the
/// fitted slope: study `a` has q_err_obs = 0.1·t^0.5, study `b` q_err_obs = 0.1·t^2, and
/// q_err_obs² − q_err_obs²(t₀) = 0.01·(t − t₀) in study `a`.
#[test]
fn plot_flags_reach_the_figure() {
    let dir = scratch("plot-flags");
    let mut rows = String::new();
    for (study, power) in [("a", 0.5f64), ("b", 2.0)] {
        for t in [1.0f64, 2.0, 4.0, 8.0, 16.0] {
            let y = 0.1 * t.powf(power);
            rows += &format!(
                "{{\"study\":\"{study}\",\"t_mix\":{t},\"q_err_obs\":{y},\"interface_term\":0.05}}\n"
            );
        }
    }
    std::fs::write(dir.join("results.jsonl"), rows).unwrap();
    let out = dir.join("figs");
    let plot = |extra: &[&str]| {
        let base = [
            "plot",
            dir.to_str().unwrap(),
            "--x",
            "t_mix",
            "--y",
            "q_err_obs",
            "--out",
            out.to_str().unwrap(),
        ];
        let o = icq(&[base.as_slice(), extra].concat());
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", stderr(&o));
        let fits = std::fs::read_to_string(out.join("fits.csv")).unwrap();
        let last = fits.lines().last().unwrap().to_string();
        let cells: Vec<String> = last.split(',').map(str::to_string).collect();
        (cells[0].clone(), cells[4].parse::<f64>().unwrap())
    };
    let (name, slope) = plot(&["--where", "study=a", "--name", "only_a"]);
    assert_eq!(name, "only_a");
    assert!((slope - 0.5).abs() < 1e-9, "{slope}");
    assert!(out.join("only_a.svg").exists() && out.join("only_a.png").exists());
    let (_, slope) = plot(&["--where", "study=b", "--name", "only_b"]);
    assert!((slope - 2.0).abs() < 1e-9, "{slope}");
    let (_, slope) = plot(&["--where", "study=a", "--excess", "--name", "excess_a"]);
    assert!((slope - 1.0).abs() < 1e-9, "{slope}");
    // The reference line is drawn (its value's label is in the figure) and changes no fit.
    let (_, slope) = plot(&[
        "--where",
        "study=a",
        "--reference",
        "interface_term",
        "--name",
        "with_reference",
    ]);
    assert!((slope - 0.5).abs() < 1e-9, "{slope}");
    let with = std::fs::read_to_string(out.join("with_reference.svg")).unwrap();
    let without = std::fs::read_to_string(out.join("only_a.svg")).unwrap();
    assert!(with.contains("interface_term") && !without.contains("interface_term"));
    assert!(!dir.join("fits.csv").exists(), "--out holds the figures");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `icq oracle --tolerance` outside (0, 1) is bad input naming the flag, before any work.
#[test]
fn oracle_tolerance_outside_zero_one_is_refused() {
    for t in ["0", "-1", "1", "NaN", "2.5"] {
        let o = icq(&[
            "oracle",
            "examples/oracle.toml",
            &format!("--tolerance={t}"),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{t}: {err}");
        assert!(
            err.contains("--tolerance: expected 0 < tolerance < 1"),
            "{t}: {err}"
        );
        assert!(o.stdout.is_empty(), "{t}");
    }
    let o = icq(&["oracle", "examples/oracle.toml", "--tolerance=1e-8"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A stop while `icq sweep` writes its results (or `icq merge` its merged ones) removes the
/// temporary files first, then ends the process as the signal would; the finished units stay,
/// and `--resume` writes the results.
#[cfg(unix)]
#[test]
fn a_stop_while_a_sweep_writes_its_results_leaves_no_partial_file() {
    let dir = scratch("sweep-stop");
    let config = dir.join("c.toml");
    // 250 units of 200 checkpoints: 50 000 rows, about two seconds of writing.
    let seeds: Vec<String> = (0..250).map(|s| s.to_string()).collect();
    std::fs::write(
        &config,
        format!(
            "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
             [run]\ninstances = 1\nepochs = 200\ncheckpoints = 200\nbackend = \"cpu\"\n\
             policy_gap_instances = 0\n[sweep]\nseeds = [{}]\n",
            seeds.join(", ")
        ),
    )
    .unwrap();
    let stop_while_writing = |args: &[&str], out: &Path| {
        stop_while(args, || holds_partial(out, "results."));
        assert!(!holds_partial(out, ""), "{args:?} left a temporary file");
    };
    let out = dir.join("out");
    let c = config.to_str().unwrap();
    let o = out.to_str().unwrap();
    stop_while_writing(&["sweep", c, "--out", o, "--quiet"], &out);
    assert!(out.join("parts").join("unit-000249.jsonl").exists());
    assert!(!out.join("results.csv").exists());
    let done = icq(&["sweep", c, "--out", o, "--quiet", "--resume"]);
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(out.join("results.parquet").exists());
    let merged = dir.join("merged").join("here");
    stop_while_writing(&["merge", o, "--out", merged.to_str().unwrap()], &merged);
    assert!(
        !dir.join("merged").exists(),
        "the folders the merge made are gone"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `icq model check` on a sweep config checks its grid as `icq sweep` would before any work
/// (a bad axis or a point's bad value is bad input, and nothing is called valid); `icq oracle`
/// says it analyses the base settings alone.
#[test]
fn model_check_checks_a_sweeps_grid() {
    let dir = scratch("check-sweep");
    let base = "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n[sweep]\n";
    let check = |name: &str, sweep: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{base}{sweep}")).unwrap();
        icq(&["model", "check", path.to_str().unwrap()])
    };
    for (name, sweep, want) in [
        (
            "axis.toml",
            "bogus_axis = [1]\n",
            "sweep.bogus_axis: not a knob",
        ),
        (
            "value.toml",
            "interface_noise = [0.1, 1.5]\n",
            "sweep grid point 1 (interface_noise = 1.5): model.interface_noise",
        ),
        (
            "size.toml",
            "private_states = [1, 200]\n",
            "sweep grid point 1 (private_states = 200): the model has 640000 joint states",
        ),
        (
            "figure.toml",
            "interface_noise = [0.1]\n[[figure]]\nx = \"no_such_column\"\ny = \"q_err\"\n",
            "no_such_column",
        ),
    ] {
        let o = check(name, sweep);
        assert_eq!(o.status.code(), Some(2), "{name}");
        assert!(stderr(&o).contains(want), "{name}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{name}: nothing called valid");
    }
    let o = check(
        "good.toml",
        "interface_noise = [0.1, 0.2]\nseeds = [0, 1, 2]\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("sweep: valid; 2 grid points, 6 units"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = icq(&["oracle", dir.join("good.toml").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("which `icq oracle` leaves aside"),
        "{}",
        stderr(&o)
    );
}
