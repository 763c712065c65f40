//! Run configurations (TOML) and the one entry point every command uses to turn a path into a
//! model: a `.json` path is an `icq-model/1` file, anything else a TOML config whose `[model]`
//! table names a builder and its knobs, or a model file.
//!
//! Parsing is strict: an unknown table or key is an error that names it, with line and column.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::learn::Sampler;
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

    fn has_knobs(&self) -> bool {
        *self
            != Self {
                builder: self.builder.clone(),
                file: self.file.clone(),
                ..Self::default()
            }
    }

    /// Builds or loads the model; relative file paths are taken from `base`.
    pub fn build(&self, base: &Path) -> Result<Model> {
        if let Some(file) = &self.file {
            if self.builder.is_some() || self.has_knobs() {
                return Err(Error::invalid(
                    "model.file",
                    "a model file takes no builder and no knobs; remove one or the other",
                ));
            }
            return load_model_file(&base.join(file));
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

/// The `[learner]` table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnerSection {
    /// How epochs follow each other (default `trajectory`).
    pub sampler: Sampler,
}

/// A whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[model]`.
    pub model: ModelSection,
    /// `[learner]`.
    pub learner: LearnerSection,
}

impl Config {
    /// Parses the text of a config; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let config: Config = toml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.learner.sampler.validate("learner.sampler")?;
        Ok(config)
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
        source,
    })?;
    let config = Config::parse(&text, path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let model = config.model.build(base)?;
    Ok(Input { model, config })
}
