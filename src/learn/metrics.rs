//! Error metrics of learned Q-values against the oracle (DESIGN §3), per instance and
//! checkpoint: `q_err` = √(Σ_s μ(s) mean_a (Q_h(o(s),a) − Q*(s,a))²), `q_err_obs` (the same
//! against Q*_obs∘o), `q_err_sup` (the largest |Q_h(o(s),a) − Q*(s,a)| on the support of μ),
//! `policy_gap` = (V*(ρ₀) − V^π(ρ₀)) / |V*(ρ₀)| of the greedy policy, and the counters.

use std::collections::HashMap;

use rayon::prelude::*;

use super::net::argmax;
use super::plan::Plan;
use super::Mode;
use crate::backend::{Counters, QTables};
use crate::error::Result;
use crate::oracle::{Analysis, Oracle};

/// One instance's metrics at one checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// Instance index (among the instances of its seed).
    pub instance: u32,
    /// Epochs run.
    pub epoch: u32,
    /// ‖Q − Q*‖_μ.
    pub q_err: f64,
    /// ‖Q − Q*_obs∘o‖_μ.
    pub q_err_obs: f64,
    /// max |Q − Q*| on the support of μ.
    pub q_err_sup: f64,
    /// Policy gap of the greedy policy (`None` where not computed).
    pub policy_gap: Option<f64>,
    /// Mean option length τ over the epochs run.
    pub mean_tau: f64,
    /// Mean |y| over the updates made.
    pub mean_abs_target: f64,
    /// Updates per unit.
    pub updates: Vec<u32>,
}

/// Metrics of every instance; the policy gap for the first `policy_gap_instances` of each
/// seed only (greedy policies shared by several instances are evaluated once).
pub fn checkpoint_metrics(
    plan: &Plan,
    oracle: &Oracle,
    analysis: &Analysis,
    q: &QTables,
    counters: &Counters,
    policy_gap_instances: usize,
    tolerance: f64,
) -> Result<Vec<Metrics>> {
    let space = &plan.space;
    let a = q.actions;
    let units = plan.units();
    let support: Vec<usize> = (0..space.states)
        .filter(|&s| analysis.mu[s] > 0.0)
        .collect();
    let row = |b: usize, s: usize| q.row(b, plan.unit_of(s), plan.state_input[s] as usize);
    let instances = plan.instances as usize;
    let mut out: Vec<Metrics> = (0..instances)
        .into_par_iter()
        .map(|b| {
            let (mut sq, mut sq_obs, mut sup) = (0.0f64, 0.0f64, 0.0f64);
            for &s in &support {
                let learned = row(b, s);
                let (star, star_obs) = (analysis.q_row(s), analysis.q_obs_row(s));
                let (mut e, mut e_obs) = (0.0, 0.0);
                for act in 0..a {
                    let d = f64::from(learned[act]) - star[act];
                    let d_obs = f64::from(learned[act]) - star_obs[act];
                    e += d * d;
                    e_obs += d_obs * d_obs;
                    // NaN-propagating: a diverged instance must not look converged.
                    sup = if d.is_nan() || sup.is_nan() {
                        f64::NAN
                    } else {
                        sup.max(d.abs())
                    };
                }
                sq += analysis.mu[s] * e / a as f64;
                sq_obs += analysis.mu[s] * e_obs / a as f64;
            }
            let updates = counters.updates[b * units..(b + 1) * units].to_vec();
            let total_updates: u64 = updates.iter().map(|&u| u64::from(u)).sum();
            let epochs = counters.epochs[b];
            Metrics {
                instance: plan.key(b as u32).1,
                epoch: epochs,
                q_err: sq.sqrt(),
                q_err_obs: sq_obs.sqrt(),
                q_err_sup: sup,
                policy_gap: None,
                mean_tau: counters.steps[b] as f64 / f64::from(epochs.max(1)),
                mean_abs_target: counters.abs_target[b] / total_updates.max(1) as f64,
                updates,
            }
        })
        .collect();

    // Greedy policies, keyed by their actions per joint state, each evaluated once.
    let per_seed = plan.per_seed as usize;
    let with_gap: Vec<usize> = (0..instances)
        .filter(|b| b % per_seed < policy_gap_instances)
        .collect();
    let policies: Vec<Vec<u32>> = with_gap
        .par_iter()
        .map(|&b| b)
        .map(|b| {
            (0..space.states)
                .map(|s| argmax(row(b, s)) as u32)
                .collect()
        })
        .collect();
    let mut distinct: HashMap<&[u32], usize> = HashMap::new();
    for p in &policies {
        let next = distinct.len();
        distinct.entry(p.as_slice()).or_insert(next);
    }
    let mut keys: Vec<(&[u32], usize)> = distinct.iter().map(|(k, &v)| (*k, v)).collect();
    keys.sort_by_key(|&(_, v)| v);
    let values: Vec<Result<f64>> = keys
        .par_iter()
        .map(|(p, _)| {
            let by_state: Vec<usize> = p.iter().map(|&x| x as usize).collect();
            let (_, v) = oracle.policy_value_by_state(&by_state, tolerance)?;
            Ok(v)
        })
        .collect();
    let values: Vec<f64> = values.into_iter().collect::<Result<_>>()?;
    let v_star = analysis.v_star_initial;
    for (&b, p) in with_gap.iter().zip(&policies) {
        let v = values[distinct[p.as_slice()]];
        out[b].policy_gap = Some((v_star - v) / v_star.abs().max(f64::MIN_POSITIVE));
    }
    debug_assert!(plan.learner.mode == Mode::Centralized || units == space.agents);
    Ok(out)
}
