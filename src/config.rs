//! Run configurations (TOML) and the one entry point every command uses to turn a path into a
//! model: a `.json` path is an `icq-model/1` file, anything else a TOML config whose `[model]`
//! table names a builder and its knobs, or a model file.
//!
//! Parsing is strict: an unknown table or key is an error that names it, with line and column.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::learn::LearnerConfig;
use crate::model::synthetic::Synthetic;
use crate::model::{load_model_file, Duration, Model};

/// The `[model]` table: a builder with its knobs, or a model file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// The builder (`synthetic`, the default).
    pub builder: Option<String>,
    /// A model file to load instead of building (relative to the config's folder).
    pub file: Option<PathBuf>,
    /// Knob of the synthetic family.
    pub agents: Option<usize>,
    /// Knob of the synthetic family.
    pub artifact_states: Option<usize>,
    /// Knob of the synthetic family.
    pub interface_states: Option<usize>,
    /// Knob of the synthetic family.
    pub private_states: Option<usize>,
    /// Knob of the synthetic family.
    pub gamma: Option<f64>,
    /// Knob of the synthetic family.
    pub duration: Option<Duration>,
    /// Knob of the synthetic family.
    pub laziness: Option<f64>,
    /// Knob of the synthetic family.
    pub interface_noise: Option<f64>,
    /// Knob of the synthetic family.
    pub private_weight: Option<f64>,
    /// Knob of the synthetic family.
    pub reward_scale: Option<f64>,
    /// Knob of the synthetic family.
    pub model_seed: Option<u64>,
}

impl ModelSection {
    /// The synthetic knobs, defaults filled in.
    pub fn synthetic(&self) -> Synthetic {
        let d = Synthetic::default();
        Synthetic {
            agents: self.agents.unwrap_or(d.agents),
            artifact_states: self.artifact_states.unwrap_or(d.artifact_states),
            interface_states: self.interface_states.unwrap_or(d.interface_states),
            private_states: self.private_states.unwrap_or(d.private_states),
            gamma: self.gamma.unwrap_or(d.gamma),
            duration: self.duration.unwrap_or(d.duration),
            laziness: self.laziness.unwrap_or(d.laziness),
            interface_noise: self.interface_noise.unwrap_or(d.interface_noise),
            private_weight: self.private_weight.unwrap_or(d.private_weight),
            reward_scale: self.reward_scale.unwrap_or(d.reward_scale),
            model_seed: self.model_seed.unwrap_or(d.model_seed),
        }
    }

    /// The keys set besides `file`: the builder and the knobs a model file leaves no room for.
    fn set_besides_file(&self) -> Vec<String> {
        let table = serde_json::to_value(self).expect("a [model] table serializes");
        table
            .as_object()
            .map(|t| {
                t.iter()
                    .filter(|(k, v)| *k != "file" && !v.is_null())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Builds or loads the model; relative file paths are taken from `base`.
    pub fn build(&self, base: &Path) -> Result<Model> {
        if let Some(file) = &self.file {
            let besides = self.set_besides_file();
            if !besides.is_empty() {
                return Err(Error::invalid(
                    "model.file",
                    format!(
                        "a model file takes no builder and no knobs, and this [model] table also \
                         sets {}: remove them or the file",
                        besides.join(", ")
                    ),
                ));
            }
            return load_model_file(&base.join(file)).map_err(|e| match e {
                Error::Io { path, cause } => {
                    Error::invalid("model.file", format!("{}: {cause}", path.display()))
                }
                e => e,
            });
        }
        match self.builder.as_deref().unwrap_or("synthetic") {
            "synthetic" => self.synthetic().build(),
            other => Err(Error::invalid(
                "model.builder",
                format!("expected one of [synthetic], found \"{other}\""),
            )),
        }
    }
}

/// When metrics are taken: a count of evenly spaced checkpoints, or a list of epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a count of checkpoints (a whole number ≥ 1) or a list of epochs (whole numbers ≥ 1)"
)]
pub enum Checkpoints {
    /// This many checkpoints at epochs E·j/count, j = 1..count.
    Count(u32),
    /// Exactly these epochs (increasing, each ≤ E).
    At(Vec<u32>),
}

impl Default for Checkpoints {
    fn default() -> Self {
        Self::Count(10)
    }
}

/// The `[run]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Instances B (default 256).
    pub instances: u32,
    /// Epochs E per instance (default 10 000).
    pub epochs: u32,
    /// Checkpoints (default 10, evenly spaced).
    pub checkpoints: Checkpoints,
    /// Seed of every instance's streams (default 0); a sweep without `seeds` runs this one.
    pub seed: u64,
    /// `auto` (default) or `cpu`.
    pub backend: String,
    /// Instances whose greedy policy is evaluated exactly at each checkpoint (default 64).
    pub policy_gap_instances: u32,
    /// A fixed handoff order reported as a baseline (default none): agent i always takes
    /// action `pipeline[i]`, whatever it observes; the oracle reports its exact policy gap
    /// beside every result (`pipeline_policy_gap`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Vec<usize>>,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            instances: 256,
            epochs: 10_000,
            checkpoints: Checkpoints::default(),
            seed: 0,
            backend: "auto".into(),
            policy_gap_instances: 64,
            pipeline: None,
        }
    }
}

impl RunSection {
    /// Checks `pipeline` against the model: one action per agent, each below the action count.
    pub fn check_pipeline(&self, model: &Model) -> Result<()> {
        match &self.pipeline {
            Some(order) => check_pipeline(order, model.agents.len(), model.actions),
            None => Ok(()),
        }
    }

    /// The checkpoint epochs, validated.
    pub fn checkpoint_epochs(&self) -> Result<Vec<u32>> {
        if self.epochs == 0 {
            return Err(Error::invalid(
                "run.epochs",
                "expected at least 1 epoch, found 0",
            ));
        }
        if self.instances == 0 {
            return Err(Error::invalid(
                "run.instances",
                "expected at least 1 instance, found 0",
            ));
        }
        let e = u64::from(self.epochs);
        let at: Vec<u32> = match &self.checkpoints {
            Checkpoints::Count(0) => {
                return Err(Error::invalid(
                    "run.checkpoints",
                    "expected at least 1 checkpoint, found 0",
                ))
            }
            Checkpoints::Count(c) => {
                let c = u64::from(*c).min(e);
                let mut v: Vec<u32> = (1..=c).map(|j| (e * j / c) as u32).collect();
                v.dedup();
                v
            }
            Checkpoints::At(v) => v.clone(),
        };
        for (j, w) in at.windows(2).enumerate() {
            if w[1] <= w[0] {
                return Err(Error::invalid(
                    format!("run.checkpoints[{}]", j + 1),
                    format!("expected increasing epochs, found {} after {}", w[1], w[0]),
                ));
            }
        }
        match at.last() {
            None => Err(Error::invalid(
                "run.checkpoints",
                "expected at least one checkpoint",
            )),
            Some(&last) if last > self.epochs => Err(Error::invalid(
                "run.checkpoints",
                format!("checkpoint {last} is past run.epochs = {}", self.epochs),
            )),
            Some(_) if at[0] == 0 => Err(Error::invalid(
                "run.checkpoints[0]",
                "expected epochs ≥ 1, found 0",
            )),
            Some(_) => Ok(at),
        }
    }
}

/// A whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[model]`.
    pub model: ModelSection,
    /// `[learner]`.
    pub learner: LearnerConfig,
    /// `[run]`.
    pub run: RunSection,
    /// `[sweep]`: the axes of `icq sweep` (other commands run the base config and ignore it).
    pub sweep: Option<toml::Table>,
    /// `[[figure]]`: the figures `icq sweep` draws (see [`crate::plot::figures_of`]; other
    /// commands ignore them).
    pub figure: Option<Vec<toml::Table>>,
}

impl Config {
    /// Parses the text of a config; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let config: Config = toml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: format!("{}{}", e.to_string().trim_end(), settings_hint(text, &e)),
        })?;
        config.learner.validate()?;
        config.run.checkpoint_epochs()?;
        Ok(config)
    }
}

/// For a variant named bare where it takes settings (`duration = "geometric"`), how to write
/// it (`duration = { geometric = { … } }`); empty for any other error.
fn settings_hint(text: &str, e: &toml::de::Error) -> String {
    let bare = e
        .message()
        .contains("unit variant, expected struct variant");
    let Some(span) = e.span().filter(|_| bare) else {
        return String::new();
    };
    let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    // Only `key = "variant"`: a plain key, then the quoted name alone.
    let plain = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_alphanumeric() || c == '_');
    let key = text[line_start..span.start]
        .trim()
        .strip_suffix('=')
        .map(str::trim);
    let value = text[span].trim();
    let variant = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
    match (key, variant) {
        (Some(key), Some(variant)) if plain(key) && plain(variant) => format!(
            "\n{key} = \"{variant}\" takes settings: write {key} = {{ {variant} = {{ … }} }}"
        ),
        _ => String::new(),
    }
}

/// Checks a fixed handoff order (`[run] pipeline`): one action per agent, each below the
/// action count; errors name `run.pipeline` or `run.pipeline[i]`.
pub fn check_pipeline(order: &[usize], agents: usize, actions: usize) -> Result<()> {
    if order.len() != agents {
        return Err(Error::invalid(
            "run.pipeline",
            format!(
                "expected one action per agent ({agents}), found {}",
                order.len()
            ),
        ));
    }
    match order.iter().position(|&a| a >= actions) {
        Some(i) => Err(Error::invalid(
            format!("run.pipeline[{i}]"),
            format!("expected an action below {actions}, found {}", order[i]),
        )),
        None => Ok(()),
    }
}

/// What a command was given: the model and the config it came with.
#[derive(Clone, Debug)]
pub struct Input {
    /// The validated model.
    pub model: Model,
    /// The config (defaults for a bare model file).
    pub config: Config,
}

/// Reads a config (TOML) or a model file (`.json`) and produces its validated model.
pub fn load_input(path: &Path) -> Result<Input> {
    let is_model_file = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_model_file {
        return Ok(Input {
            model: load_model_file(path)?,
            config: Config::default(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    let config = Config::parse(&text, path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let model = config.model.build(base)?;
    config.run.check_pipeline(&model)?;
    Ok(Input { model, config })
}
