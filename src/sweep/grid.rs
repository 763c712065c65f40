//! Grid expansion: a sweep config's `[sweep]` table (shared axes, `seeds`, studies
//! `[sweep.NAME]` with their own axes and fixed settings) turned into its units — every
//! (grid point, seed), each validated before any runs. A bare axis name finds its home
//! through the knob tables; a dotted name is a TOML path.

use std::path::Path;

use crate::config::{Config, Input};
use crate::error::{Error, Result};

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

impl Unit {
    /// The unit's grid point as messages name it: `sweep grid point 3 (interface_noise = 0.2,
    /// width = 4)`.
    pub fn place(&self) -> String {
        place(self.point, &self.values)
    }
}

/// Grid point `point` with axis values `values`, as messages name it.
fn place(point: usize, values: &[(String, toml::Value)]) -> String {
    let parts: Vec<String> = values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("sweep grid point {point} ({})", parts.join(", "))
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
    } else if name == "seed" || name == "backend" {
        // Keys of [run] that the sweep owns: refused below with what to write instead.
        vec!["run", name]
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
    let in_network = path.starts_with(&["learner".into(), "network".into()]);
    let mut at = table;
    for (i, part) in parents.iter().enumerate() {
        // An axis of the MLP's shape needs the MLP: the default network is tabular, and an
        // MLP made of one axis' key alone would lack the other.
        if in_network && i == 1 && !at.contains_key(part) {
            return Err(Error::invalid(
                key,
                format!(
                    "sets {}, but the base config sets no [learner] network (tabular by default): write [learner] network = {{ mlp = {{ width = …, depth = … }} }}",
                    path.join(".")
                ),
            ));
        }
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
                    if in_network {
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
    // Without `seeds`, the sweep's one seed is `[run] seed` (0 where unset; a value that is not
    // a seed is refused with the base config's other errors, at the first grid point).
    let run_seed = base
        .get("run")
        .and_then(|run| run.get("seed"))
        .and_then(toml::Value::as_integer)
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(0);
    let mut seeds = vec![run_seed];
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
    let where_ = |values: &[(String, toml::Value)]| place(point, values);
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
