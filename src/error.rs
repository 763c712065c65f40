//! The library's error type: every failure says what was expected, what was found, and where.

use std::path::PathBuf;

/// Everything that can go wrong in icq's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model, config or model file breaks a rule; `field` is the path of the offending value
    /// (`model.options[2].artifact_transition[4]`).
    #[error("{field}: {message}")]
    Invalid {
        /// Path of the offending field.
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A file could not be parsed (JSON or TOML syntax, a missing or unknown key).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column where known.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error, shown in the message (not also as the error's source, which
        /// printed it twice).
        cause: std::io::Error,
    },
    /// The model is too large for the requested analysis.
    #[error("{0}")]
    TooLarge(String),
    /// A backend that this build or this machine cannot run.
    #[error("backend unavailable: {0}")]
    BackendUnavailable(String),
    /// No GPU adapter (of the kind asked for) was found; what was found instead.
    #[error("{0}")]
    NoAdapter(String),
    /// The GPU device failed.
    #[error("GPU: {0}")]
    Gpu(String),
    /// A shader or pipeline did not compile.
    #[error("shader {name}: {message}")]
    Shader {
        /// The module or pipeline.
        name: String,
        /// The compiler's message.
        message: String,
    },
    /// A Parquet file could not be encoded.
    #[error("parquet: {0}")]
    Parquet(String),
    /// A figure could not be drawn.
    #[error("plot: {0}")]
    Plot(String),
    /// An iterative computation did not reach its tolerance.
    #[error("{0}")]
    NotConverged(String),
    /// An error of one part of a larger job (a sweep's grid point): where, then the error,
    /// whose kind it keeps (bad input or failure).
    #[error("{place}: {error}")]
    At {
        /// The part that failed (`sweep grid point 3 (interface_noise = 0.2)`).
        place: String,
        /// What went wrong there.
        error: Box<Error>,
    },
}

impl Error {
    /// An [`Error::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Whether this error is the user's input (exit code 2) rather than a failure (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Invalid { .. } | Self::Parse { .. } | Self::TooLarge(_) => true,
            Self::At { error, .. } => error.is_bad_input(),
            _ => false,
        }
    }

    /// This error as one of `place` (an [`Error::At`]).
    pub fn at(self, place: impl Into<String>) -> Self {
        Self::At {
            place: place.into(),
            error: Box::new(self),
        }
    }
}

/// icq's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
