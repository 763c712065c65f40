//! Sweeps: grid expansion, validation before any work, shards merged equal one unsharded run
//! row for row, a resume after a kill loses and repeats nothing, and a resume into another
//! sweep's folder is refused.

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
    // The point's values reached the unit's model and learner, and nothing else moved.
    let built = icq::model::synthetic::Synthetic {
        agents: 2,
        artifact_states: 8,
        interface_states: 4,
        interface_noise: 0.2,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_eq!(u.input.model, built);
    assert_ne!(units[0].input.model, built, "point 0 is η = 0");
    assert_eq!(
        u.input.config.learner.network,
        icq::learn::Network::Mlp { width: 4, depth: 1 }
    );
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
        // One setting under two names, or one value twice, would run a grid point twice.
        (
            "[sweep]\ninterface_noise = [0.2, 0.3]\n\"model.interface_noise\" = [0.1]\n",
            "sets model.interface_noise as sweep.interface_noise does",
        ),
        (
            "[sweep]\n[sweep.s]\n\"model.laziness\" = 0.5\nlaziness = [0.4]\n",
            "sweep.s.model.laziness: sets model.laziness as sweep.s.laziness does",
        ),
        ("[sweep]\nseeds = [3, 3]\n", "sweep.seeds: 3 appears twice"),
        (
            "[sweep]\ngamma = [0.5, 0.9, 1]\nlaziness = [1, 1.0]\n",
            "sweep.laziness: 1.0 appears twice",
        ),
        // A setting inside a table another axis sets: the one applied last would win.
        (
            "[sweep]\ndepth = [1, 2]\nnetwork = [{ mlp = { width = 8, depth = 1 } }]\n",
            "sweep.network: sets learner.network and sweep.depth sets learner.network.mlp.depth",
        ),
        // The seed and the backend belong to the sweep as a whole.
        (
            "[sweep]\n\"run.seed\" = [5, 6]\n",
            "sweep.run.seed: the seeds of a sweep",
        ),
        (
            "[sweep]\n[sweep.s]\n\"run.backend\" = [\"cpu\"]\n",
            "sweep.s.run.backend: one backend",
        ),
        // Bare `seed` and `backend` are [run] keys the sweep owns, said so by name.
        (
            "[sweep]\nseed = [1, 2]\n",
            "sweep.seed: the seeds of a sweep",
        ),
        (
            "[sweep]\nbackend = [\"cpu\"]\n",
            "sweep.backend: one backend runs the whole sweep: set [run] backend or pass --backend",
        ),
        (
            "[sweep]\n[sweep.s]\nseed = 3\n",
            "sweep.s.seed: the seeds of a sweep",
        ),
        // A width axis over a tabular network does not quietly make an MLP of unknown depth.
        (
            "[sweep]\nwidth = [4]\n",
            "sweep.width: sets learner.network.mlp.width, but learner.network is \"tabular\"",
        ),
        (
            "[sweep]\n[sweep.s]\nwidth = 8\n",
            "sweep.s.width: sets learner.network.mlp.width",
        ),
        (
            "[sweep]\n[sweep.s]\nwidth = [4, 8]\n",
            "sweep.s.width: sets learner.network.mlp.width",
        ),
        (
            "[sweep]\ninterface_noise = [0.1, 0.10]\n",
            "sweep.interface_noise: 0.1 appears twice",
        ),
        // A fixed handoff order is one list: a bare list under [sweep] would be an axis of
        // numbers; an order that does not fit the model is named at its grid point.
        (
            "[sweep]\npipeline = [1, 0]\n",
            "sweep.pipeline: one fixed handoff order goes in the base [run] table",
        ),
        (
            "[sweep]\n\"run.pipeline\" = [[1, 0], [1, 0, 0]]\n",
            "run.pipeline: expected one action per agent (2), found 3",
        ),
    ];
    for (sweep_table, want) in cases {
        let d = dir("bad");
        let text = CONFIG.split("[sweep]").next().unwrap().to_string() + sweep_table;
        let path = config(&d, &text);
        let out = d.join("out");
        let err = sweep(&path, &out, None, false, None, false)
            .expect_err("a bad sweep fails")
            .to_string();
        assert!(err.contains(want), "expected {want:?} in {err:?}");
        assert!(
            !out.join("parts").exists(),
            "work was done before the error"
        );
    }
}

/// An axis of fixed handoff orders: each row names its order and carries its exact gap.
#[test]
fn an_axis_of_pipelines() {
    let d = dir("pipelines");
    let text = CONFIG.split("[sweep]").next().unwrap().to_string()
        + "[sweep]\n\"run.pipeline\" = [[1, 0], [0, 1]]\nseeds = [1]\n";
    let out = d.join("out");
    sweep(&config(&d, &text), &out, None, false, None, false).unwrap();
    let rows = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = |order: &str| {
        rows.iter()
            .rev()
            .find(|r| r["pipeline"] == order)
            .unwrap_or_else(|| panic!("no row of {order}"))["pipeline_policy_gap"]
            .as_f64()
            .unwrap()
    };
    // The run's settings are columns; a table has no width or depth.
    for r in &rows {
        assert_eq!(
            (&r["epochs"], &r["checkpoints"], &r["policy_gap_instances"]),
            (
                &serde_json::json!(600),
                &serde_json::json!(2),
                &serde_json::json!(5)
            )
        );
        assert!(r["width"].is_null() && r["depth"].is_null(), "{r}");
    }
    // Each row carries its own order's exact gap (the oracle's, tested by hand in
    // oracle_hand.rs), not the other order's: both synthetic agents keeping control forever
    // ([0, 1]) differs from the 0 ⇄ 1 cycle.
    let model = icq::config::load_input(&config(&d, &text)).unwrap().model;
    let oracle = icq::oracle::Oracle::new(&model).unwrap();
    let exact = |order: Vec<usize>| {
        let options = icq::oracle::OracleOptions {
            pipeline: Some(order),
            ..Default::default()
        };
        oracle
            .analyze(&options)
            .unwrap()
            .pipeline_policy_gap
            .unwrap()
    };
    let (cycle, keep) = (exact(vec![1, 0]), exact(vec![0, 1]));
    assert!((cycle - keep).abs() > 1e-3, "{cycle} {keep}");
    assert_eq!(last("[1, 0]"), cycle);
    assert_eq!(last("[0, 1]"), keep);
}

#[test]
fn shards_merge_into_the_unsharded_run() {
    let d = dir("shards");
    let path = config(&d, &mlp(CONFIG));
    let whole = d.join("whole");
    let report = sweep(&path, &whole, None, false, None, false).unwrap();
    assert_eq!(report.rows, 12 * 2, "one row per unit and checkpoint");
    let shards: Vec<PathBuf> = (1..=3).map(|k| d.join(format!("shard{k}"))).collect();
    // The last shard runs from a copy of the config with a comment: the same grid.
    let commented = d.join("commented.toml");
    std::fs::write(&commented, format!("# shard 3's copy\n{}", mlp(CONFIG))).unwrap();
    for (k, out) in shards.iter().enumerate() {
        let r = sweep(
            if k == 2 { &commented } else { &path },
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
    assert!(
        err.contains("4 of 12 units have no results yet (first: unit 2): the units of shard 3/3"),
        "{err}"
    );
    // A folder named twice is refused as such.
    let twice = [shards[0].clone(), shards[1].clone(), shards[0].join(".")];
    let err = merge(&twice, &d.join("twice")).unwrap_err().to_string();
    assert!(err.contains("is given twice"), "{err}");
    let merged = d.join("merged");
    assert_eq!(merge(&shards, &merged).unwrap().0, 24);
    // Merging again into the same folder rewrites the same files; a folder holding another
    // sweep's results is refused and left as it was.
    assert_eq!(merge(&shards, &merged).unwrap().0, 24);
    let other = d.join("other");
    let other_config = config(&d, &mlp(&CONFIG.replace("seeds = [1, 2]", "seeds = [3]")));
    sweep(&other_config, &other, None, false, None, false).unwrap();
    let before = std::fs::read(other.join("results.csv")).unwrap();
    let err = merge(&shards, &other).unwrap_err().to_string();
    assert!(
        err.contains("results of a sweep of another config"),
        "{err}"
    );
    assert_eq!(std::fs::read(other.join("results.csv")).unwrap(), before);
    // So is a folder holding a shard of another sweep, or its unit files alone (a shard
    // killed before its manifest).
    let other_shard = d.join("other-shard");
    let one = Some(Shard { k: 1, n: 2 });
    sweep(&other_config, &other_shard, one, false, None, false).unwrap();
    let err = merge(&shards, &other_shard).unwrap_err().to_string();
    assert!(
        err.contains("results of a sweep of another config (manifest-shard-1-of-2.json)"),
        "{err}"
    );
    std::fs::remove_file(other_shard.join("manifest-shard-1-of-2.json")).unwrap();
    let err = merge(&shards, &other_shard).unwrap_err().to_string();
    assert!(err.contains("unit files (parts/)"), "{err}");
    assert!(!other_shard.join("results.csv").exists());
    // Merging into one of the merged folders is allowed.
    assert_eq!(merge(&shards, &shards[0]).unwrap().0, 24);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(
        read(&whole.join("results.csv")),
        read(&merged.join("results.csv"))
    );
    assert_eq!(
        read(&whole.join("results.jsonl")),
        read(&merged.join("results.jsonl"))
    );
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(
        bytes(&whole.join("results.parquet")),
        bytes(&merged.join("results.parquet"))
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
    // The grid record is written before the first unit runs.
    std::fs::copy(
        reference.join("parts/grid.json"),
        killed.join("parts/grid.json"),
    )
    .unwrap();
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
    // A unit file emptied behind icq's back is not a finished unit.
    std::fs::write(killed.join("parts/unit-000003.jsonl"), "").unwrap();
    let e = sweep(&path, &killed, None, true, None, false).unwrap_err();
    assert!(e.to_string().contains("unit-000003.jsonl is empty"), "{e}");
    // One cut off in its second row is named by that line, with what to do.
    let whole = read(&reference.join("parts/unit-000003.jsonl"));
    let cut = whole.lines().next().unwrap().len() + 1 + 40;
    std::fs::write(killed.join("parts/unit-000003.jsonl"), &whole[..cut]).unwrap();
    let e = sweep(&path, &killed, None, true, None, false).unwrap_err();
    assert!(
        e.to_string()
            .contains("unit-000003.jsonl: line 2 is not a whole row (")
            && e.to_string()
                .contains("remove it and run its sweep again with --resume"),
        "{e}"
    );
}

/// A folder holding another sweep's units is refused, with or without `--resume`: a unit is
/// known by its index, and an index means something only in its own grid.
#[test]
fn resume_refuses_another_sweeps_folder() {
    let d = dir("resume-other");
    let path = config(&d, &mlp(CONFIG));
    let out = d.join("out");
    sweep(&path, &out, None, false, None, false).unwrap();
    let message = |text: &str| {
        let other = d.join("other.toml");
        std::fs::write(&other, text).unwrap();
        let e = sweep(&other, &out, None, true, None, false).unwrap_err();
        e.to_string()
    };
    // One more seed shifts every unit's index; another setting changes what each unit runs.
    let more_seeds = message(&mlp(CONFIG).replace("seeds = [1, 2]", "seeds = [1, 2, 3]"));
    assert!(more_seeds.contains("another sweep"), "{more_seeds}");
    assert!(
        more_seeds.contains("unit 2 (point 0, seed 3)"),
        "{more_seeds}"
    );
    let longer = message(&mlp(CONFIG).replace("epochs = 600", "epochs = 700"));
    assert!(longer.contains("unit 0 (point 0, seed 1)"), "{longer}");
    // The same sweep resumes (nothing to do), also on another backend.
    let r = sweep(&path, &out, None, true, Some("cpu"), false).unwrap();
    assert_eq!((r.units, r.skipped), (12, 12));
    // The manifest's backend is this invocation's (none ran), `backends` the rows': a unit
    // run on another backend (its rows say so) is listed.
    let unit = out.join("parts/unit-000005.jsonl");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(
        &unit,
        text.replace("\"backend\":\"cpu\"", "\"backend\":\"wgpu\""),
    )
    .unwrap();
    sweep(&path, &out, None, true, Some("cpu"), false).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["backend"].is_null(), "{manifest}");
    assert_eq!(manifest["backends"], serde_json::json!(["cpu", "wgpu"]));
    // Units without a grid record cannot be checked, so they are refused too.
    std::fs::remove_file(out.join("parts/grid.json")).unwrap();
    let e = sweep(&path, &out, None, true, None, false).unwrap_err();
    assert!(e.to_string().contains("cannot be checked"), "{e}");
    // A folder whose sweep never finished a unit (its grid record alone) is simply taken over.
    let fresh = d.join("fresh");
    sweep(&path, &fresh, None, false, None, false).unwrap();
    let leave_only_the_grid = |dir: &Path| {
        for entry in std::fs::read_dir(dir.join("parts")).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|x| x == "jsonl") {
                std::fs::remove_file(p).unwrap();
            }
        }
    };
    leave_only_the_grid(&fresh);
    std::fs::remove_file(fresh.join("manifest.json")).unwrap();
    let other = d.join("other.toml");
    std::fs::write(&other, mlp(CONFIG).replace("epochs = 600", "epochs = 700")).unwrap();
    sweep(&other, &fresh, None, false, None, false).unwrap();
    // But not one holding another sweep's results without their units (merged results, or
    // parts/ deleted): its manifest names its config, and this sweep would replace them.
    leave_only_the_grid(&fresh);
    let e = sweep(&path, &fresh, None, false, None, false).unwrap_err();
    assert!(
        e.to_string()
            .contains("already holds the results of a sweep of another config (manifest.json)"),
        "{e}"
    );
    std::fs::remove_dir_all(fresh.join("parts")).unwrap();
    let e = sweep(&path, &fresh, None, false, None, false).unwrap_err();
    assert!(e.to_string().contains("a sweep of another config"), "{e}");
    // Its own sweep runs there again, also from a config that differs only in a comment (the
    // manifest records the grid's units, not the config's text).
    sweep(&other, &fresh, None, false, None, false).unwrap();
    std::fs::remove_dir_all(fresh.join("parts")).unwrap();
    let commented = d.join("commented.toml");
    let text = mlp(CONFIG).replace("epochs = 600", "epochs = 700");
    std::fs::write(&commented, format!("# the same grid, said again\n{text}")).unwrap();
    sweep(&commented, &fresh, None, false, None, false).unwrap();
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

const STUDIES: &str = "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
    [learner]\nnetwork = \"tabular\"\nstep_size = { constant = { alpha = 0.1 } }\n\
    [run]\ninstances = 3\nepochs = 400\ncheckpoints = 2\nbackend = \"cpu\"\n\
    [sweep]\nseeds = [0, 1]\ngamma = [0.8, 0.9]\n\
    [sweep.noise]\ninterface_noise = [0.1, 0.2, 0.4]\n\
    [sweep.lazy]\nepochs = 200\nsampler = [\"trajectory\", { lazy = { rho = 0.5 } }]\n\
    [[figure]]\nname = \"noise\"\nwhere = { study = \"noise\" }\nx = \"interface_noise\"\ny = \"interface_term\"\n\
    [[figure]]\nwhere = { study = \"lazy\" }\nx = \"epoch\"\ny = \"q_err\"\ngroup = \"sampler\"\n";

#[test]
fn studies_expand_in_order_with_their_own_axes_and_settings() {
    let units = expand(STUDIES, Path::new("sweep.toml")).unwrap();
    // Studies in name order (lazy, noise); shared axes first, then the study's; seeds last.
    assert_eq!(units.len(), (2 * 2 + 2 * 3) * 2);
    let lazy: Vec<_> = units
        .iter()
        .filter(|u| u.study.as_deref() == Some("lazy"))
        .collect();
    assert_eq!(lazy.len(), 8);
    assert!(lazy.iter().all(|u| u.input.config.run.epochs == 200));
    assert_eq!(lazy[2].values[0].0, "gamma");
    assert_eq!(lazy[2].values[1].0, "sampler");
    let noise: Vec<_> = units
        .iter()
        .filter(|u| u.study.as_deref() == Some("noise"))
        .collect();
    assert!(noise.iter().all(|u| u.input.config.run.epochs == 400));
    assert_eq!(noise[0].point, 4, "points are numbered across studies");
    let points: Vec<usize> = units.iter().map(|u| u.point).collect();
    assert!(points.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));

    // Each change of the config fails to expand, naming the key.
    let fails = |from: &str, to: &str, want: &[&str]| {
        let text = STUDIES.replace(from, to);
        assert_ne!(text, STUDIES, "{from:?} is in the config");
        let err = expand(&text, Path::new("sweep.toml"))
            .unwrap_err()
            .to_string();
        assert!(want.iter().all(|w| err.contains(w)), "{want:?} in {err}");
    };
    fails(
        "[sweep.noise]\ninterface_noise",
        "[sweep.noise]\ninterface_nois",
        &["sweep.noise.interface_nois"],
    );
    fails(
        "[sweep.lazy]\n",
        "[sweep.lazy]\ngamma = 0.7\n",
        &["sweep.lazy.gamma", "one place"],
    );
    fails(
        "gamma = [0.8, 0.9]",
        "learner.clip = [1.0, 2.0]",
        &["sweep.learner", "quotes"],
    );
    fails(
        "interface_noise = [0.1, 0.2, 0.4]",
        "interface_noise = []",
        &["sweep.noise.interface_noise"],
    );
}

#[test]
fn a_sweep_with_studies_draws_its_figures() {
    let d = dir("studies");
    let path = config(&d, STUDIES);
    let out = d.join("out");
    let first = sweep(&path, &out, None, false, None, false).unwrap();
    let text = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(
        text.starts_with("study,point,checkpoint,"),
        "{}",
        &text[..40]
    );
    assert!(out.join("noise.svg").exists());
    assert!(out
        .join("q_err_vs_epoch_by_sampler_study-lazy.svg")
        .exists());
    let fits = std::fs::read_to_string(out.join("fits.csv")).unwrap();
    // The interface term grows with η: the fitted slope is positive.
    let noise = fits.lines().find(|l| l.starts_with("noise,")).unwrap();
    let slope: f64 = noise.split(',').nth(4).unwrap().parse().unwrap();
    assert!(slope > 0.0, "{noise}");
    // Every checkpoint is a point of the epoch figure: two per seed and sampler, per gamma.
    let lazy = fits.lines().filter(|l| l.contains("study-lazy")).count();
    assert_eq!(lazy, 2);
    assert!(fits
        .lines()
        .filter(|l| l.contains("study-lazy"))
        .all(|l| l.ends_with(",8")));

    assert!(first.figures.notes.is_empty(), "{:?}", first.figures.notes);
    // What a figure leaves out is said, as `icq plot` says it: the rows at η = 0 (two seeds,
    // two γ) have no place on a log x axis.
    let zero = STUDIES.replace(
        "interface_noise = [0.1, 0.2, 0.4]",
        "interface_noise = [0.0, 0.2, 0.4]",
    );
    let r = sweep(
        &config(&d, &zero),
        &d.join("zero"),
        None,
        false,
        None,
        false,
    )
    .unwrap();
    assert_eq!(
        r.figures.notes,
        ["noise: line all: 4 points at or below zero left off the log axes"]
    );

    // Each of these fails before any work, naming what is wrong.
    let refused = |name: &str, text: &str| {
        let err = sweep(&config(&d, text), &d.join(name), None, false, None, false)
            .expect_err(name)
            .to_string();
        assert!(!d.join(name).join("parts").exists(), "{name}: nothing ran");
        err
    };
    let bad = STUDIES.replace(
        "x = \"interface_noise\"",
        "x = \"interface_noise\"\nwhere_ = 1",
    );
    let err = refused("bad", &bad);
    assert!(err.contains("figure[0].where_"), "{err}");
    // Two figures of one name would overwrite each other.
    let err = refused("twice", &(STUDIES.to_string() + "name = \"noise\"\n"));
    assert!(
        err.contains("figure[1]: draws noise.svg, as figure[0] does"),
        "{err}"
    );
    // A figure that reads a column the results will not have, naming the figure, the column
    // and the columns there are.
    let typo = STUDIES.replace("y = \"interface_term\"", "y = \"interface_trem\"");
    let err = refused("typo", &typo);
    assert!(
        err.contains("figure[0]: reads `interface_trem`") && err.contains("interface_term,"),
        "{err}"
    );
    // A figure reading the pipeline's gap where no grid point sets a pipeline.
    let unset = STUDIES.replace(
        "y = \"interface_term\"",
        "y = \"interface_term\"\nreference = [\"pipeline_policy_gap\"]",
    );
    let err = refused("unset", &unset);
    assert!(
        err.contains(
            "figure[0]: reads `pipeline_policy_gap`, but no grid point sets [run] pipeline"
        ),
        "{err}"
    );
    // Likewise any setting no grid point sets.
    let unclipped = STUDIES.replace("y = \"interface_term\"", "y = \"clip\"");
    let err = refused("unclipped", &unclipped);
    assert!(
        err.contains("figure[0]: reads `clip`, but no grid point sets `clip`, so it is empty"),
        "{err}"
    );

    // An axis that is text in every row, and a checkpoint the grid never takes.
    let text = STUDIES.replace("y = \"interface_term\"", "y = \"sampler\"");
    let err = refused("text", &text);
    assert!(
        err.contains("figure[0]: y = `sampler` is text in every row, not a number"),
        "{err}"
    );
    let late = STUDIES.replace(
        "y = \"interface_term\"",
        "y = \"interface_term\"\ncheckpoint = 2",
    );
    let err = refused("late", &late);
    assert!(
        err.contains(
            "figure[0]: checkpoint = 2, but the grid takes at most 2 checkpoints (0 to 1)"
        ),
        "{err}"
    );

    // A figure that cannot be drawn from the results (its filter keeps no row) is reported;
    // the results and the manifest are written all the same.
    let empty = STUDIES.replace("study = \"noise\"", "study = \"nois\"");
    let path = config(&d, &empty);
    let report = sweep(&path, &d.join("empty"), None, false, None, false).unwrap();
    assert_eq!(report.figures.drawn, 1);
    assert!(
        report.figures.failed[0].contains("nois"),
        "{:?}",
        report.figures.failed
    );
    assert!(d.join("empty").join("manifest.json").exists());
}

/// Units with diverged instances are counted (the command line warns of them).
#[test]
fn diverged_units_are_counted() {
    let d = dir("diverged");
    let fine = config(&d, &mlp(CONFIG));
    let r = sweep(&fine, &d.join("fine"), None, false, None, false).unwrap();
    assert_eq!(r.diverged, 0);
    let wild = mlp(CONFIG).replace("alpha = 0.05", "alpha = 1e30");
    let wild = config(&d, &wild);
    let r = sweep(&wild, &d.join("wild"), None, false, None, false).unwrap();
    assert_eq!(r.diverged, r.units);
    // Each row counts the instances its means leave out: here all five, so no mean.
    let rows = std::fs::read_to_string(d.join("wild/results.jsonl")).unwrap();
    let mut last = 0;
    for row in rows.lines() {
        let row: serde_json::Value = serde_json::from_str(row).unwrap();
        if row["epoch"] == 600 {
            assert_eq!(row["diverged"], 5, "{row}");
            assert!(
                row["q_err"].is_null() && row["policy_gap"].is_null(),
                "{row}"
            );
            last += 1;
        }
    }
    assert_eq!(last, r.units, "a last-checkpoint row per unit");
    assert_eq!(r.off_mu, 0, "uniform behavior samples μ");
}

/// A sweep counts its units whose ε-greedy behavior samples off the oracle's μ.
#[test]
fn units_off_mu_are_counted() {
    let d = dir("off-mu");
    let text = CONFIG.replace(
        "width = [4, 8]",
        "behavior = [\"uniform\", { epsilon_greedy = { epsilon = 0.2 } }]",
    );
    let r = sweep(&config(&d, &text), &d.join("out"), None, false, None, false).unwrap();
    assert_eq!((r.units, r.off_mu), (12, 6));
}

/// An axis of the MLP's shape on a base config that sets no network (tabular by default) says
/// so, rather than failing on the depth that the MLP it would make lacks.
#[test]
fn a_width_axis_needs_a_network() {
    let d = dir("no-network");
    let text = "[model]\nagents = 2\nartifact_states = 4\ninterface_states = 2\n\
        [run]\ninstances = 2\nepochs = 10\n[sweep]\nwidth = [8, 16]\n";
    let err = sweep(&config(&d, text), &d.join("out"), None, false, None, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sweep.width: sets learner.network.mlp.width, but the base config sets no [learner] network (tabular by default)"),
        "{err}"
    );
}

/// `file` is an axis by its bare name, as `model.file` is: one model file per grid point.
#[test]
fn an_axis_of_model_files() {
    let handoff = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/handoff.json");
    let text = format!(
        "[learner]\nnetwork = \"tabular\"\n[run]\ninstances = 2\nepochs = 10\nbackend = \"cpu\"\n\
         [sweep]\nfile = [{:?}]\nseeds = [0, 1]\n",
        handoff.display().to_string()
    );
    let units = expand(&text, Path::new("sweep.toml")).unwrap();
    assert_eq!(units.len(), 2);
    let model = icq::config::load_input(&handoff).unwrap().model;
    assert!(units.iter().all(|u| u.input.model == model));
}

/// Shards of one config text whose model file changed between them ran two sweeps: the merge
/// refuses them (their manifests record each grid's units, models included), where comparing
/// the config text had joined their rows.
#[test]
fn shards_of_a_changed_model_file_do_not_merge() {
    let d = dir("changed-model");
    let handoff = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/handoff.json");
    let model = d.join("m.json");
    std::fs::copy(&handoff, &model).unwrap();
    let path = config(
        &d,
        "[model]\nfile = \"m.json\"\n[run]\ninstances = 2\nepochs = 10\nbackend = \"cpu\"\n\
         [sweep]\nseeds = [0, 1, 2]\n",
    );
    let shard = |k, out: &str| {
        sweep(
            &path,
            &d.join(out),
            Some(Shard { k, n: 2 }),
            false,
            None,
            false,
        )
        .unwrap();
    };
    shard(1, "a");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    doc["options"][1]["reward"] = serde_json::json!([[2.0]]);
    std::fs::write(&model, doc.to_string()).unwrap();
    shard(2, "b");
    let err = merge(&[d.join("a"), d.join("b")], &d.join("m"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("belongs to another sweep"), "{err}");
    assert!(!d.join("m").exists());
}

/// The memory check covers this shard's units only, and names the grid point it refuses.
#[test]
fn memory_is_checked_for_this_shards_units() {
    if icq::io::available_memory().is_none() {
        eprintln!("skipped: this system does not say how much memory is available");
        return;
    }
    let d = dir("memory-shard");
    let text = "[model]\nagents = 2\nartifact_states = 4\ninterface_states = 2\n\
        [learner]\nnetwork = { mlp = { width = 64, depth = 1 } }\n\
        [run]\ninstances = 2\nepochs = 20\nbackend = \"cpu\"\n\
        [sweep]\nseeds = [0]\n\
        [sweep.big]\ninstances = 4000000000\n[sweep.small]\ninstances = 3\n";
    let path = config(&d, text);
    let err = sweep(&path, &d.join("all"), None, false, None, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("run.instances (grid point 0, study big): 4000000000 instances need"),
        "{err}"
    );
    assert!(!d.join("all").join("parts").exists(), "nothing ran");
    // Studies come in name order (big, small): shard 2/2 runs the small one alone.
    let r = sweep(
        &path,
        &d.join("small"),
        Some(Shard { k: 2, n: 2 }),
        false,
        None,
        false,
    )
    .unwrap();
    assert_eq!((r.units, r.mine), (2, 1));
}

/// The tabular base of `CONFIG` with `sweep` as its `[sweep]` table.
fn tabular(sweep: &str) -> String {
    CONFIG.split("[sweep]").next().unwrap().to_string() + "[sweep]\n" + sweep
}

/// Without `seeds`, a sweep runs `[run] seed`; with both, `seeds` wins.
#[test]
fn a_sweep_without_seeds_runs_the_run_seed() {
    let with_seed = |sweep: &str| tabular(sweep).replace("[run]\n", "[run]\nseed = 5\n");
    let seeds = |text: &str| -> Vec<u64> {
        expand(text, Path::new("sweep.toml"))
            .unwrap()
            .iter()
            .map(|u| {
                assert_eq!(u.input.config.run.seed, u.seed);
                u.seed
            })
            .collect()
    };
    assert_eq!(seeds(&with_seed("interface_noise = [0.0, 0.2]\n")), [5, 5]);
    assert_eq!(seeds(&tabular("interface_noise = [0.0, 0.2]\n")), [0, 0]);
    assert_eq!(
        seeds(&with_seed("interface_noise = [0.0]\nseeds = [1, 2]\n")),
        [1, 2]
    );
    // The rows say the seed that ran.
    let d = dir("run-seed");
    let path = config(&d, &with_seed("interface_noise = [0.0]\n"));
    sweep(&path, &d.join("out"), None, false, None, false).unwrap();
    let rows = std::fs::read_to_string(d.join("out/results.jsonl")).unwrap();
    assert!(rows.lines().all(|l| l.contains("\"seed\":5")), "{rows}");
}

/// A unit file whose index is past the grid's end is no unit of the sweep: a resume and a
/// merge refuse it, naming it and the grid's size, instead of adding its rows.
#[test]
fn unit_files_past_the_grid_are_refused() {
    let d = dir("stray");
    let path = config(
        &d,
        &tabular("interface_noise = [0.0, 0.2]\nseeds = [1, 2]\n"),
    );
    let out = d.join("out");
    sweep(&path, &out, None, false, None, false).unwrap();
    let results = std::fs::read(out.join("results.csv")).unwrap();
    std::fs::copy(
        out.join("parts/unit-000002.jsonl"),
        out.join("parts/unit-000010.jsonl"),
    )
    .unwrap();
    let e = sweep(&path, &out, None, true, None, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unit-000010.jsonl is unit 10, but the grid has 4 units"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join("results.csv")).unwrap(), results);
    // The shards of a merge are checked the same way.
    let shards: Vec<PathBuf> = (1..=2).map(|k| d.join(format!("shard{k}"))).collect();
    for (k, dir) in shards.iter().enumerate() {
        sweep(
            &path,
            dir,
            Some(Shard { k: k + 1, n: 2 }),
            false,
            None,
            false,
        )
        .unwrap();
    }
    std::fs::write(shards[1].join("parts/unit-000099.jsonl"), "{\"x\":1}\n").unwrap();
    let merged = d.join("merged");
    let e = merge(&shards, &merged).unwrap_err().to_string();
    assert!(
        e.contains("unit-000099.jsonl is unit 99, but the grid has 4 units"),
        "{e}"
    );
    assert!(!merged.exists(), "the refused merge left its --out");
}

/// A sweep that fails before its first unit is written (here the oracle of its second grid
/// point, in the first batch) names the grid point and leaves no file and no folder it made.
#[test]
fn a_sweep_failing_before_its_first_unit_leaves_nothing() {
    let d = dir("fails-early");
    // 2 agents × 8 artifact × 200² private states: more joint states than the oracle takes.
    let path = config(&d, &tabular("private_states = [2, 200]\nseeds = [1]\n"));
    let out = d.join("a/b/c");
    let e = sweep(&path, &out, None, false, None, false).unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("sweep grid point 1 (private_states = 200): the model has"),
        "{e}"
    );
    assert!(
        !d.join("a").exists(),
        "the sweep left {}",
        d.join("a").display()
    );
    // A folder that was there stays, without a grid file.
    std::fs::create_dir_all(&out).unwrap();
    sweep(&path, &out, None, false, None, false).unwrap_err();
    assert!(out.is_dir() && !out.join("parts").exists());
    // So does a backend that cannot open, chosen before anything is written.
    if icq::backend::Chosen::pick("cuda").is_err() {
        let path = config(&d, &tabular("seeds = [1]\n"));
        let e = sweep(&path, &d.join("x/y/z"), None, false, Some("cuda"), false).unwrap_err();
        assert!(e.to_string().contains("backend unavailable"), "{e}");
        assert!(!d.join("x").exists());
    }
}

/// A results file in `--out` that is no sweep's (no manifest, no parts/) is the user's: a
/// sweep and a merge refuse to overwrite it.
#[test]
fn a_users_results_file_is_not_overwritten() {
    let d = dir("users-results");
    let path = config(&d, &tabular("seeds = [1]\n"));
    for name in ["results.csv", "results.jsonl", "results.parquet"] {
        let out = d.join(name.replace('.', "-"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(name), "mine").unwrap();
        let e = sweep(&path, &out, None, false, None, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("{name} is there and is no sweep's")),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(out.join(name)).unwrap(), "mine");
        assert!(!out.join("parts").exists(), "nothing ran");
    }
    // A shard leaves the results to the merge, which refuses them too.
    let shard = d.join("shard");
    sweep(
        &path,
        &shard,
        Some(Shard { k: 1, n: 1 }),
        false,
        None,
        false,
    )
    .unwrap();
    let out = d.join("results-csv");
    let e = merge(&[shard], &out).unwrap_err().to_string();
    assert!(e.contains("results.csv is there and is no sweep's"), "{e}");
    // The sweep's own folder is rewritten as before.
    let own = d.join("own");
    sweep(&path, &own, None, false, None, false).unwrap();
    sweep(&path, &own, None, true, None, false).unwrap();
}

/// A grid point beyond the exact oracle's limits is refused before the first unit runs,
/// naming the point, rather than after the points before it have run.
#[test]
fn a_point_too_large_for_the_oracle_fails_before_any_unit() {
    let d = dir("too-large");
    // Two studies of different epochs, so two batches: the second's oracle would run only
    // after the first batch's units were written.
    let text = CONFIG.split("[sweep]").next().unwrap().to_string()
        + "[sweep]\nseeds = [1]\n[sweep.first]\nprivate_states = [1]\n\
           [sweep.second]\nepochs = 700\nprivate_states = [200]\n";
    let out = d.join("out");
    let e = sweep(&config(&d, &text), &out, None, false, None, false).unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("sweep grid point 1 (private_states = 200)")
            && e.contains("the model has 640000 joint states"),
        "{e}"
    );
    assert!(!out.exists(), "nothing was written");
}

/// A file in `parts/` whose name is no unit's (`unit-abc.jsonl`) is no finished unit: the
/// folder is not refused as holding units without a grid record, and the file joins nothing.
#[test]
fn a_file_named_like_no_unit_is_no_finished_unit() {
    let d = dir("no-unit-name");
    let out = d.join("out");
    std::fs::create_dir_all(out.join("parts")).unwrap();
    std::fs::write(out.join("parts/unit-abc.jsonl"), "{\"q_err\":1e9}\n").unwrap();
    let text = CONFIG.split("[sweep]").next().unwrap().to_string() + "[sweep]\nseeds = [1]\n";
    let report = sweep(&config(&d, &text), &out, None, false, None, false).unwrap();
    assert_eq!(report.rows, 2, "one unit of two checkpoints");
    let rows = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(!rows.contains("1000000000"), "{rows}");
}
