//! The interface gap: how far the decider's observation o = (h, φ_h(x), p_h) is from an
//! information state under μ.
//!
//! R̂(o, a) and Ĝ(o'|o, a) are μ-weighted averages over the joint states that share o (an
//! observation μ never visits gets the plain average of its states, so it still has a value).
//! ε_φ = max_{s,a: μ(s)>0} |R̄(s,a) − R̂(o(s),a)|; δ_φ is the matching maximum total variation
//! ½‖G(·|s,a)∘o⁻¹ − Ĝ(·|o(s),a)‖₁ between the discounted next-observation laws, over the
//! options that continue (a terminal option's next observation is never bootstrapped from).
//! Q*_obs is the optimal Q of the aggregated model (R̂, Ĝ), found by value iteration.

use super::kernels::{contraction, OptionKernel};
use crate::error::{Error, Result};
use crate::model::StateSpace;

/// The aggregated model over observations and its gap to the joint-state model.
pub struct InterfaceGap {
    /// ε_φ.
    pub eps_phi: f64,
    /// δ_φ.
    pub delta_phi: f64,
    /// μ(o), the stationary mass of each observation.
    pub obs_mass: Vec<f64>,
    /// Q*_obs(o, a), observation-major (n_obs × A).
    pub q_star_obs: Vec<f64>,
}

/// Per option: the discounted law of the next observation from each local state c, as
/// rows over the executor's observations (K_e·M_e entries).
fn next_observation_laws(space: &StateSpace, kernels: &[OptionKernel]) -> Vec<Vec<f64>> {
    kernels
        .iter()
        .map(|k| {
            let e = k.executor;
            let m = space.private_states[e];
            let width = space.interface_states[e] * m;
            let mut out = vec![0.0; k.size * width];
            for c in 0..k.size {
                for (cp, &g) in k.g.row(c).iter().enumerate() {
                    let (x, p) = (cp / m, cp % m);
                    out[c * width + space.interface_of(e, x) * m + p] += g;
                }
            }
            out
        })
        .collect()
}

/// Computes ε_φ, δ_φ and Q*_obs for stationary law `mu`.
pub fn interface_gap(
    space: &StateSpace,
    kernels: &[OptionKernel],
    action_options: &[Vec<usize>],
    obs_of_state: &[usize],
    mu: &[f64],
    tolerance: f64,
) -> Result<InterfaceGap> {
    let n_obs = space.observations;
    let a_count = action_options[0].len();
    let laws = next_observation_laws(space, kernels);
    let mut obs_mass = vec![0.0; n_obs];
    let mut obs_count = vec![0usize; n_obs];
    for (s, &o) in obs_of_state.iter().enumerate() {
        obs_mass[o] += mu[s];
        obs_count[o] += 1;
    }
    let weight = |s: usize| {
        let o = obs_of_state[s];
        if obs_mass[o] > 0.0 {
            mu[s] / obs_mass[o]
        } else {
            1.0 / obs_count[o] as f64
        }
    };
    // Aggregated R̂ (n_obs × A) and Ĝ (per (o, a): a row over the executor's observations).
    let mut r_hat = vec![0.0; n_obs * a_count];
    let mut g_hat: Vec<Vec<f64>> = vec![Vec::new(); n_obs * a_count];
    for (s, &o) in obs_of_state.iter().enumerate() {
        let (h, wgt) = (space.decider(s), weight(s));
        if wgt == 0.0 {
            continue;
        }
        for a in 0..a_count {
            let k = &kernels[action_options[h][a]];
            let c = space.local(s, k.executor);
            r_hat[o * a_count + a] += wgt * k.rbar[c];
            let law = &laws[action_options[h][a]];
            let width = law.len() / k.size;
            let row = &mut g_hat[o * a_count + a];
            row.resize(width, 0.0);
            for (x, &g) in row.iter_mut().zip(&law[c * width..(c + 1) * width]) {
                *x += wgt * g;
            }
        }
    }
    let (mut eps_phi, mut delta_phi) = (0.0f64, 0.0f64);
    for s in (0..space.states).filter(|&s| mu[s] > 0.0) {
        let (o, h) = (obs_of_state[s], space.decider(s));
        for a in 0..a_count {
            let w = action_options[h][a];
            let k = &kernels[w];
            let c = space.local(s, k.executor);
            eps_phi = eps_phi.max((k.rbar[c] - r_hat[o * a_count + a]).abs());
            // A terminal option bootstraps nothing: its next observation enters no Bellman
            // operator, so it adds no representation error.
            if k.terminal {
                continue;
            }
            let width = laws[w].len() / k.size;
            let tv: f64 = laws[w][c * width..(c + 1) * width]
                .iter()
                .zip(&g_hat[o * a_count + a])
                .map(|(x, y)| (x - y).abs())
                .sum();
            delta_phi = delta_phi.max(0.5 * tv);
        }
    }
    let q_star_obs = aggregated_q_star(
        space,
        kernels,
        action_options,
        &r_hat,
        &g_hat,
        a_count,
        tolerance,
    )?;
    Ok(InterfaceGap {
        eps_phi,
        delta_phi,
        obs_mass,
        q_star_obs,
    })
}

/// Value iteration on the aggregated model Q̂(o,a) = R̂(o,a) + Σ_o' Ĝ(o'|o,a) max Q̂(o',·).
fn aggregated_q_star(
    space: &StateSpace,
    kernels: &[OptionKernel],
    action_options: &[Vec<usize>],
    r_hat: &[f64],
    g_hat: &[Vec<f64>],
    a_count: usize,
    tolerance: f64,
) -> Result<Vec<f64>> {
    let n_obs = space.observations;
    let owner: Vec<usize> = (0..n_obs)
        .map(|o| {
            (0..space.agents)
                .rposition(|i| space.obs_offset[i] <= o)
                .unwrap_or(0)
        })
        .collect();
    let beta = contraction(kernels);
    let factor = if beta > 0.0 { beta / (1.0 - beta) } else { 0.0 };
    let mut v = vec![0.0; n_obs];
    let mut q = vec![0.0; n_obs * a_count];
    for _ in 0..2_000_000 {
        for o in 0..n_obs {
            for a in 0..a_count {
                let k = &kernels[action_options[owner[o]][a]];
                let mut x = r_hat[o * a_count + a];
                if !k.terminal {
                    let base = space.obs_offset[k.executor];
                    for (j, &g) in g_hat[o * a_count + a].iter().enumerate() {
                        x += g * v[base + j];
                    }
                }
                q[o * a_count + a] = x;
            }
        }
        let mut delta = 0.0f64;
        let mut scale = 0.0f64;
        for o in 0..n_obs {
            let best = q[o * a_count..(o + 1) * a_count]
                .iter()
                .fold(f64::NEG_INFINITY, |m, &x| m.max(x));
            delta = delta.max((best - v[o]).abs());
            scale = scale.max(best.abs());
            v[o] = best;
        }
        if factor * delta <= tolerance * scale || delta == 0.0 {
            return Ok(q);
        }
    }
    Err(Error::NotConverged(
        "Q*_obs: value iteration on the aggregated model did not converge".into(),
    ))
}
