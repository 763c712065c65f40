//! IC-Q, the learner (DESIGN §2): its configuration and the data samplers that decide how
//! epochs follow each other.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How epochs follow each other. Every sampler keeps the behavior chain's stationary law μ and
/// changes only how correlated consecutive samples are (the mixing-time axis).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Sampler {
    /// Each epoch starts where the last one ended.
    #[default]
    Trajectory,
    /// With probability `rho` the next epoch restarts from the joint state this epoch started
    /// from (slower mixing).
    Lazy {
        /// ρ ∈ [0, 1).
        rho: f64,
    },
    /// With probability `1 − rho` the next epoch starts from a fresh draw of μ (faster mixing).
    Reset {
        /// ρ ∈ [0, 1].
        rho: f64,
    },
}

impl Sampler {
    /// Checks the sampler's parameter; `field` names it in errors.
    pub fn validate(&self, field: &str) -> Result<()> {
        match *self {
            Self::Trajectory => Ok(()),
            Self::Lazy { rho } if (0.0..1.0).contains(&rho) => Ok(()),
            Self::Reset { rho } if (0.0..=1.0).contains(&rho) => Ok(()),
            Self::Lazy { rho } => Err(Error::invalid(
                format!("{field}.lazy.rho"),
                format!("expected 0 ≤ rho < 1, found {rho}"),
            )),
            Self::Reset { rho } => Err(Error::invalid(
                format!("{field}.reset.rho"),
                format!("expected 0 ≤ rho ≤ 1, found {rho}"),
            )),
        }
    }

    /// A short label: `trajectory`, `lazy(0.5)`, `reset(0.9)`.
    pub fn label(&self) -> String {
        match self {
            Self::Trajectory => "trajectory".into(),
            Self::Lazy { rho } => format!("lazy({rho})"),
            Self::Reset { rho } => format!("reset({rho})"),
        }
    }
}
