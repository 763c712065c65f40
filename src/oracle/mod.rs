//! The exact oracle (DESIGN §3): for a validated model, on the CPU, the answers every learner
//! is checked against — Q*, the behavior chain (μ, t_mix, spectral gap), the interface gap
//! (ε_φ, δ_φ, Q*_obs, the interface term) and the exact value of any decentralized policy.

mod chain;
mod interface;
mod kernels;
pub mod linalg;
pub mod support;
mod value;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::learn::Sampler;
use crate::model::{Model, StateSpace};

pub use chain::{total_variation, Chain, SecondEigenvalue};
pub use interface::InterfaceGap;
pub use kernels::OptionKernel;
pub use value::Bellman;

/// A spectral gap at or below this means the chain never mixes (|λ₂| = 1).
const NEVER_MIXES: f64 = 1e-9;

/// Largest joint-state count the oracle accepts.
pub const MAX_STATES: usize = 200_000;

/// Largest executor-local space S·M_e of one option the oracle accepts: it solves a dense
/// C × C system per option (C = 4 096: 128 MiB per matrix and about 10¹¹ flops).
pub const MAX_OPTION_STATES: usize = 4096;

/// What the oracle computes and how precisely.
#[derive(Clone, Debug)]
pub struct OracleOptions {
    /// Relative tolerance of value iteration (Q*, Q*_obs, V^π); default 1e-10.
    pub tolerance: f64,
    /// The sampler whose chain's t_mix and spectral gap are reported beside the trajectory
    /// chain's; default `trajectory`.
    pub sampler: Sampler,
    /// t_mix larger than this is an error; default 100 000 epochs.
    pub max_mixing_epochs: u64,
    /// Most steps of the stationary-law iteration; default 10⁶.
    pub max_stationary_steps: usize,
    /// A fixed handoff order whose exact policy gap to report: agent i always takes action
    /// `pipeline[i]` (see [`crate::config::RunSection::pipeline`]); default none.
    pub pipeline: Option<Vec<usize>>,
}

impl Default for OracleOptions {
    fn default() -> Self {
        Self {
            tolerance: 1e-10,
            sampler: Sampler::Trajectory,
            max_mixing_epochs: 100_000,
            max_stationary_steps: 1_000_000,
            pipeline: None,
        }
    }
}

/// Mixing figures of one sampled chain.
#[derive(Clone, Debug, Serialize)]
pub struct Mixing {
    /// The sampler.
    pub sampler: String,
    /// t_mix(1/4) in epochs; `None` when the chain never mixes (|λ₂| = 1: periodic or
    /// reducible on the support of μ).
    pub t_mix: Option<u64>,
    /// 1 − |λ₂|.
    pub spectral_gap: f64,
    /// `Some(change)` when the Arnoldi iteration behind `spectral_gap` stopped at its cap of
    /// 240 Krylov vectors with |λ₂|'s estimate still moving by `change` between its last two
    /// checks (the gap is then approximate); `None` when it settled to 1e-10 or is exact.
    pub spectral_gap_unsettled: Option<f64>,
}

impl Mixing {
    /// Why `spectral_gap` is approximate, when it is: the Arnoldi iteration's cap and how far
    /// the estimate still moved there (the oracle's table and `icq run`'s warning say this).
    pub fn gap_caveat(&self) -> Option<String> {
        self.spectral_gap_unsettled.map(|change| {
            format!(
                "approximate: the Arnoldi iteration stopped at its {} Krylov vectors with |λ₂| still moving by {change:.1e}",
                chain::MAX_KRYLOV
            )
        })
    }
}

/// Everything the oracle knows about one model.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Joint states n.
    pub states: usize,
    /// Actions A.
    pub actions: usize,
    /// Observations over all agents.
    pub observations: usize,
    /// Q*(s, a), state-major (n × A).
    pub q_star: Vec<f64>,
    /// V*(s).
    pub v_star: Vec<f64>,
    /// V*(ρ₀) = Σ ρ₀(s) V*(s).
    pub v_star_initial: f64,
    /// The policy gap of the uniform policy, (V*(ρ₀) − V^uniform(ρ₀)) / |V*(ρ₀)|: the
    /// baseline that learning has to beat.
    pub uniform_policy_gap: f64,
    /// The fixed handoff order [`OracleOptions::pipeline`], when one is given.
    pub pipeline: Option<Vec<usize>>,
    /// Its policy gap.
    pub pipeline_policy_gap: Option<f64>,
    /// ‖Q*‖_μ = √(Σ μ(s) mean_a Q*(s,a)²).
    pub q_star_norm: f64,
    /// μ, the stationary law of the behavior chain (uniform behavior).
    pub mu: Vec<f64>,
    /// Joint states with μ(s) > 0.
    pub support: usize,
    /// The trajectory chain's mixing.
    pub mixing: Mixing,
    /// The configured sampler's mixing, when it is not `trajectory`.
    pub sampler_mixing: Option<Mixing>,
    /// ε_φ.
    pub eps_phi: f64,
    /// δ_φ.
    pub delta_phi: f64,
    /// Q*_obs(o, a), observation-major.
    pub q_star_obs: Vec<f64>,
    /// The observation of each joint state.
    pub obs_of_state: Vec<usize>,
    /// ‖Q*_obs∘o − Q*‖_μ.
    pub interface_term: f64,
    /// β = max E[γ^τ] over non-terminal options.
    pub beta: f64,
    /// E[γ^τ] per option.
    pub option_discount: Vec<f64>,
    /// E\[τ\] per option.
    pub option_mean_steps: Vec<f64>,
    /// Value-iteration sweeps for Q*.
    pub sweeps: usize,
    /// A bound on how far value iteration leaves any entry of Q*_obs∘o − Q* from its exact
    /// value: tolerance·(‖V*‖∞ + max |Q*_obs|), each side's stopping bound (so an
    /// [`Analysis::interface_error_sup`] below it cannot be told from 0).
    pub value_error: f64,
}

impl Analysis {
    /// Q*(s, ·).
    pub fn q_row(&self, s: usize) -> &[f64] {
        &self.q_star[s * self.actions..(s + 1) * self.actions]
    }

    /// Q*_obs(o(s), ·).
    pub fn q_obs_row(&self, s: usize) -> &[f64] {
        let o = self.obs_of_state[s];
        &self.q_star_obs[o * self.actions..(o + 1) * self.actions]
    }

    /// The approximate-information-state bound on the interface error,
    /// max_{s: μ(s)>0, a} |Q*(s,a) − Q*_obs(o(s),a)| ≤ (ε_φ + δ_φ·span V̂)/(1 − β), with
    /// V̂(o) = max_a Q*_obs(o, a) and its span over the observations μ visits (infinite when
    /// β = 1).
    ///
    /// One Bellman step of each side differs by at most ε_φ in reward, β‖Q* − Q*_obs∘o‖ in
    /// the continuation through V* against V̂∘o, and |Σ (G∘o⁻¹ − Ĝ)·V̂| ≤ δ_φ·span V̂ in the
    /// law of the next observation: G and Ĝ have the same mass E[γ^τ] (one option per
    /// observation and action), so a constant can be taken from V̂, and δ_φ is their total
    /// variation. Both laws charge only observations μ visits (Ĝ at a visited observation
    /// averages G over the states of μ's support that show it), so the span runs over those:
    /// an observation μ never visits, whose Q*_obs is a plain average with no bearing on the
    /// learner, would only loosen the bound. The maximum over μ's support closes on itself
    /// because μ is uniform behavior's, under which every action's successors of a state in
    /// the support are in it too. (DESIGN's β·δ·span V̂/2, with δ the L1 distance of undiscounted laws,
    /// corresponds to this term for options of discount β whose γ^τ does not depend on where
    /// they end.)
    pub fn ais_bound(&self) -> f64 {
        let mut visited = vec![false; self.q_star_obs.len() / self.actions.max(1)];
        for (s, &m) in self.mu.iter().enumerate() {
            if m > 0.0 {
                visited[self.obs_of_state[s]] = true;
            }
        }
        let values = (self.q_star_obs.chunks(self.actions.max(1)))
            .zip(&visited)
            .filter(|(_, &seen)| seen)
            .map(|(row, _)| row.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let span = if hi >= lo { hi - lo } else { 0.0 };
        if self.beta >= 1.0 {
            return f64::INFINITY;
        }
        (self.eps_phi + self.delta_phi * span) / (1.0 - self.beta)
    }

    /// max_{s: μ(s)>0, a} |Q*(s,a) − Q*_obs(o(s),a)|: the interface error in the sup norm
    /// over μ's support, which [`Analysis::ais_bound`] bounds.
    pub fn interface_error_sup(&self) -> f64 {
        (0..self.states)
            .filter(|&s| self.mu[s] > 0.0)
            .flat_map(|s| {
                self.q_row(s)
                    .iter()
                    .zip(self.q_obs_row(s))
                    .map(|(q, o)| (q - o).abs())
            })
            .fold(0.0, f64::max)
    }
}

/// A model prepared for exact analysis: its state space, option kernels and initial law.
pub struct Oracle {
    model: Model,
    space: StateSpace,
    kernels: Vec<OptionKernel>,
    rho0: Vec<f64>,
}

impl Oracle {
    /// Refuses a model beyond the oracle's size limits (joint states, an option's local
    /// space) before any work: a sweep checks every grid point with it up front.
    pub fn check_size(model: &Model) -> Result<()> {
        let space = model.space();
        if space.states > MAX_STATES {
            return Err(Error::TooLarge(format!(
                "the model has {} joint states; the exact oracle handles at most {MAX_STATES}",
                space.states
            )));
        }
        for (w, opt) in model.options.iter().enumerate() {
            let m = model.agents[opt.executor].private_states;
            let local = model.artifact_states.saturating_mul(m);
            if local > MAX_OPTION_STATES {
                return Err(Error::TooLarge(format!(
                    "model.options[{w}]: its executor's local space has {} artifact × {m} \
                     private = {local} states; the exact oracle solves a dense system of at \
                     most {MAX_OPTION_STATES}",
                    model.artifact_states
                )));
            }
        }
        Ok(())
    }

    /// Prepares a validated model.
    pub fn new(model: &Model) -> Result<Self> {
        Self::check_size(model)?;
        let space = model.space();
        let kernels = OptionKernel::all(model)?;
        let rho0 = space.initial_law(model);
        Ok(Self {
            model: model.clone(),
            space,
            kernels,
            rho0,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The joint-state space.
    pub fn space(&self) -> &StateSpace {
        &self.space
    }

    /// The per-option kernels.
    pub fn kernels(&self) -> &[OptionKernel] {
        &self.kernels
    }

    /// The initial law over joint states.
    pub fn initial_law(&self) -> &[f64] {
        &self.rho0
    }

    /// The Bellman operator.
    pub fn bellman(&self) -> Bellman<'_> {
        Bellman::new(&self.space, &self.kernels, &self.model.action_options)
    }

    /// The behavior chain under uniform behavior.
    pub fn chain(&self) -> Chain<'_> {
        Chain::new(
            &self.space,
            &self.kernels,
            &self.model.action_options,
            &self.rho0,
        )
    }

    /// Computes every figure of DESIGN §3.
    pub fn analyze(&self, options: &OracleOptions) -> Result<Analysis> {
        options.sampler.validate("learner.sampler")?;
        let bellman = self.bellman();
        let (v_star, sweeps) = bellman.optimal_values(options.tolerance)?;
        let q_star = bellman.q_table(&v_star);
        let a = bellman.actions();
        let chain = self.chain();
        let (mu, _) = chain.stationary(options.max_stationary_steps)?;
        let mixing_of = |sampler: Sampler| -> Result<Mixing> {
            let second = chain.second_eigenvalue(sampler, &mu, 0);
            let spectral_gap = 1.0 - second.modulus;
            let t_mix = if spectral_gap > NEVER_MIXES {
                Some(chain.mixing_time(sampler, &mu, options.max_mixing_epochs)?)
            } else {
                None
            };
            Ok(Mixing {
                sampler: sampler.label(),
                t_mix,
                spectral_gap,
                spectral_gap_unsettled: second.unsettled,
            })
        };
        let mixing = mixing_of(Sampler::Trajectory)?;
        let sampler_mixing = match options.sampler {
            Sampler::Trajectory => None,
            s => Some(mixing_of(s)?),
        };
        let obs_of_state = self.space.observations_of_states();
        let gap = interface::interface_gap(
            &self.space,
            &self.kernels,
            &self.model.action_options,
            &obs_of_state,
            &mu,
            options.tolerance,
        )?;
        let mut interface_sq = 0.0;
        let mut norm_sq = 0.0;
        for s in (0..self.space.states).filter(|&s| mu[s] > 0.0) {
            let o = obs_of_state[s];
            let (qs, qo) = (
                &q_star[s * a..(s + 1) * a],
                &gap.q_star_obs[o * a..(o + 1) * a],
            );
            interface_sq +=
                mu[s] * qs.iter().zip(qo).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a as f64;
            norm_sq += mu[s] * qs.iter().map(|x| x * x).sum::<f64>() / a as f64;
        }
        let v_star_initial: f64 = self.rho0.iter().zip(&v_star).map(|(p, v)| p * v).sum();
        let v_uniform = bellman.uniform_values(options.tolerance)?;
        let v_uniform_initial: f64 = self.rho0.iter().zip(&v_uniform).map(|(p, v)| p * v).sum();
        let gap_of = |v: f64| (v_star_initial - v) / v_star_initial.abs().max(f64::MIN_POSITIVE);
        let uniform_policy_gap = gap_of(v_uniform_initial);
        let pipeline_policy_gap = match &options.pipeline {
            None => None,
            Some(order) => {
                let policy = self.pipeline_policy(order)?;
                Some(gap_of(self.policy_value(&policy, options.tolerance)?.1))
            }
        };
        let sup_norm = |x: &[f64]| x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let value_error = options.tolerance * (sup_norm(&v_star) + sup_norm(&gap.q_star_obs));
        Ok(Analysis {
            states: self.space.states,
            actions: a,
            observations: self.space.observations,
            support: mu.iter().filter(|&&m| m > 0.0).count(),
            q_star,
            v_star,
            v_star_initial,
            uniform_policy_gap,
            pipeline: options.pipeline.clone(),
            pipeline_policy_gap,
            q_star_norm: norm_sq.sqrt(),
            mu,
            mixing,
            sampler_mixing,
            eps_phi: gap.eps_phi,
            delta_phi: gap.delta_phi,
            q_star_obs: gap.q_star_obs,
            obs_of_state,
            interface_term: interface_sq.sqrt(),
            beta: bellman.beta,
            option_discount: self.kernels.iter().map(|k| k.discount).collect(),
            option_mean_steps: self.kernels.iter().map(|k| k.mean_steps).collect(),
            sweeps,
            value_error,
        })
    }

    /// The decentralized policy of a fixed handoff order, one action per observation: agent
    /// i takes `order[i]` at each of its observations.
    pub fn pipeline_policy(&self, order: &[usize]) -> Result<Vec<usize>> {
        crate::config::check_pipeline(order, self.space.agents, self.model.actions)?;
        let mut policy = Vec::with_capacity(self.space.observations);
        for (i, &a) in order.iter().enumerate() {
            let end = self
                .space
                .obs_offset
                .get(i + 1)
                .copied()
                .unwrap_or(self.space.observations);
            policy.extend(std::iter::repeat_n(a, end - self.space.obs_offset[i]));
        }
        Ok(policy)
    }

    /// The exact value of the decentralized policy that takes `policy[o]` at observation `o`
    /// (a global observation index; agent i's observations are its own): V^π per joint state
    /// and V^π(ρ₀).
    pub fn policy_value(&self, policy: &[usize], tolerance: f64) -> Result<(Vec<f64>, f64)> {
        if policy.len() != self.space.observations {
            return Err(Error::invalid(
                "policy",
                format!(
                    "expected one action per observation ({}), found {}",
                    self.space.observations,
                    policy.len()
                ),
            ));
        }
        let obs = self.space.observations_of_states();
        let by_state: Vec<usize> = obs.iter().map(|&o| policy[o]).collect();
        self.policy_value_by_state(&by_state, tolerance)
            .map_err(|e| match e {
                Error::Invalid { message, .. } => Error::invalid("policy", message),
                e => e,
            })
    }

    /// The exact value of the policy that takes `policy[s]` in joint state `s` (a centralized
    /// policy): V^π per joint state and V^π(ρ₀).
    pub fn policy_value_by_state(
        &self,
        policy: &[usize],
        tolerance: f64,
    ) -> Result<(Vec<f64>, f64)> {
        if policy.len() != self.space.states {
            return Err(Error::invalid(
                "policy",
                format!(
                    "expected one action per joint state ({}), found {}",
                    self.space.states,
                    policy.len()
                ),
            ));
        }
        if let Some((s, &a)) = policy
            .iter()
            .enumerate()
            .find(|(_, &a)| a >= self.model.actions)
        {
            return Err(Error::invalid(
                format!("policy[{s}]"),
                format!("expected an action below {}, found {a}", self.model.actions),
            ));
        }
        let v = self.bellman().policy_values(tolerance, |s| policy[s])?;
        let initial = self.rho0.iter().zip(&v).map(|(p, v)| p * v).sum();
        Ok((v, initial))
    }

    /// policy_gap = (V*(ρ₀) − V^π(ρ₀)) / |V*(ρ₀)| of a decentralized policy.
    pub fn policy_gap(&self, analysis: &Analysis, policy: &[usize], tolerance: f64) -> Result<f64> {
        let (_, v_pi) = self.policy_value(policy, tolerance)?;
        Ok((analysis.v_star_initial - v_pi) / analysis.v_star_initial.abs().max(f64::MIN_POSITIVE))
    }
}
