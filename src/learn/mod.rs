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

    /// Whether it draws from the oracle's stationary law μ (`reset`): a run without the oracle
    /// (`icq bench`) then still needs it.
    pub fn draws_from_mu(&self) -> bool {
        matches!(self, Self::Reset { .. })
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

/// Which learner runs (DESIGN §2): IC-Q or one of its baselines, all in the same code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Decentralized IC-Q: one scalar crosses each handoff.
    #[default]
    Icq,
    /// One learner over the joint state (the oracle learner).
    Centralized,
    /// Independent Q-learning with a team reward: nothing crosses agents.
    Independent,
    /// Target R alone, no bootstrap.
    Myopic,
}

/// How an observation (or, for `centralized`, a joint state) becomes a network input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Encoding {
    /// One-hot of every component, concatenated.
    #[default]
    Onehot,
    /// Each component divided by its range: (z/K, p/M).
    Scalar,
    /// A fixed random vector in R^d per input, entries uniform on [−√3, √3] (unit variance).
    Embed {
        /// Dimension d.
        d: usize,
        /// Seed of the vectors.
        seed: u64,
    },
}

/// The Q-network of each learner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Network {
    /// A table over (input, action), initialised to zero.
    #[default]
    Tabular,
    /// ReLU hidden layers of `width` units (`depth` 1 or 2), LeCun-uniform weights
    /// (U(±1/√fan_in)), zero biases.
    Mlp {
        /// Hidden width m.
        width: usize,
        /// Hidden layers, 1 or 2.
        depth: usize,
    },
}

impl Network {
    /// A short label: `tabular`, `mlp(32x1)`.
    pub fn label(&self) -> String {
        match self {
            Self::Tabular => "tabular".into(),
            Self::Mlp { width, depth } => format!("mlp({width}x{depth})"),
        }
    }
}

impl Encoding {
    /// A short label: `onehot`, `scalar`, `embed(16)`.
    pub fn label(&self) -> String {
        match self {
            Self::Onehot => "onehot".into(),
            Self::Scalar => "scalar".into(),
            Self::Embed { d, .. } => format!("embed({d})"),
        }
    }
}

impl Behavior {
    /// A short label: `uniform`, `epsilon_greedy(0.1)`.
    pub fn label(&self) -> String {
        match self {
            Self::Uniform => "uniform".into(),
            Self::EpsilonGreedy { epsilon } => format!("epsilon_greedy({epsilon})"),
        }
    }
}

impl Mode {
    /// The mode's name as configs spell it.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Icq => "icq",
            Self::Centralized => "centralized",
            Self::Independent => "independent",
            Self::Myopic => "myopic",
        }
    }
}

/// The step-size schedule; t is the updating learner's own update count (from 0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSize {
    /// α_t = alpha.
    Constant {
        /// α.
        alpha: f64,
    },
    /// α_t = alpha / √(t + 1).
    InverseSqrt {
        /// α.
        alpha: f64,
    },
    /// α_t = alpha · t0 / (t0 + t).
    Inverse {
        /// α.
        alpha: f64,
        /// t0 > 0.
        t0: f64,
    },
}

impl Default for StepSize {
    fn default() -> Self {
        Self::Constant { alpha: 0.1 }
    }
}

impl StepSize {
    /// A short label: `constant(0.1)`, `inverse_sqrt(0.5)`, `inverse(1, t0=100)`.
    pub fn label(&self) -> String {
        match self {
            Self::Constant { alpha } => format!("constant({alpha})"),
            Self::InverseSqrt { alpha } => format!("inverse_sqrt({alpha})"),
            Self::Inverse { alpha, t0 } => format!("inverse({alpha}, t0={t0})"),
        }
    }

    /// α_t.
    #[inline]
    pub fn at(&self, t: u32) -> f32 {
        let t = f64::from(t);
        (match *self {
            Self::Constant { alpha } => alpha,
            Self::InverseSqrt { alpha } => alpha / (t + 1.0).sqrt(),
            Self::Inverse { alpha, t0 } => alpha * t0 / (t0 + t),
        }) as f32
    }
}

/// The behavior policy of every decider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Behavior {
    /// Uniform over actions.
    #[default]
    Uniform,
    /// Greedy on the decider's own Q with probability 1 − ε, uniform otherwise.
    EpsilonGreedy {
        /// ε ∈ [0, 1].
        epsilon: f64,
    },
}

/// How the network parameters are stored between updates. Arithmetic is f32 either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    /// IEEE binary32.
    #[default]
    F32,
    /// IEEE binary16: every parameter is rounded to the nearest f16 (ties to even) when it is
    /// initialised and each time an update writes it, and read back as f32 — half the bytes
    /// per parameter on the CUDA backend, the same values on every backend.
    F16,
}

impl Weights {
    /// `f32` or `f16`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }
}

/// The `[learner]` table: everything about how the learners learn.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnerConfig {
    /// IC-Q or a baseline (default `icq`).
    pub mode: Mode,
    /// Input encoding (default `onehot`; ignored by `tabular`).
    pub encoding: Encoding,
    /// The network (default `tabular`).
    pub network: Network,
    /// Step sizes (default constant 0.1).
    pub step_size: StepSize,
    /// Gradient-norm clip (default none).
    pub clip: Option<f64>,
    /// Behavior policy (default `uniform`).
    pub behavior: Behavior,
    /// Data sampler (default `trajectory`).
    pub sampler: Sampler,
    /// Parameter storage (default `f32`).
    pub weights: Weights,
}

impl LearnerConfig {
    /// Checks every value; errors name `learner.<key>`.
    pub fn validate(&self) -> Result<()> {
        self.sampler.validate("learner.sampler")?;
        if let Encoding::Embed { d, .. } = self.encoding {
            if d == 0 || d > 4096 {
                return Err(Error::invalid(
                    "learner.encoding.embed.d",
                    format!("expected 1 ≤ d ≤ 4096, found {d}"),
                ));
            }
        }
        if let Network::Mlp { width, depth } = self.network {
            if width == 0 || width > 4096 {
                return Err(Error::invalid(
                    "learner.network.mlp.width",
                    format!("expected 1 ≤ width ≤ 4096, found {width}"),
                ));
            }
            if !(1..=2).contains(&depth) {
                return Err(Error::invalid(
                    "learner.network.mlp.depth",
                    format!("expected depth 1 or 2, found {depth}"),
                ));
            }
        }
        let (name, alpha) = match self.step_size {
            StepSize::Constant { alpha } => ("constant", alpha),
            StepSize::InverseSqrt { alpha } => ("inverse_sqrt", alpha),
            StepSize::Inverse { alpha, t0 } => {
                if !(t0.is_finite() && t0 > 0.0) {
                    return Err(Error::invalid(
                        "learner.step_size.inverse.t0",
                        format!("expected t0 > 0, found {t0}"),
                    ));
                }
                ("inverse", alpha)
            }
        };
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(Error::invalid(
                format!("learner.step_size.{name}.alpha"),
                format!("expected alpha > 0, found {alpha}"),
            ));
        }
        if let Some(c) = self.clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid(
                    "learner.clip",
                    format!("expected clip > 0, found {c}"),
                ));
            }
        }
        if let Behavior::EpsilonGreedy { epsilon } = self.behavior {
            if !(0.0..=1.0).contains(&epsilon) {
                return Err(Error::invalid(
                    "learner.behavior.epsilon_greedy.epsilon",
                    format!("expected 0 ≤ epsilon ≤ 1, found {epsilon}"),
                ));
            }
        }
        if self.mode == Mode::Independent && self.sampler != Sampler::Trajectory {
            return Err(Error::invalid(
                "learner.sampler",
                "independent learners bootstrap across consecutive epochs of one trajectory; they need sampler = \"trajectory\"",
            ));
        }
        Ok(())
    }

    /// Whether this learner samples from another law than the oracle's μ, which is uniform
    /// behavior's stationary law: so under ε-greedy behavior with ε < 1, which moves with Q.
    /// Then μ still weights the metrics (and the `reset` sampler still draws from it), and a
    /// run says so.
    pub fn samples_off_mu(&self) -> bool {
        matches!(self.behavior, Behavior::EpsilonGreedy { epsilon } if epsilon < 1.0)
    }
}

/// What a run whose learner [samples off μ](LearnerConfig::samples_off_mu) prints.
pub const OFF_MU_NOTE: &str = "behavior is ε-greedy, but the oracle's μ (the law behind Q*_obs, the interface term, the metrics' weights and the reset sampler's draws) is uniform behavior's stationary law, while ε-greedy's moves with Q";

pub mod epoch;
pub mod metrics;
pub mod net;
pub mod plan;
