//! The model file format `icq-model/1`: JSON with the fields of [`Model`] plus `"format"`.
//!
//! Loading parses strictly (unknown keys are errors, with line and column) and then validates
//! (every rule, with the offending field's path). Writing goes through a temporary file and a
//! rename, so a failed write never leaves half a model behind.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Agent, Initial, Model, OptionSpec};
use crate::error::{Error, Result};

/// The format tag of model files.
pub const FORMAT: &str = "icq-model/1";

/// A model file on disk: [`Model`]'s fields plus the format tag.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// γ.
    pub gamma: f64,
    /// The agents.
    pub agents: Vec<Agent>,
    /// S.
    pub artifact_states: usize,
    /// A.
    pub actions: usize,
    /// The options.
    pub options: Vec<OptionSpec>,
    /// N×A.
    pub action_options: Vec<Vec<usize>>,
    /// The initial law.
    pub initial: Initial,
}

impl From<Model> for ModelFile {
    fn from(m: Model) -> Self {
        Self {
            format: FORMAT.to_string(),
            gamma: m.gamma,
            agents: m.agents,
            artifact_states: m.artifact_states,
            actions: m.actions,
            options: m.options,
            action_options: m.action_options,
            initial: m.initial,
        }
    }
}

impl ModelFile {
    /// Parses and validates the text of a model file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Model> {
        let file: ModelFile = serde_json::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: match e.classify() {
                // Not JSON at all (a TOML config, say): say what a model file is.
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!(
                    "{e}: a model file is JSON in the {FORMAT} format (`icq model export CONFIG -o FILE` writes one)"
                ),
                _ => e.to_string(),
            },
        })?;
        if file.format != FORMAT {
            return Err(Error::invalid(
                "model.format",
                format!("expected \"{FORMAT}\", found \"{}\"", file.format),
            ));
        }
        let model = Model {
            gamma: file.gamma,
            agents: file.agents,
            artifact_states: file.artifact_states,
            actions: file.actions,
            options: file.options,
            action_options: file.action_options,
            initial: file.initial,
        };
        model.validate()?;
        Ok(model)
    }
}

/// Reads, parses and validates a model file.
pub fn load_model_file(path: &Path) -> Result<Model> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    ModelFile::parse(&text, path)
}

/// Writes `model` as an `icq-model/1` file (through a temporary file and a rename).
pub fn save_model_file(model: &Model, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(&ModelFile::from(model.clone()))
        .expect("a model always serializes");
    crate::io::write_atomically(path, text.as_bytes())
}
