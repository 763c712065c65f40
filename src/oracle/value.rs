//! Bellman operators over joint states: Q* by value iteration on Q = R̄ + G·max Q, and the
//! exact value V^π of a fixed decentralized policy, both to a stated relative tolerance.
//!
//! The stopping rule is the standard sup-norm bound: after an update with change Δ, the
//! iterate is within β/(1−β)·Δ of the fixed point, where β = max E[γ^τ] over non-terminal
//! options is the contraction factor. Iteration stops once that bound is below
//! `tolerance · ‖V‖∞`.

use rayon::prelude::*;

use super::kernels::{contraction, OptionKernel};
use crate::error::{Error, Result};
use crate::model::StateSpace;

/// Most sweeps value iteration may take.
const MAX_SWEEPS: usize = 2_000_000;

/// The Bellman structure of a model: which option each (decider, action) launches and where
/// its successors lie.
pub struct Bellman<'a> {
    pub(crate) space: &'a StateSpace,
    pub(crate) kernels: &'a [OptionKernel],
    pub(crate) action_options: &'a [Vec<usize>],
    /// Per executor e: the offset of local successor c' = (x', p'_e) from a state's base.
    pub(crate) offsets: Vec<Vec<usize>>,
    /// The contraction factor β.
    pub beta: f64,
}

impl<'a> Bellman<'a> {
    /// The operator of a model's kernels.
    pub fn new(
        space: &'a StateSpace,
        kernels: &'a [OptionKernel],
        action_options: &'a [Vec<usize>],
    ) -> Self {
        let offsets = (0..space.agents)
            .map(|e| {
                let m = space.private_states[e];
                (0..space.artifact_states * m)
                    .map(|c| (c / m) * space.stride_x + (c % m) * space.stride_p[e])
                    .collect()
            })
            .collect();
        let beta = contraction(kernels);
        Self {
            space,
            kernels,
            action_options,
            offsets,
            beta,
        }
    }

    /// The number of actions.
    pub fn actions(&self) -> usize {
        self.action_options[0].len()
    }

    /// Q(s, a) = R̄(s, a) + Σ G(s'|s, a) v(s') for the value vector `v`.
    #[inline]
    pub fn q(&self, s: usize, a: usize, v: &[f64]) -> f64 {
        let h = self.space.decider(s);
        let k = &self.kernels[self.action_options[h][a]];
        let e = k.executor;
        let c = self.space.local(s, e);
        let mut q = k.rbar[c];
        if !k.terminal {
            let base = self.space.with_local(s, e, 0);
            let row = k.g.row(c);
            let off = &self.offsets[e];
            for (cp, &g) in row.iter().enumerate() {
                if g != 0.0 {
                    q += g * v[base + off[cp]];
                }
            }
        }
        q
    }

    /// All Q(s, ·) for the value vector `v`, state-major (n × A).
    pub fn q_table(&self, v: &[f64]) -> Vec<f64> {
        let a = self.actions();
        let mut out = vec![0.0; self.space.states * a];
        out.par_chunks_mut(a).enumerate().for_each(|(s, qs)| {
            for (act, q) in qs.iter_mut().enumerate() {
                *q = self.q(s, act, v);
            }
        });
        out
    }

    /// Iterates `v ← update(s, v)` to the fixed point; returns it and the sweep count.
    fn fixed_point(
        &self,
        what: &str,
        tolerance: f64,
        update: impl Fn(usize, &[f64]) -> f64 + Sync,
    ) -> Result<(Vec<f64>, usize)> {
        let n = self.space.states;
        let mut v = vec![0.0; n];
        let mut next = vec![0.0; n];
        let factor = if self.beta > 0.0 {
            self.beta / (1.0 - self.beta)
        } else {
            0.0
        };
        for sweep in 1..=MAX_SWEEPS {
            next.par_iter_mut()
                .enumerate()
                .for_each(|(s, x)| *x = update(s, &v));
            let delta = v
                .iter()
                .zip(&next)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            let scale = next.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            std::mem::swap(&mut v, &mut next);
            if factor * delta <= tolerance * scale || delta == 0.0 {
                return Ok((v, sweep));
            }
        }
        Err(Error::NotConverged(format!(
            "{what}: value iteration did not reach relative tolerance {tolerance:e} in {MAX_SWEEPS} sweeps (β = {})",
            self.beta
        )))
    }

    /// V* by value iteration; returns V* and the number of sweeps.
    pub fn optimal_values(&self, tolerance: f64) -> Result<(Vec<f64>, usize)> {
        let a = self.actions();
        self.fixed_point("Q*", tolerance, |s, v| {
            (0..a)
                .map(|act| self.q(s, act, v))
                .fold(f64::NEG_INFINITY, f64::max)
        })
    }

    /// V^π of the policy that takes `action(s)` in joint state s.
    pub fn policy_values(
        &self,
        tolerance: f64,
        action: impl Fn(usize) -> usize + Sync,
    ) -> Result<Vec<f64>> {
        Ok(self
            .fixed_point("V^π", tolerance, |s, v| self.q(s, action(s), v))?
            .0)
    }

    /// V of the uniform policy (every decider picks each action with probability 1/A).
    pub fn uniform_values(&self, tolerance: f64) -> Result<Vec<f64>> {
        let a = self.actions();
        Ok(self
            .fixed_point("V^uniform", tolerance, |s, v| {
                (0..a).map(|act| self.q(s, act, v)).sum::<f64>() / a as f64
            })?
            .0)
    }
}
