//! `icq sweep` and `icq merge`: a grid of configs (every combination of the `[sweep]` axes,
//! times the seeds) on the chosen backend — a unit is one (grid point, seed); consecutive units
//! whose checkpoint epochs and parameter storage agree run packed in one batch (as many as fit
//! 512 MiB of instance state and 64 MiB of model tables), each grid point with its own model,
//! learner and one oracle for its seeds — one row per (grid point, seed, checkpoint) with every
//! knob, every exact figure and the mean and standard deviation over instances of every metric.
//!
//! A `[sweep]` table holds lists (axes shared by the whole sweep), `seeds`, and optionally
//! tables `[sweep.NAME]`, each a study with its own axes (lists) and fixed settings (any other
//! value), so that one config can run several grids — `examples/bound.toml` runs the four
//! studies of the bound; rows then carry a `study` column. `[[figure]]` tables name figures
//! (see [`crate::plot::figures_of`]) drawn into the output folder once the grid is complete.
//!
//! Each finished unit is written at once to `DIR/parts/` through a temporary file and a
//! rename, so a sweep killed at any moment and started again with `--resume` redoes no
//! finished unit and loses or duplicates no row. `--shard k/n` (or the Slurm / Kubernetes
//! array index) runs the units u with u mod n = k − 1; `icq merge` joins shard folders, checks
//! that every unit is there exactly once, and writes the same files an unsharded run writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::backend::device::record_fields;
use crate::config::{Config, Input};
use crate::error::{Error, Result};
use crate::io::write_atomically;
use crate::learn::metrics::Metrics;
use crate::learn::net::NetLayout;
use crate::learn::Weights;
use crate::records::{num, to_jsonl, write_rows, Record};
use crate::run::{mean_sd, progress_bar, run_points, work_per_seed, Point, Ticker};

/// Knobs of `[model]` that a bare axis name may set.
const MODEL_KNOBS: &[&str] = &[
    "file",
    "builder",
    "agents",
    "artifact_states",
    "interface_states",
    "private_states",
    "gamma",
    "duration",
    "laziness",
    "interface_noise",
    "private_weight",
    "reward_scale",
    "model_seed",
];
/// Keys of `[learner]` that a bare axis name may set.
const LEARNER_KNOBS: &[&str] = &[
    "mode",
    "encoding",
    "network",
    "step_size",
    "clip",
    "behavior",
    "sampler",
    "weights",
];
/// Keys of `[run]` that a bare axis name may set.
const RUN_KNOBS: &[&str] = &["instances", "epochs", "checkpoints", "policy_gap_instances"];

/// One unit of a sweep: a grid point under one seed.
#[derive(Clone, Debug)]
pub struct Unit {
    /// Position in the canonical order (point-major, then seed).
    pub index: usize,
    /// The grid point's index (numbered across studies).
    pub point: usize,
    /// The study it belongs to (`[sweep.NAME]`), if the sweep has studies.
    pub study: Option<String>,
    /// The run seed.
    pub seed: u64,
    /// The axis values of the grid point, by axis name.
    pub values: Vec<(String, toml::Value)>,
    /// The validated model and config.
    pub input: Input,
}

/// The TOML path an axis name sets: a dotted path as written, or a bare knob's home.
fn axis_path(name: &str) -> Result<Vec<String>> {
    let home = if name.contains('.') {
        name.split('.').collect()
    } else if MODEL_KNOBS.contains(&name) {
        vec!["model", name]
    } else if LEARNER_KNOBS.contains(&name) {
        vec!["learner", name]
    } else if RUN_KNOBS.contains(&name) {
        vec!["run", name]
    } else if name == "width" || name == "depth" {
        vec!["learner", "network", "mlp", name]
    } else if name == "pipeline" {
        // A list of actions is one setting, not an axis of numbers.
        return Err(Error::invalid(
            format!("sweep.{name}"),
            "one fixed handoff order goes in the base [run] table; for an axis of orders write \"run.pipeline\" = [[1, 2, 0], [2, 0, 1]]",
        ));
    } else {
        return Err(Error::invalid(
            format!("sweep.{name}"),
            "not a knob of [model], [learner] or [run]; write a dotted path (\"learner.network.mlp.width\") for nested keys",
        ));
    };
    let home: Vec<String> = home.into_iter().map(str::to_string).collect();
    check_axis_home(name, &home)?;
    Ok(home)
}

/// Settings a sweep owns: the seed (every unit's, from `seeds`) and the backend (one for the
/// whole sweep).
fn check_axis_home(name: &str, home: &[String]) -> Result<()> {
    let why = match home {
        [run, seed] if run == "run" && seed == "seed" => {
            "the seeds of a sweep are its seeds = [...]"
        }
        [run, backend] if run == "run" && backend == "backend" => {
            "one backend runs the whole sweep: set [run] backend or pass --backend"
        }
        _ => return Ok(()),
    };
    Err(Error::invalid(format!("sweep.{name}"), why))
}

/// Sets `path` in `table` to `value` (for the sweep key `key`), making the tables on the way;
/// a value on the way that is not a table (`network = "tabular"` under a `width` axis) is an
/// error, since replacing it would run a config the user never wrote.
fn set_path(table: &mut toml::Table, key: &str, path: &[String], value: toml::Value) -> Result<()> {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut at = table;
    for (i, part) in parents.iter().enumerate() {
        let entry = at
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            return Err(Error::invalid(
                key,
                format!(
                    "sets {}, but {} is {entry}, not a table{}",
                    path.join("."),
                    path[..=i].join("."),
                    if path.starts_with(&["learner".into(), "network".into()]) {
                        ": write [learner] network = { mlp = { width = …, depth = … } }"
                    } else {
                        ""
                    }
                ),
            ));
        }
        at = entry.as_table_mut().expect("a table");
    }
    at.insert(last.clone(), value);
    Ok(())
}

/// Expands the config at `path` (text `text`) into its units, validating every one before
/// any runs: a bad axis or value fails here, with the key named.
pub fn expand(text: &str, path: &Path) -> Result<Vec<Unit>> {
    if path.extension().is_some_and(|e| e == "json") {
        return Err(Error::invalid(
            "sweep",
            format!(
                "{} is a model file; a sweep needs a config (TOML) with a [sweep] table, which \
                 can name the model with [model] file = \"{}\"",
                path.display(),
                path.display()
            ),
        ));
    }
    let mut base: toml::Table = toml::from_str(text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let sweep = match base.remove("sweep") {
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err(Error::invalid("sweep", "expected a table")),
        None => {
            return Err(Error::invalid(
                "sweep",
                "a sweep config needs a [sweep] table",
            ))
        }
    };
    base.remove("figure");
    let mut seeds = vec![0u64];
    let mut shared: Vec<Axis> = Vec::new();
    let mut studies: Vec<(Option<String>, toml::Table)> = Vec::new();
    for (name, values) in sweep {
        match values {
            toml::Value::Table(_) if ["model", "learner", "run"].contains(&name.as_str()) => {
                return Err(Error::invalid(
                    format!("sweep.{name}"),
                    "a table here is a study; write a dotted axis name in quotes (\"learner.alpha\" = [...])",
                ))
            }
            toml::Value::Table(t) => studies.push((Some(name), t)),
            toml::Value::Array(list) if !list.is_empty() && name == "seeds" => {
                seeds = list
                    .iter()
                    .map(|v| match v.as_integer() {
                        Some(i) if i >= 0 => Ok(i as u64),
                        _ => Err(Error::invalid(
                            "sweep.seeds",
                            format!("expected seeds ≥ 0, found {v}"),
                        )),
                    })
                    .collect::<Result<_>>()?;
                no_repeats("sweep.seeds", &list)?;
            }
            toml::Value::Array(list) if !list.is_empty() => {
                let key = format!("sweep.{name}");
                no_repeats(&key, &list)?;
                let home = axis_path(&name)?;
                one_setter(&key, &home, &shared, &[])?;
                shared.push(Axis {
                    name: name.clone(),
                    key,
                    home,
                    values: list,
                });
            }
            _ => {
                return Err(Error::invalid(
                    format!("sweep.{name}"),
                    "expected a non-empty list of values, or a table (a study with its own axes)",
                ))
            }
        }
    }
    if studies.is_empty() {
        studies.push((None, toml::Table::new()));
    }
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let mut units = Vec::new();
    let mut point = 0;
    for (study, entries) in studies {
        // A study's lists are its own axes (after the shared ones); its other keys are fixed
        // settings of every one of its grid points.
        let mut table = base.clone();
        let mut axes = shared.clone();
        let mut fixed: Vec<Axis> = Vec::new();
        for (name, value) in entries {
            let key = format!("sweep.{}.{name}", study.as_deref().unwrap_or_default());
            if shared.iter().any(|a| a.name == name) {
                return Err(Error::invalid(
                    key,
                    "also an axis of the whole [sweep]: set it in one place",
                ));
            }
            let home = axis_path(&name).map_err(|e| match e {
                Error::Invalid { message, .. } => Error::invalid(key.clone(), message),
                other => other,
            })?;
            match value {
                toml::Value::Array(list) if list.is_empty() => {
                    return Err(Error::invalid(key, "expected a non-empty list of values"))
                }
                toml::Value::Array(list) => {
                    no_repeats(&key, &list)?;
                    // Axes are applied after every fixed setting, in order.
                    one_setter(&key, &home, &axes, &[])?;
                    one_setter(&key, &home, &fixed, &[])?;
                    axes.push(Axis {
                        name,
                        key,
                        home,
                        values: list,
                    });
                }
                value => {
                    one_setter(&key, &home, &fixed, &axes)?;
                    set_path(&mut table, &key, &home, value.clone())?;
                    fixed.push(Axis {
                        name,
                        key,
                        home,
                        values: vec![value],
                    });
                }
            }
        }
        let points: usize = axes.iter().map(|a| a.values.len()).product();
        for local in 0..points {
            let (config, model, values) = grid_point(&table, &axes, point, local, base_dir)?;
            for &seed in &seeds {
                let mut config = config.clone();
                config.run.seed = seed;
                units.push(Unit {
                    index: units.len(),
                    point,
                    study: study.clone(),
                    seed,
                    values: values.clone(),
                    input: Input {
                        model: model.clone(),
                        config,
                    },
                });
            }
            point += 1;
        }
    }
    Ok(units)
}

/// A validated grid point: its config, its model and its axis values.
type GridPoint = (Config, crate::model::Model, Vec<(String, toml::Value)>);

/// An axis (or a study's fixed setting): its name, its key in the config (for messages), the
/// TOML path it sets and its values.
#[derive(Clone, Debug)]
struct Axis {
    name: String,
    key: String,
    home: Vec<String>,
    values: Vec<toml::Value>,
}

/// An axis whose list names a value twice (`0` and `0.0` too) would run its grid points twice.
fn no_repeats(key: &str, list: &[toml::Value]) -> Result<()> {
    let number = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    let same = |a: &toml::Value, b: &toml::Value| match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    };
    for (i, v) in list.iter().enumerate() {
        if list[..i].iter().any(|u| same(u, v)) {
            return Err(Error::invalid(
                key,
                format!("{v} appears twice: each value once"),
            ));
        }
    }
    Ok(())
}

/// Two names for one setting (`interface_noise` and `"model.interface_noise"`), or a table
/// written over a setting inside it (a `network` axis after a `depth` one), would leave only
/// the one written last in effect. `earlier` are the settings written before this one, `later`
/// those written after it; refining a table written earlier (a `width` axis inside a study's
/// fixed `network`) is what it is for.
fn one_setter(key: &str, home: &[String], earlier: &[Axis], later: &[Axis]) -> Result<()> {
    let clash = |over: &[String], under: &[String]| under.starts_with(over);
    let other = earlier
        .iter()
        .find(|e| clash(home, &e.home))
        .or_else(|| later.iter().find(|l| clash(&l.home, home)));
    let Some(other) = other else {
        return Ok(());
    };
    let message = if other.home == home {
        format!(
            "sets {} as {} does: set it in one place",
            home.join("."),
            other.key
        )
    } else {
        format!(
            "sets {} and {} sets {}: the one written last would replace the other, so set it \
             in one place",
            home.join("."),
            other.key,
            other.home.join(".")
        )
    };
    Err(Error::invalid(key, message))
}

/// The grid point `local` of a study's `axes` over its `table`, validated; `point` is its
/// number across all studies (for messages).
fn grid_point(
    table: &toml::Table,
    axes: &[Axis],
    point: usize,
    local: usize,
    base_dir: &Path,
) -> Result<GridPoint> {
    let mut table = table.clone();
    let mut values = Vec::with_capacity(axes.len());
    let mut rest = local;
    // The last axis varies fastest.
    let mut picks = vec![0; axes.len()];
    for (a, axis) in axes.iter().enumerate().rev() {
        picks[a] = rest % axis.values.len();
        rest /= axis.values.len();
    }
    let where_ = |values: &[(String, toml::Value)]| {
        let parts: Vec<String> = values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        format!("sweep grid point {point} ({})", parts.join(", "))
    };
    for (axis, &pick) in axes.iter().zip(&picks) {
        let value = axis.values[pick].clone();
        values.push((axis.name.clone(), value.clone()));
        set_path(&mut table, &axis.key, &axis.home, value)
            .map_err(|e| Error::invalid(where_(&values), e.to_string()))?;
    }
    let where_ = || where_(&values);
    // The grid point's own config, generated from the file: its parse errors quote it.
    let text = toml::to_string(&table).expect("a table serializes");
    let config = Config::parse(&text, Path::new("the grid point's config"))
        .map_err(|e| Error::invalid(where_(), e.to_string()))?;
    let model = config
        .model
        .build(base_dir)
        .map_err(|e| Error::invalid(where_(), e.to_string()))?;
    config
        .run
        .check_pipeline(&model)
        .map_err(|e| Error::invalid(where_(), e.to_string()))?;
    Ok((config, model, values))
}

/// Which units a shard runs: `k` of `n`, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 1 ≤ k ≤ n.
    pub k: usize,
    /// The number of shards.
    pub n: usize,
}

impl Shard {
    /// Parses `k/n`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "--shard",
                format!("expected k/n with 1 ≤ k ≤ n, found \"{s}\""),
            )
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Self { k, n })
    }

    /// The shard named by the environment: Slurm job arrays (`SLURM_ARRAY_TASK_ID` from 0 and
    /// `SLURM_ARRAY_TASK_COUNT`) or Kubernetes Indexed Jobs (`JOB_COMPLETION_INDEX` from 0 and
    /// `ICQ_SHARDS`, the completion count); `None` when neither is set.
    pub fn from_env() -> Result<Option<Self>> {
        let var = |name: &str| std::env::var(name).ok();
        let pair =
            match (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
                (Some(id), Some(count)) => Some((id, count, "SLURM_ARRAY_TASK_ID")),
                (Some(_), None) => return Err(Error::invalid(
                    "SLURM_ARRAY_TASK_COUNT",
                    "SLURM_ARRAY_TASK_ID is set: set SLURM_ARRAY_TASK_COUNT to the array's size (or pass --shard k/n)",
                )),
                _ => match (var("JOB_COMPLETION_INDEX"), var("ICQ_SHARDS")) {
                    (Some(id), Some(count)) => Some((id, count, "JOB_COMPLETION_INDEX")),
                    (Some(_), None) => return Err(Error::invalid(
                        "ICQ_SHARDS",
                        "JOB_COMPLETION_INDEX is set: set ICQ_SHARDS to the job's completion count",
                    )),
                    _ => None,
                },
            };
        let Some((id, count, name)) = pair else {
            return Ok(None);
        };
        let bad = || {
            Error::invalid(
                name,
                format!("expected an index below the shard count, found {id} of {count}"),
            )
        };
        let count_name = if name == "SLURM_ARRAY_TASK_ID" {
            "SLURM_ARRAY_TASK_COUNT"
        } else {
            "ICQ_SHARDS"
        };
        let count: usize = count.parse().map_err(|_| {
            Error::invalid(
                count_name,
                format!("expected the number of shards, found {count:?}"),
            )
        })?;
        let id: usize = id.parse().map_err(|_| bad())?;
        if id >= count {
            return Err(bad());
        }
        Ok(Some(Self {
            k: id + 1,
            n: count,
        }))
    }

    /// Whether unit `index` belongs to this shard.
    pub fn takes(&self, index: usize) -> bool {
        index % self.n == self.k - 1
    }
}

/// How a summary column reads one instance's metrics.
type MetricOf = fn(&Metrics) -> Option<f64>;

/// The rows of one finished unit: per checkpoint, every knob and exact figure, then the mean
/// and standard deviation over instances of each metric.
fn unit_rows(unit: &Unit, ctx: &Record, checkpoints: &[Vec<Metrics>]) -> Vec<Record> {
    let metrics: [(&str, MetricOf); 6] = [
        ("q_err", |m| Some(m.q_err)),
        ("q_err_obs", |m| Some(m.q_err_obs)),
        ("q_err_sup", |m| Some(m.q_err_sup)),
        ("policy_gap", |m| m.policy_gap),
        ("mean_tau", |m| Some(m.mean_tau)),
        ("mean_abs_y", |m| Some(m.mean_abs_target)),
    ];
    checkpoints
        .iter()
        .enumerate()
        .map(|(c, ms)| {
            let mut r = Record::default();
            if let Some(study) = &unit.study {
                r.push("study", study.as_str());
            }
            r.push("point", unit.point);
            r.push("checkpoint", c);
            r.push("epoch", ms.first().map_or(0, |m| m.epoch));
            r.extend(ctx);
            for (name, get) in metrics {
                let (mean, sd, n) = mean_sd(ms.iter().filter_map(get));
                r.push(name, if n == 0 { Value::Null } else { num(mean) });
                r.push(
                    &format!("{name}_sd"),
                    if n < 2 { Value::Null } else { num(sd) },
                );
            }
            r
        })
        .collect()
}

fn part_path(dir: &Path, unit: usize) -> PathBuf {
    dir.join("parts").join(format!("unit-{unit:06}.jsonl"))
}

/// The grid file of an output folder: one key per unit (see [`unit_key`]).
fn grid_path(dir: &Path) -> PathBuf {
    dir.join("parts").join("grid.json")
}

/// A 64-bit FNV-1a hash (stable across builds and platforms, unlike `std`'s hashers).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The version of what a unit's settings give: raised whenever the same settings give other
/// rows (2: embeddings with a stream of their own, Σ|y| per launch on the GPU kernels, the
/// `ais_bound` column), so that a sweep never resumes with rows of an older build.
const RESULTS_VERSION: u32 = 2;

/// What a unit computes, as a hash: the results version, its place in the grid, its seed and
/// axis values, and its whole model, learner and run settings (all but the backend, which
/// `--backend` may change between runs of one sweep).
fn unit_key(unit: &Unit, model: &str) -> String {
    let mut run = unit.input.config.run.clone();
    run.backend.clear();
    let values: Vec<(&str, String)> = unit
        .values
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_string()))
        .collect();
    let what = serde_json::json!({
        "results": RESULTS_VERSION,
        "index": unit.index,
        "point": unit.point,
        "study": unit.study,
        "seed": unit.seed,
        "values": values,
        "model": model,
        "learner": unit.input.config.learner,
        "run": run,
    });
    format!("{:016x}", fnv1a(what.to_string().as_bytes()))
}

/// Whether `dir` holds a finished unit of any sweep.
fn has_parts(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("parts")).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("unit-") && n.ends_with(".jsonl"))
        })
    })
}

/// Makes sure the finished units in `dir` (if any) are units of this grid, then records the
/// grid there, so that `--resume` (or a shard sharing the folder) can never mix the rows of
/// two sweeps: a unit is known by its index, and the index means something only in its grid.
fn check_grid(dir: &Path, units: &[Unit]) -> Result<()> {
    // The model's text once per grid point (the seeds of a point share it).
    let mut models: BTreeMap<usize, String> = BTreeMap::new();
    let keys: Vec<String> = units
        .iter()
        .map(|u| {
            let model = models.entry(u.point).or_insert_with(|| {
                serde_json::to_string(&crate::model::ModelFile::from(u.input.model.clone()))
                    .expect("json")
            });
            unit_key(u, model)
        })
        .collect();
    let path = grid_path(dir);
    let version = env!("CARGO_PKG_VERSION");
    let ours = serde_json::json!({ "units": units.len(), "keys": keys, "icq_version": version });
    let theirs = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            serde_json::from_str::<Value>(&text).map_err(|e| Error::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Io {
                path,
                cause: source,
            })
        }
    };
    let same = |v: &Value| v["units"] == ours["units"] && v["keys"] == ours["keys"];
    if theirs.as_ref().is_some_and(same) {
        return Ok(());
    }
    if has_parts(dir) {
        let why = match &theirs {
            None => format!(
                "{} holds finished units but no {} to say which sweep they belong to, so \
                 they cannot be checked against this sweep: choose another folder",
                dir.display(),
                path.display()
            ),
            Some(v) => {
                let old: Vec<&str> = v["keys"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let first = (0..units.len().max(old.len()))
                    .find(|&i| old.get(i).copied() != keys.get(i).map(String::as_str));
                let which = match first.filter(|&i| i < old.len()).and_then(|i| units.get(i)) {
                    Some(u) => format!(
                        "; unit {} (point {}, seed {}) is not the same run there",
                        u.index, u.point, u.seed
                    ),
                    None => String::new(),
                };
                let written = match v["icq_version"].as_str() {
                    Some(w) if w != version => {
                        format!("; written by icq {w}, whose settings may differ from {version}'s")
                    }
                    _ => String::new(),
                };
                format!(
                    "{} holds results of another sweep ({} units there, {} here{which}{written}): \
                     choose another folder",
                    dir.display(),
                    v["units"],
                    units.len()
                )
            }
        };
        return Err(Error::invalid("--out", why));
    }
    write_atomically(
        &path,
        serde_json::to_string(&ours).expect("json").as_bytes(),
    )
}

/// What `icq sweep` did.
#[derive(Debug)]
pub struct SweepReport {
    /// Units in the whole grid.
    pub units: usize,
    /// Units this shard runs.
    pub mine: usize,
    /// Of those, units already finished before this call (`--resume`).
    pub skipped: usize,
    /// Batches the units left to run were packed into.
    pub batches: usize,
    /// Rows written to the results files (0 for a shard, whose parts wait for `icq merge`).
    pub rows: usize,
    /// Seconds this call ran.
    pub seconds: f64,
    /// The config's `[[figure]]`s, drawn once the grid is complete.
    pub figures: Figures,
    /// Units run by this call that ended with an instance whose Q-values are not finite
    /// (their rows average the other instances; a metric of no finite instance is null).
    pub diverged: usize,
}

/// What became of a sweep's `[[figure]]`s.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Figures drawn.
    pub drawn: usize,
    /// Figures that could not be drawn, each with why (a column that is not there, a filter
    /// that keeps no row, nothing positive to put on log axes…).
    pub failed: Vec<String>,
}

/// Runs the sweep of the config at `path` into `out`.
pub fn sweep(
    path: &Path,
    out: &Path,
    shard: Option<Shard>,
    resume: bool,
    backend: Option<&str>,
    progress: bool,
) -> Result<SweepReport> {
    let start = Instant::now();
    // One shard of one is the whole grid: its results are written as an unsharded sweep's.
    let shard = shard.filter(|s| s.n > 1);
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    let mut units = expand(&text, path)?;
    let figures = figures_in(&text, path)?;
    if let Some(b) = backend {
        for u in &mut units {
            u.input.config.run.backend = b.to_string();
        }
    }
    check_figure_columns(&figures, &units)?;
    let mine: Vec<&Unit> = units
        .iter()
        .filter(|u| shard.is_none_or(|s| s.takes(u.index)))
        .collect();
    check_unit_memory(&mine)?;
    crate::io::writable_dir(out, "--out")?;
    if shard.is_none() {
        crate::records::rows_fit(out, "results")?;
    }
    // A folder with finished units is checked unit by unit; one without (merged results, or
    // parts/ deleted) by its manifest, whose results this sweep would replace.
    if !has_parts(out) {
        check_manifests(out, &text)?;
    }
    check_grid(out, &units)?;
    let todo: Vec<&&Unit> = mine
        .iter()
        .filter(|u| !part_path(out, u.index).exists())
        .collect();
    if !resume && todo.len() < mine.len() {
        return Err(Error::invalid(
            "--out",
            format!(
                "{} already holds results of this sweep: pass --resume to finish it, or choose another folder",
                out.display()
            ),
        ));
    }
    // One bar over the whole sweep, advancing by instance-epochs trained (so that a batch of
    // many grid points moves it as it runs); the message counts finished units.
    let mut work = 0u64;
    for unit in &todo {
        work += work_per_seed(&unit.input)?;
    }
    let bar = progress_bar(work, progress);
    let mut finished = 0;
    let mut diverged = 0;
    // One backend for the whole sweep (units may name theirs only through the shared config).
    let mut chosen: Option<(crate::backend::Chosen, String)> = None;
    let mut backend_used = String::new();
    let packed = packs(&todo)?;
    for pack in &packed {
        let first = pack[0][0];
        if chosen.is_none() {
            chosen = Some(crate::backend::Chosen::pick(
                &first.input.config.run.backend,
            )?);
        }
        let (backend, why) = chosen.as_ref().expect("chosen above");
        let seeds: Vec<Vec<u64>> = pack
            .iter()
            .map(|units| units.iter().map(|u| u.seed).collect())
            .collect();
        let points: Vec<Point<'_>> = pack
            .iter()
            .zip(&seeds)
            .map(|(units, seeds)| Point {
                input: &units[0].input,
                seeds,
            })
            .collect();
        let running = match pack.len() {
            1 => {
                let parts: Vec<String> = first
                    .values
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("{} seeds {:?}", parts.join(" "), seeds[0])
            }
            n => format!("{n} grid points from point {}", first.point),
        };
        bar.set_message(format!(
            "{finished}/{} units; running {running}",
            todo.len()
        ));
        let ticker = Ticker {
            bar: &bar,
            epochs: false,
        };
        let reports = run_points(backend, why.clone(), &points, ticker)?;
        for (units, report) in pack.iter().zip(&reports) {
            backend_used = report.backend.clone();
            let per_seed = units[0].input.config.run.instances as usize;
            for (k, unit) in units.iter().enumerate() {
                let own: Vec<Vec<Metrics>> = report
                    .checkpoints
                    .iter()
                    .map(|c| c[k * per_seed..(k + 1) * per_seed].to_vec())
                    .collect();
                let mut ctx = report.context.clone();
                ctx.set("seed", unit.seed);
                if own
                    .last()
                    .is_some_and(|ms| ms.iter().any(|m| !m.q_err.is_finite()))
                {
                    diverged += 1;
                }
                let rows = unit_rows(unit, &ctx, &own);
                write_atomically(&part_path(out, unit.index), to_jsonl(&rows).as_bytes())?;
                finished += 1;
            }
        }
    }
    bar.finish_and_clear();
    // A shard leaves its parts for `icq merge`; a whole grid writes its results now.
    let rows = match shard {
        None => collect(&[out.to_path_buf()], out, units.len(), None)?,
        Some(_) => 0,
    };
    let manifest = serde_json::json!({
        "config": text,
        "config_path": path.display().to_string(),
        "icq_version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("ICQ_GIT_REVISION").unwrap_or("unknown"),
        "backend": backend_used,
        "units": units.len(),
        "shard": shard.map(|s| format!("{}/{}", s.k, s.n)),
        "wall_seconds": start.elapsed().as_secs_f64(),
    });
    let name = match shard {
        None => "manifest.json".to_string(),
        Some(s) => format!("manifest-shard-{}-of-{}.json", s.k, s.n),
    };
    write_atomically(
        &out.join(name),
        serde_json::to_string_pretty(&manifest)
            .expect("json")
            .as_bytes(),
    )?;
    // Figures last: results and manifest stand whatever a figure's fate.
    let figures = match shard {
        None => draw_figures(out, &figures),
        Some(_) => Figures::default(),
    };
    Ok(SweepReport {
        units: units.len(),
        mine: mine.len(),
        skipped: mine.len() - todo.len(),
        batches: packed.len(),
        rows,
        seconds: start.elapsed().as_secs_f64(),
        figures,
        diverged,
    })
}

/// Bytes of instance state (parameters and records) one packed batch may hold.
const PACK_BYTES: usize = 512 << 20;

/// The units to run, packed into batches: per batch, its grid points in order, per point the
/// units (seeds) it runs. Consecutive units share a batch while their checkpoint epochs and
/// parameter storage agree, their instance state fits [`PACK_BYTES`] and their model tables
/// [`PACK_TABLE_BYTES`] (a unit larger than that runs alone); each point keeps one model, learner and oracle, whatever its neighbours
/// in the batch.
fn packs<'a>(todo: &[&&'a Unit]) -> Result<Vec<Vec<Vec<&'a Unit>>>> {
    // A quarter of the memory available, where that is less: a batch's Q tables, metrics and
    // the device's copies come on top of its state.
    let pack_bytes =
        crate::io::available_memory().map_or(PACK_BYTES, |m| PACK_BYTES.min((m / 4) as usize));
    let mut out: Vec<Vec<Vec<&Unit>>> = Vec::new();
    let (mut bytes, mut tables, mut key) = (0, 0, (Vec::new(), Weights::F32));
    for &&unit in todo {
        let cfg = &unit.input.config;
        let own = (cfg.run.checkpoint_epochs()?, cfg.learner.weights);
        let (size, point_tables) = unit_bytes(unit);
        let new_point = out
            .last()
            .and_then(|p| p.last())
            .is_none_or(|p| p[0].point != unit.point);
        // A point's tables count once, however many of its seeds the batch holds.
        let more_tables = if new_point { point_tables } else { 0 };
        let joins = !out.is_empty()
            && own == key
            && bytes + size <= pack_bytes
            && tables + more_tables <= PACK_TABLE_BYTES;
        if !joins {
            out.push(Vec::new());
            (bytes, tables, key) = (0, point_tables, own);
        } else {
            tables += more_tables;
        }
        bytes += size;
        let pack = out.last_mut().expect("a pack");
        match pack.last_mut() {
            Some(point) if point[0].point == unit.point => point.push(unit),
            _ => pack.push(vec![unit]),
        }
    }
    Ok(out)
}

/// The shards `k/n` (1-based) of a grid of `units` split `n` ways whose units are exactly the
/// `missing` ones, if they are whole shards: a merge missing whole shards names them.
fn missing_shards(missing: &[usize], units: usize, n: usize) -> Option<Vec<usize>> {
    let mut ks: Vec<usize> = missing.iter().map(|u| u % n).collect();
    ks.sort_unstable();
    ks.dedup();
    let whole = (0..units).filter(|u| ks.contains(&(u % n))).count() == missing.len();
    (whole && ks.len() < n).then(|| ks.iter().map(|k| k + 1).collect())
}

/// Refuses, before any work, units (this shard's) of which the largest alone needs more host
/// memory than the system has available (batches are packed to a bounded size, but a unit is
/// never split), naming its grid point.
fn check_unit_memory(units: &[&Unit]) -> Result<()> {
    let mut largest: Option<(u64, u64, &Unit)> = None;
    for (i, &unit) in units.iter().enumerate() {
        if i > 0 && units[i - 1].point == unit.point {
            continue;
        }
        let (cfg, model) = (&unit.input.config, &unit.input.model);
        let l = &cfg.learner;
        let layout = NetLayout::new(&model.space(), model.actions, l.mode, l.network, l.encoding);
        let checkpoints = cfg.run.checkpoint_epochs()?.len();
        let each = crate::backend::instance_bytes(&layout, model.agents.len(), checkpoints);
        let instances = u64::from(cfg.run.instances);
        if largest.is_none_or(|(n, e, _)| instances.saturating_mul(each) > n.saturating_mul(e)) {
            largest = Some((instances, each, unit));
        }
    }
    let Some((instances, each, unit)) = largest else {
        return Ok(());
    };
    let field = match &unit.study {
        Some(study) => format!("run.instances (grid point {}, study {study})", unit.point),
        None => format!("run.instances (grid point {})", unit.point),
    };
    let holds = crate::backend::instance_holds(1);
    crate::io::check_memory(instances, each, holds, &field)
}

/// Bytes of model tables one packed batch may hold (device backends bind them whole; the
/// smallest storage-binding limit of common adapters is 128 MiB).
const PACK_TABLE_BYTES: usize = 64 << 20;

/// Bytes of a unit's instance state (parameters and records), and of its model tables on a
/// device (an estimate from above: transition tables, rewards, per-state decoding, the
/// stationary law and the input features).
fn unit_bytes(unit: &Unit) -> (usize, usize) {
    let (cfg, model) = (&unit.input.config, &unit.input.model);
    let space = model.space();
    let l = &cfg.learner;
    let layout = NetLayout::new(&space, model.actions, l.mode, l.network, l.encoding);
    let state = layout.params + record_fields(layout.units.len(), space.agents);
    let s = model.artifact_states;
    let options: usize = model
        .options
        .iter()
        .map(|o| {
            let m = space.private_states[o.executor];
            s * s + m * m + s * m + 8
        })
        .sum();
    let tables = options
        + space.states * (4 + space.agents)
        + 2 * layout.feat_idx.len()
        + layout.units.len() * 8;
    (4 * state * cfg.run.instances as usize, 4 * tables)
}

/// Refuses, before any work, a `[[figure]]` that reads a column the sweep's results will not
/// have (a misspelt metric or an axis the grid does not vary under that name), one that every
/// row leaves empty (a setting no grid point sets, such as `clip`), an axis that is text in
/// every row, or a checkpoint past the last one.
fn check_figure_columns(figures: &[crate::plot::Figure], units: &[Unit]) -> Result<()> {
    if figures.is_empty() {
        return Ok(());
    }
    let mut columns: Vec<String> = Vec::new();
    // The values each context column takes over the grid, where known before the oracle
    // runs (`None` once any point leaves it to the oracle).
    let mut known: BTreeMap<String, Option<Vec<Value>>> = BTreeMap::new();
    let mut checkpoints = 0;
    // A point's seeds share its columns.
    for (i, unit) in units.iter().enumerate() {
        checkpoints = checkpoints.max(unit.input.config.run.checkpoint_epochs()?.len());
        if i > 0 && units[i - 1].point == unit.point {
            continue;
        }
        let context = crate::run::context_columns(&unit.input);
        let mut ctx = Record::default();
        for (key, value) in context {
            ctx.push(&key, Value::Null);
            let values = known.entry(key).or_insert_with(|| Some(Vec::new()));
            match (values.as_mut(), value) {
                (Some(values), Some(v)) => values.push(v),
                _ => *values = None,
            }
        }
        // One checkpoint with no instances: every column, each null.
        for (key, _) in &unit_rows(unit, &ctx, &[Vec::new()])[0].0 {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let every = |key: &str, test: fn(&Value) -> bool| {
        known
            .get(key)
            .and_then(Option::as_ref)
            .is_some_and(|values| values.iter().all(test))
    };
    for (i, figure) in figures.iter().enumerate() {
        let refuse = |why: String| Err(Error::invalid(format!("figure[{i}]"), why));
        if let Some(key) = figure.columns().find(|k| !columns.contains(k)) {
            return refuse(format!(
                "reads `{key}`, which is not a column of this sweep's results; columns: {}",
                columns.join(", ")
            ));
        }
        if let Some(key) = figure.columns().find(|k| every(k, Value::is_null)) {
            let setting = if crate::run::PIPELINE_COLUMNS.contains(&key.as_str()) {
                "[run] pipeline".to_string()
            } else {
                format!("`{key}`")
            };
            return refuse(format!(
                "reads `{key}`, but no grid point sets {setting}, so it is empty"
            ));
        }
        for (axis, key) in [("x", &figure.x), ("y", &figure.y)] {
            if every(key, Value::is_string) {
                return refuse(format!(
                    "{axis} = `{key}` is text in every row, not a number: plot it as `group`, \
                     or plot a number against it"
                ));
            }
        }
        if let Some(c) = figure.checkpoint.filter(|&c| c >= checkpoints as u64) {
            return refuse(format!(
                "checkpoint = {c}, but the grid takes at most {checkpoints} checkpoints \
                 (0 to {})",
                checkpoints.saturating_sub(1)
            ));
        }
    }
    Ok(())
}

/// The `[[figure]]` entries of the sweep config `text` at `path`.
fn figures_in(text: &str, path: &Path) -> Result<Vec<crate::plot::Figure>> {
    let table: toml::Table = toml::from_str(text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    crate::plot::figures_of(&table)
}

/// Draws `figures` from the results in `out` into `out`; a figure that fails is reported, not
/// fatal.
fn draw_figures(out: &Path, figures: &[crate::plot::Figure]) -> Figures {
    let mut done = Figures::default();
    for figure in figures {
        match crate::plot::plot(out, figure, out) {
            Ok(_) => done.drawn += 1,
            Err(e) => done.failed.push(format!("figure {}: {e}", figure.stem())),
        }
    }
    done
}

/// Reads the part files of `dirs`, checks each unit appears once (and, for a whole grid, that
/// none is missing), and writes `out/results.csv`, `out/results.jsonl` and
/// `out/results.parquet` in unit order.
/// Returns the number of rows.
pub fn collect(dirs: &[PathBuf], out: &Path, units: usize, shard: Option<Shard>) -> Result<usize> {
    let mut parts: BTreeMap<usize, (PathBuf, Vec<Record>)> = BTreeMap::new();
    for dir in dirs {
        let folder = dir.join("parts");
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(_) => continue,
        };
        for entry in entries {
            let path = entry
                .map_err(|source| Error::Io {
                    path: folder.clone(),
                    cause: source,
                })?
                .path();
            let Some(index) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("unit-"))
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
                path: path.clone(),
                cause: source,
            })?;
            let rows = text
                .lines()
                .map(|l| {
                    let v: serde_json::Map<String, Value> =
                        serde_json::from_str(l).map_err(|e| Error::Parse {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                    Ok(Record(v.into_iter().collect()))
                })
                .collect::<Result<Vec<_>>>()?;
            if rows.is_empty() {
                return Err(Error::invalid(
                    "parts",
                    format!(
                        "{} is empty (a finished unit has a row per checkpoint): remove it and \
                         run its sweep again with --resume",
                        path.display()
                    ),
                ));
            }
            if let Some((first, _)) = parts.get(&index) {
                return Err(Error::invalid(
                    "merge",
                    format!(
                        "unit {index} appears twice: {} and {}",
                        first.display(),
                        path.display()
                    ),
                ));
            }
            parts.insert(index, (path, rows));
        }
    }
    let expected: Vec<usize> = (0..units)
        .filter(|&u| shard.is_none_or(|s| s.takes(u)))
        .collect();
    let missing: Vec<usize> = expected
        .iter()
        .copied()
        .filter(|u| !parts.contains_key(u))
        .collect();
    if !missing.is_empty() {
        // The shard count, from the folders' shard manifests (`manifest-shard-k-of-n.json`).
        let n = dirs.iter().find_map(|d| {
            manifests(d).ok()?.into_iter().find_map(|(path, _)| {
                let name = path.file_name()?.to_str()?.strip_suffix(".json")?;
                name.split("-of-").nth(1)?.parse::<usize>().ok()
            })
        });
        let shards = n
            .filter(|&n| n > 1)
            .and_then(|n| Some((missing_shards(&missing, units, n)?, n)))
            .map(|(ks, n)| {
                let ks: Vec<String> = ks.iter().map(|k| format!("{k}/{n}")).collect();
                format!(": the units of shard {}", ks.join(", "))
            })
            .unwrap_or_default();
        return Err(Error::invalid(
            "merge",
            format!(
                "{} of {} units have no results yet (first: unit {}){shards}",
                missing.len(),
                expected.len(),
                missing[0]
            ),
        ));
    }
    let rows: Vec<Record> = parts.into_values().flat_map(|(_, rows)| rows).collect();
    write_rows(out, "results", &rows)?;
    Ok(rows.len())
}

/// The sweep manifests (`manifest*.json`) in `dir`, each parsed: the document, or the reason
/// it is not one (unreadable or not JSON).
fn manifests(dir: &Path) -> Result<Vec<(PathBuf, Result<Value>)>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        cause: source,
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with("manifest") && name.ends_with(".json")) {
            continue;
        }
        let doc = std::fs::read_to_string(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                cause: source,
            })
            .and_then(|text| {
                serde_json::from_str(&text).map_err(|e| Error::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })
            });
        found.push((path, doc));
    }
    Ok(found)
}

/// The error of an `--out` that already holds `what`.
fn already_holds(out: &Path, what: &str) -> Error {
    Error::invalid(
        "--out",
        format!(
            "{} already holds {what}: choose another folder",
            out.display()
        ),
    )
}

/// Refuses an `out` whose manifest is another config's: its results files are another sweep's.
fn check_manifests(out: &Path, config: &str) -> Result<()> {
    for (path, doc) in manifests(out)? {
        if !doc.is_ok_and(|m| m["config"].as_str() == Some(config)) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            return Err(already_holds(
                out,
                &format!("the results of a sweep of another config ({name})"),
            ));
        }
    }
    Ok(())
}

/// Refuses an `out` of `merge` that holds another sweep's work: a manifest of another config,
/// or unit files (`parts/`) when `out` is not one of the merged folders. Merging again into
/// the same folder rewrites the same files.
fn check_merge_out(dirs: &[PathBuf], out: &Path, config: &str) -> Result<()> {
    let refuse = |what: &str| Err(already_holds(out, what));
    check_manifests(out, config)?;
    let same_dir = |d: &PathBuf| match (d.canonicalize(), out.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if out.join("parts").exists() && !dirs.iter().any(same_dir) {
        return refuse("a sweep's unit files (parts/) and is not one of the merged folders");
    }
    Ok(())
}

/// Joins the shard folders `dirs` into `out`: every unit of the grid exactly once, the same
/// results files an unsharded sweep writes, a manifest, and the sweep's figures. Returns the
/// number of rows and what became of the figures.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(usize, Figures)> {
    let same = |a: &PathBuf, b: &PathBuf| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    for (i, dir) in dirs.iter().enumerate() {
        if let Some(first) = dirs[..i].iter().find(|d| same(d, dir)) {
            return Err(Error::invalid(
                "merge",
                format!(
                    "{} is given twice (as {} too): name each folder once",
                    dir.display(),
                    first.display()
                ),
            ));
        }
    }
    let mut grid: Option<(u64, String)> = None;
    for dir in dirs {
        for (path, doc) in manifests(dir)? {
            let m = doc?;
            let units = m["units"].as_u64().unwrap_or(0);
            let config = m["config"].as_str().unwrap_or("").to_string();
            match &grid {
                None => grid = Some((units, config)),
                Some((u, c)) if *u != units || *c != config => {
                    return Err(Error::invalid(
                        "merge",
                        format!(
                            "{} belongs to another sweep (its config or grid differs)",
                            path.display()
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let (units, config) =
        grid.ok_or_else(|| Error::invalid("merge", "no sweep manifest in the given folders"))?;
    crate::io::writable_dir(out, "--out")?;
    crate::records::rows_fit(out, "results")?;
    check_merge_out(dirs, out, &config)?;
    let rows = collect(dirs, out, units as usize, None)?;
    let figures = figures_in(&config, Path::new("manifest.json"))?;
    let manifest = serde_json::json!({
        "config": config,
        "icq_version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("ICQ_GIT_REVISION").unwrap_or("unknown"),
        "units": units,
        "merged_from": dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
    });
    write_atomically(
        &out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)
            .expect("json")
            .as_bytes(),
    )?;
    Ok((rows, draw_figures(out, &figures)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{expand, packs, unit_bytes, Unit, PACK_BYTES, PACK_TABLE_BYTES};

    /// (point, seed) of every unit, per point, per batch.
    fn shape(refs: &[&&Unit]) -> Vec<Vec<Vec<(usize, u64)>>> {
        packs(refs)
            .unwrap()
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .map(|point| point.iter().map(|u| (u.point, u.seed)).collect())
                    .collect()
            })
            .collect()
    }

    /// Whole shards missing from a merge are named; units that are not a whole shard are not.
    #[test]
    fn missing_shards_are_whole_shards_only() {
        use super::missing_shards;
        assert_eq!(missing_shards(&[2, 5, 8, 11], 12, 3), Some(vec![3]));
        assert_eq!(missing_shards(&[0, 1, 3, 4], 6, 3), Some(vec![1, 2]));
        assert_eq!(missing_shards(&[5], 12, 3), None);
        assert_eq!(
            missing_shards(&[0, 1, 2], 3, 3),
            None,
            "every shard is not a few"
        );
    }

    #[test]
    fn grid_points_with_the_same_checkpoints_share_a_batch() {
        let text = "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
            [learner]\nnetwork = \"tabular\"\n[run]\ninstances = 4\nepochs = 10\n\
            [sweep]\ninterface_noise = [0.0, 0.2]\nepochs = [10, 20]\nseeds = [1, 2, 3]\n";
        let units = expand(text, Path::new("sweep.toml")).unwrap();
        let todo: Vec<&_> = units.iter().collect();
        let refs: Vec<&&_> = todo.iter().collect();
        // Points: (10 epochs, η 0), (10, η 0.2), (20, η 0), (20, η 0.2): two batches of two.
        let seeds = |p: usize| vec![(p, 1), (p, 2), (p, 3)];
        assert_eq!(
            shape(&refs),
            [vec![seeds(0), seeds(1)], vec![seeds(2), seeds(3)]]
        );
        // The same epochs: both points in one batch.
        let text = text.replace("epochs = [10, 20]\n", "");
        let units = expand(&text, Path::new("sweep.toml")).unwrap();
        let todo: Vec<&_> = units.iter().collect();
        let refs: Vec<&&_> = todo.iter().collect();
        assert_eq!(
            shape(&refs),
            [vec![
                vec![(0, 1), (0, 2), (0, 3)],
                vec![(1, 1), (1, 2), (1, 3)]
            ]]
        );
        // A resumed or sharded run packs what is left.
        let left: Vec<&&_> = refs.iter().copied().filter(|u| u.seed != 2).collect();
        assert_eq!(
            shape(&left),
            [vec![vec![(0, 1), (0, 3)], vec![(1, 1), (1, 3)]]]
        );
    }

    #[test]
    fn a_batch_holds_what_fits_its_bytes() {
        let text = "[model]\nagents = 2\nartifact_states = 8\ninterface_states = 4\n\
            [learner]\nnetwork = { mlp = { width = 64, depth = 2 } }\n\
            [run]\ninstances = 10000\nepochs = 10\n\
            [sweep]\ninterface_noise = [0.0, 0.2]\nseeds = [1, 2]\n";
        let units = expand(text, Path::new("sweep.toml")).unwrap();
        let size = unit_bytes(&units[0]).0;
        assert!(
            size > PACK_BYTES / 2 && size <= PACK_BYTES,
            "{size} bytes: the test needs one unit per batch"
        );
        let todo: Vec<&_> = units.iter().collect();
        let refs: Vec<&&_> = todo.iter().collect();
        let one = |p: usize, seed: u64| vec![vec![(p, seed)]];
        assert_eq!(shape(&refs), [one(0, 1), one(0, 2), one(1, 1), one(1, 2)]);
    }

    #[test]
    fn a_batch_holds_what_fits_its_model_tables() {
        let text = "[model]\nagents = 2\nartifact_states = 1900\ninterface_states = 4\n\
            [learner]\nnetwork = \"tabular\"\n[run]\ninstances = 2\nepochs = 10\n\
            [sweep]\ninterface_noise = [0.0, 0.1, 0.2]\nseeds = [1, 2]\n";
        let units = expand(text, Path::new("sweep.toml")).unwrap();
        let size = unit_bytes(&units[0]).1;
        assert!(
            size > PACK_TABLE_BYTES / 3 && size <= PACK_TABLE_BYTES / 2,
            "{size} bytes: the test needs two points per batch"
        );
        let todo: Vec<&_> = units.iter().collect();
        let refs: Vec<&&_> = todo.iter().collect();
        // The tables of a point count once, whatever its seeds.
        let point = |p: usize| vec![(p, 1), (p, 2)];
        assert_eq!(shape(&refs), [vec![point(0), point(1)], vec![point(2)]]);
    }
}
