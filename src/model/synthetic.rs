//! The synthetic family (DESIGN §4): one knob per term of the IC-Q bound.
//!
//! Agents 0..N each own M private states and see the artifact through the block map
//! B(x) = ⌊xK/S⌋. Option e hands control to agent e (A = W = N, `action_options[i][a] = a`).
//! Per option, with α = `laziness`, η = `interface_noise`, β = `private_weight`:
//!
//! - P = (1−α)I + α((1−η)P0 + ηP1), where P0(x, x') = C(B(x), B(x'))·u_{B(x')}(x') is
//!   lumpable (C a random K×K kernel, u_b a random law on block b) and P1 a random S×S kernel;
//! - r(x, p) = `reward_scale` · (r0(B(x)) + η·r1(x) + β·r2(p)), with r0, r1, r2 uniform on
//!   [−1, 1];
//! - Π has identical rows (one random law over M), so private states carry no hidden memory.
//!
//! Random rows are flat-Dirichlet draws (normalised `Exp(1)` variates). The initial law is
//! agent 0, uniform artifact, uniform private states. Everything is a function of
//! `model_seed` alone.

use rand::distr::{Distribution, Uniform};
use rand_distr::Exp1;
use serde::{Deserialize, Serialize};

use super::{Agent, Duration, Initial, Model, OptionSpec};
use crate::error::{Error, Result};
use crate::rng::HostRng;

/// The knobs of the synthetic family, with their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Synthetic {
    /// N, the agents (default 3).
    pub agents: usize,
    /// S, the artifact states (default 32).
    pub artifact_states: usize,
    /// K, the interface states; S must be divisible by K (default 8).
    pub interface_states: usize,
    /// M, the private states of every agent (default 1).
    pub private_states: usize,
    /// γ (default 0.9).
    pub gamma: f64,
    /// The duration law of every option (default geometric of mean 4).
    pub duration: Duration,
    /// α ∈ (0, 1]: the chance a step moves the artifact at all (default 1).
    pub laziness: f64,
    /// η ∈ [0, 1]: the weight of the non-lumpable kernel and reward (default 0).
    pub interface_noise: f64,
    /// β ≥ 0: the weight of the executor's private state in the reward (default 0).
    pub private_weight: f64,
    /// Scale of every reward (default 1).
    pub reward_scale: f64,
    /// Seed of every random choice (default 0).
    pub model_seed: u64,
}

impl Default for Synthetic {
    fn default() -> Self {
        Self {
            agents: 3,
            artifact_states: 32,
            interface_states: 8,
            private_states: 1,
            gamma: 0.9,
            duration: Duration::Geometric { mean: 4.0 },
            laziness: 1.0,
            interface_noise: 0.0,
            private_weight: 0.0,
            reward_scale: 1.0,
            model_seed: 0,
        }
    }
}

/// The most agents a synthetic model may have (its action table is N × N).
pub const MAX_AGENTS: usize = 4096;

/// The most transition and reward entries a synthetic model may hold (2 GiB of `f64`).
pub const MAX_TABLE_ENTRIES: usize = 1 << 28;

impl Synthetic {
    /// Checks every knob; errors name `model.<knob>`.
    pub fn validate(&self) -> Result<()> {
        let bad = |k: &str, m: String| Err(Error::invalid(format!("model.{k}"), m));
        if self.agents == 0 {
            return bad("agents", "expected at least 1 agent, found 0".into());
        }
        if self.artifact_states == 0 {
            return bad("artifact_states", "expected at least 1, found 0".into());
        }
        if self.interface_states == 0 || !self.artifact_states.is_multiple_of(self.interface_states)
        {
            return bad(
                "interface_states",
                format!(
                    "expected a divisor of artifact_states = {}, found {}",
                    self.artifact_states, self.interface_states
                ),
            );
        }
        if self.private_states == 0 {
            return bad("private_states", "expected at least 1, found 0".into());
        }
        // Sizes before anything is allocated: the joint states, then the tables (N·S² artifact
        // and N·M² private probabilities, N·S·M rewards).
        let (n, s, m) = (self.agents, self.artifact_states, self.private_states);
        if n > MAX_AGENTS {
            return bad(
                "agents",
                format!("expected at most {MAX_AGENTS} agents, found {n}"),
            );
        }
        if super::joint_states(s, &vec![m; n]).is_none() {
            let alone = super::joint_states(s, &vec![1; n]).is_none();
            return bad(
                if alone {
                    "artifact_states"
                } else {
                    "private_states"
                },
                format!(
                    "{n} agents × {s} artifact states × {m}^{n} private states are more than \
                     {} joint states",
                    super::MAX_JOINT_STATES
                ),
            );
        }
        let square = |x: usize| x.checked_mul(x);
        let tables = (|| {
            let per_agent = square(s)?
                .checked_add(square(m)?)?
                .checked_add(s.checked_mul(m)?)?;
            per_agent.checked_mul(n)
        })();
        if tables.is_none_or(|t| t > MAX_TABLE_ENTRIES) {
            let key = if m > s {
                "private_states"
            } else {
                "artifact_states"
            };
            return bad(
                key,
                format!(
                    "{n} agents × ({s} artifact states, {m} private states) need \
                     N·(S² + M² + S·M) > {MAX_TABLE_ENTRIES} table entries"
                ),
            );
        }
        if !(self.gamma > 0.0 && self.gamma < 1.0) {
            return bad(
                "gamma",
                format!("expected 0 < gamma < 1, found {}", self.gamma),
            );
        }
        self.duration.validate("model.duration")?;
        if !(self.laziness > 0.0 && self.laziness <= 1.0) {
            return bad(
                "laziness",
                format!("expected 0 < laziness ≤ 1, found {}", self.laziness),
            );
        }
        if !(0.0..=1.0).contains(&self.interface_noise) {
            return bad(
                "interface_noise",
                format!(
                    "expected 0 ≤ interface_noise ≤ 1, found {}",
                    self.interface_noise
                ),
            );
        }
        if !(self.private_weight.is_finite() && self.private_weight >= 0.0) {
            return bad(
                "private_weight",
                format!(
                    "expected a finite private_weight ≥ 0, found {}",
                    self.private_weight
                ),
            );
        }
        let largest = self.reward_scale.abs() * (1.0 + self.interface_noise + self.private_weight);
        if largest > super::MAX_ABS_REWARD {
            let key = if self.private_weight > 1.0 && self.reward_scale.abs() <= 1.0 {
                "private_weight"
            } else {
                "reward_scale"
            };
            return bad(
                key,
                format!(
                    "rewards up to |reward_scale|·(1 + interface_noise + private_weight) = \
                     {largest:e}; expected at most {:e}",
                    super::MAX_ABS_REWARD
                ),
            );
        }
        if !self.reward_scale.is_finite() {
            return bad(
                "reward_scale",
                format!(
                    "expected a finite reward_scale, found {}",
                    self.reward_scale
                ),
            );
        }
        Ok(())
    }

    /// Builds the model (validated).
    pub fn build(&self) -> Result<Model> {
        self.validate()?;
        let (n, s, k, m) = (
            self.agents,
            self.artifact_states,
            self.interface_states,
            self.private_states,
        );
        let block = |x: usize| x * k / s;
        let width = s / k;
        let (alpha, eta, beta) = (self.laziness, self.interface_noise, self.private_weight);
        let mut rng = HostRng::new(self.model_seed, 0);
        let reward = Uniform::new_inclusive(-1.0, 1.0).expect("a valid range");
        let options = (0..n)
            .map(|e| {
                let c: Vec<Vec<f64>> = (0..k).map(|_| dirichlet(&mut rng, k)).collect();
                let u: Vec<Vec<f64>> = (0..k).map(|_| dirichlet(&mut rng, width)).collect();
                let p1: Vec<Vec<f64>> = (0..s).map(|_| dirichlet(&mut rng, s)).collect();
                let r0: Vec<f64> = (0..k).map(|_| reward.sample(&mut rng)).collect();
                let r1: Vec<f64> = (0..s).map(|_| reward.sample(&mut rng)).collect();
                let r2: Vec<f64> = (0..m).map(|_| reward.sample(&mut rng)).collect();
                let pi_row = dirichlet(&mut rng, m);
                let artifact_transition = (0..s)
                    .map(|x| {
                        (0..s)
                            .map(|y| {
                                let p0 = c[block(x)][block(y)] * u[block(y)][y % width];
                                let stay = if x == y { 1.0 - alpha } else { 0.0 };
                                stay + alpha * ((1.0 - eta) * p0 + eta * p1[x][y])
                            })
                            .collect()
                    })
                    .collect();
                let reward = (0..s)
                    .map(|x| {
                        (0..m)
                            .map(|p| {
                                self.reward_scale * (r0[block(x)] + eta * r1[x] + beta * r2[p])
                            })
                            .collect()
                    })
                    .collect();
                OptionSpec {
                    executor: e,
                    duration: self.duration,
                    artifact_transition,
                    private_transition: vec![pi_row; m],
                    reward,
                    terminal: false,
                }
            })
            .collect();
        let model = Model {
            gamma: self.gamma,
            agents: (0..n)
                .map(|_| Agent {
                    private_states: m,
                    interface: (0..s).map(block).collect(),
                })
                .collect(),
            artifact_states: s,
            actions: n,
            options,
            action_options: (0..n).map(|_| (0..n).collect()).collect(),
            initial: Initial {
                agent: 0,
                artifact: vec![1.0 / s as f64; s],
                private: vec![vec![1.0 / m as f64; m]; n],
            },
        };
        model.validate()?;
        Ok(model)
    }
}

/// A flat-Dirichlet draw of length `len`: normalised Exp(1) variates.
fn dirichlet(rng: &mut HostRng, len: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..len).map(|_| Exp1.sample(rng)).collect();
    let total: f64 = v.iter().sum();
    v.iter_mut().for_each(|x| *x /= total);
    v
}
