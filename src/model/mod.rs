//! The tabular IC-SMDP every builder and model file compiles to (DESIGN §1), its validation,
//! and the joint-state space.
//!
//! A [`Model`] is plain data: `gamma`, agents with private states and interface maps, artifact
//! states, options with their executor, duration law, kernels and rewards, the N×A table of
//! which option each action launches, and the initial law. [`Model::validate`] checks every
//! rule and names the offending field; everything downstream assumes a validated model.

mod file;
mod space;
pub mod synthetic;
mod tables;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use file::{load_model_file, save_model_file, ModelFile, FORMAT};
pub use space::StateSpace;
pub use tables::{poisson_pmf_with_tail, DrawTables, DurationTable, OptionRun};

/// The longest fixed duration a model may declare.
pub const MAX_FIXED_STEPS: u32 = 10_000;

/// The most joint states a model may have: the oracle holds dense per-state tables, and the
/// backends index joint states with `u32`.
pub const MAX_JOINT_STATES: usize = 1 << 24;

/// The largest reward magnitude a model may declare: values, errors and norms then stay far
/// from `f64` overflow (and the learner's `f32` targets finite) at any γ < 1.
pub const MAX_ABS_REWARD: f64 = 1e12;

/// N · S · Π M_i, the number of joint states, if it is at most [`MAX_JOINT_STATES`].
pub fn joint_states(artifact_states: usize, private_states: &[usize]) -> Option<usize> {
    private_states
        .iter()
        .try_fold(
            private_states.len().checked_mul(artifact_states)?,
            |acc, &m| acc.checked_mul(m),
        )
        .filter(|&n| n <= MAX_JOINT_STATES)
}

/// How rows of a stochastic matrix may deviate from summing to one.
pub const ROW_SUM_TOLERANCE: f64 = 1e-9;

/// The law of an option's duration τ ≥ 1, in primitive steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Duration {
    /// Geometric on {1, 2, …} with the given mean (≥ 1): after each step the option stops with
    /// probability `1/mean`.
    Geometric {
        /// Mean duration in steps.
        mean: f64,
    },
    /// Exactly `steps` primitive steps (≥ 1).
    Fixed {
        /// The duration.
        steps: u32,
    },
    /// `1 + Poisson(mean − 1)`, mean ≥ 1.
    Poisson {
        /// Mean duration in steps.
        mean: f64,
    },
}

impl Duration {
    /// The mean duration in steps.
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Geometric { mean } | Self::Poisson { mean } => mean,
            Self::Fixed { steps } => f64::from(steps),
        }
    }

    /// A short label: `geometric(4)`, `fixed(3)`, `poisson(2.5)`.
    pub fn label(&self) -> String {
        match *self {
            Self::Geometric { mean } => format!("geometric({mean})"),
            Self::Fixed { steps } => format!("fixed({steps})"),
            Self::Poisson { mean } => format!("poisson({mean})"),
        }
    }

    fn validate(&self, field: &str) -> Result<()> {
        match *self {
            Self::Geometric { mean } | Self::Poisson { mean } => {
                if !(mean.is_finite() && mean >= 1.0) {
                    return Err(Error::invalid(
                        format!("{field}.mean"),
                        format!("expected a finite mean ≥ 1 (τ ≥ 1), found {mean}"),
                    ));
                }
                if matches!(self, Self::Poisson { .. }) && mean > 500.0 {
                    return Err(Error::invalid(
                        format!("{field}.mean"),
                        format!("expected a Poisson mean ≤ 500, found {mean}"),
                    ));
                }
                // As long as the longest fixed duration: an epoch runs every step of its
                // option, and the per-step stop threshold ⌊2³²/mean⌋ stays far from 0.
                if mean > f64::from(MAX_FIXED_STEPS) {
                    return Err(Error::invalid(
                        format!("{field}.mean"),
                        format!(
                            "expected a geometric mean ≤ {MAX_FIXED_STEPS} (as long as the longest fixed duration), found {mean}"
                        ),
                    ));
                }
            }
            Self::Fixed { steps } => {
                if steps == 0 || steps > MAX_FIXED_STEPS {
                    return Err(Error::invalid(
                        format!("{field}.steps"),
                        format!("expected 1 ≤ steps ≤ {MAX_FIXED_STEPS}, found {steps}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One agent: its private states and its interface map φ_i : {0..S} → {0..K_i}.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// M_i ≥ 1.
    pub private_states: usize,
    /// φ_i(x) for every artifact state x; K_i is its largest value plus one.
    pub interface: Vec<usize>,
}

impl Agent {
    /// K_i, the number of interface states this agent distinguishes.
    pub fn interface_states(&self) -> usize {
        self.interface.iter().copied().max().map_or(0, |k| k + 1)
    }
}

/// One option ω: who executes it, how long it runs, what it does, what it pays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    /// The executor agent e, which becomes the next decider.
    pub executor: usize,
    /// The law of τ.
    pub duration: Duration,
    /// P, S×S row-stochastic: the artifact's step kernel.
    pub artifact_transition: Vec<Vec<f64>>,
    /// Π, M_e×M_e row-stochastic: the executor's private step kernel.
    pub private_transition: Vec<Vec<f64>>,
    /// r(x, p_e), S×M_e: the reward of one primitive step.
    pub reward: Vec<Vec<f64>>,
    /// Whether the process restarts from the initial law after this option.
    pub terminal: bool,
}

/// The initial law: decider h₀, artifact law ρ, private laws ρ_i.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Initial {
    /// h₀.
    pub agent: usize,
    /// ρ, length S.
    pub artifact: Vec<f64>,
    /// ρ_i, length M_i, one per agent.
    pub private: Vec<Vec<f64>>,
}

/// A tabular IC-SMDP (DESIGN §1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Per-primitive-step discount γ ∈ (0, 1).
    pub gamma: f64,
    /// The agents `0..N`.
    pub agents: Vec<Agent>,
    /// S, the artifact states.
    pub artifact_states: usize,
    /// A, the actions of every agent.
    pub actions: usize,
    /// The options `0..W`.
    pub options: Vec<OptionSpec>,
    /// N×A: action a of agent i launches option `action_options[i][a]`.
    pub action_options: Vec<Vec<usize>>,
    /// The initial law.
    pub initial: Initial,
}

impl Model {
    /// N.
    pub fn num_agents(&self) -> usize {
        self.agents.len()
    }

    /// The option that action `a` of agent `i` launches.
    pub fn option_of(&self, agent: usize, action: usize) -> &OptionSpec {
        &self.options[self.action_options[agent][action]]
    }

    /// The joint-state space of this model.
    pub fn space(&self) -> StateSpace {
        StateSpace::new(self)
    }

    /// Checks every rule of DESIGN §1 and names the first offending field.
    pub fn validate(&self) -> Result<()> {
        let f = "model";
        if !(self.gamma > 0.0 && self.gamma < 1.0) {
            return Err(Error::invalid(
                format!("{f}.gamma"),
                format!("expected 0 < gamma < 1, found {}", self.gamma),
            ));
        }
        let s = self.artifact_states;
        if s == 0 {
            return Err(Error::invalid(
                format!("{f}.artifact_states"),
                "expected at least 1 artifact state, found 0",
            ));
        }
        if self.agents.is_empty() {
            return Err(Error::invalid(
                format!("{f}.agents"),
                "expected at least one agent, found none",
            ));
        }
        for (i, agent) in self.agents.iter().enumerate() {
            let af = format!("{f}.agents[{i}]");
            if agent.private_states == 0 {
                return Err(Error::invalid(
                    format!("{af}.private_states"),
                    "expected at least 1 private state, found 0",
                ));
            }
            if agent.interface.len() != s {
                return Err(Error::invalid(
                    format!("{af}.interface"),
                    format!(
                        "expected {s} entries (one per artifact state), found {}",
                        agent.interface.len()
                    ),
                ));
            }
            let k = agent.interface_states();
            for z in 0..k {
                if !agent.interface.contains(&z) {
                    return Err(Error::invalid(
                        format!("{af}.interface"),
                        format!(
                            "interface states must be 0..{k} with none unused; {z} is never used"
                        ),
                    ));
                }
            }
        }
        let private: Vec<usize> = self.agents.iter().map(|a| a.private_states).collect();
        if joint_states(s, &private).is_none() {
            return Err(Error::invalid(
                format!("{f}.agents"),
                format!(
                    "{} agents × {s} artifact states × private states {private:?} are more \
                     than {MAX_JOINT_STATES} joint states",
                    private.len()
                ),
            ));
        }
        if self.actions == 0 {
            return Err(Error::invalid(
                format!("{f}.actions"),
                "expected at least 1 action, found 0",
            ));
        }
        if self.options.is_empty() {
            return Err(Error::invalid(
                format!("{f}.options"),
                "expected at least one option, found none",
            ));
        }
        for (w, opt) in self.options.iter().enumerate() {
            self.validate_option(w, opt)?;
        }
        let n = self.agents.len();
        if self.action_options.len() != n {
            return Err(Error::invalid(
                format!("{f}.action_options"),
                format!(
                    "expected {n} rows (one per agent), found {}",
                    self.action_options.len()
                ),
            ));
        }
        for (i, row) in self.action_options.iter().enumerate() {
            if row.len() != self.actions {
                return Err(Error::invalid(
                    format!("{f}.action_options[{i}]"),
                    format!(
                        "expected {} entries (one per action), found {}",
                        self.actions,
                        row.len()
                    ),
                ));
            }
            for (a, &w) in row.iter().enumerate() {
                if w >= self.options.len() {
                    return Err(Error::invalid(
                        format!("{f}.action_options[{i}][{a}]"),
                        format!(
                            "expected an option index below {}, found {w}",
                            self.options.len()
                        ),
                    ));
                }
            }
        }
        let init = &self.initial;
        if init.agent >= n {
            return Err(Error::invalid(
                format!("{f}.initial.agent"),
                format!("expected an agent index below {n}, found {}", init.agent),
            ));
        }
        check_law(&format!("{f}.initial.artifact"), &init.artifact, s)?;
        if init.private.len() != n {
            return Err(Error::invalid(
                format!("{f}.initial.private"),
                format!(
                    "expected {n} laws (one per agent), found {}",
                    init.private.len()
                ),
            ));
        }
        for (i, law) in init.private.iter().enumerate() {
            check_law(
                &format!("{f}.initial.private[{i}]"),
                law,
                self.agents[i].private_states,
            )?;
        }
        Ok(())
    }

    fn validate_option(&self, w: usize, opt: &OptionSpec) -> Result<()> {
        let of = format!("model.options[{w}]");
        let n = self.agents.len();
        if opt.executor >= n {
            return Err(Error::invalid(
                format!("{of}.executor"),
                format!("expected an agent index below {n}, found {}", opt.executor),
            ));
        }
        opt.duration.validate(&format!("{of}.duration"))?;
        let s = self.artifact_states;
        let m = self.agents[opt.executor].private_states;
        check_stochastic(
            &format!("{of}.artifact_transition"),
            &opt.artifact_transition,
            s,
        )?;
        check_stochastic(
            &format!("{of}.private_transition"),
            &opt.private_transition,
            m,
        )?;
        check_shape(&format!("{of}.reward"), &opt.reward, s, m)?;
        for (x, row) in opt.reward.iter().enumerate() {
            for (p, &r) in row.iter().enumerate() {
                if r.is_nan() || r.abs() > MAX_ABS_REWARD {
                    return Err(Error::invalid(
                        format!("{of}.reward[{x}][{p}]"),
                        format!("expected a finite reward of at most {MAX_ABS_REWARD:e} in magnitude, found {r}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_shape(field: &str, m: &[Vec<f64>], rows: usize, cols: usize) -> Result<()> {
    if m.len() != rows {
        return Err(Error::invalid(
            field,
            format!("expected {rows} rows, found {}", m.len()),
        ));
    }
    for (i, row) in m.iter().enumerate() {
        if row.len() != cols {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!("expected {cols} entries, found {}", row.len()),
            ));
        }
    }
    Ok(())
}

fn check_stochastic(field: &str, m: &[Vec<f64>], n: usize) -> Result<()> {
    check_shape(field, m, n, n)?;
    for (i, row) in m.iter().enumerate() {
        check_law(&format!("{field}[{i}]"), row, n)?;
    }
    Ok(())
}

/// Checks that `p` is a probability vector of length `n`.
fn check_law(field: &str, p: &[f64], n: usize) -> Result<()> {
    if p.len() != n {
        return Err(Error::invalid(
            field,
            format!("expected {n} entries, found {}", p.len()),
        ));
    }
    for (j, &v) in p.iter().enumerate() {
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::invalid(
                format!("{field}[{j}]"),
                format!("expected a probability ≥ 0, found {v}"),
            ));
        }
    }
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
        return Err(Error::invalid(
            field,
            format!("row sums to {sum}, expected 1 within {ROW_SUM_TOLERANCE:e}"),
        ));
    }
    Ok(())
}
