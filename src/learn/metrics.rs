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

impl Metrics {
    /// Whether the instance diverged: one of its Q-values (any input, on μ's support or not)
    /// is not finite. Its errors are then NaN and it has no policy gap: the means over
    /// instances leave it out, and runs and sweeps count it.
    pub fn diverged(&self) -> bool {
        !self.q_err.is_finite()
    }
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
    // A Q-value that is not finite anywhere (off μ's support too: at a transient state of the
    // start, say, where the greedy policy starts) makes the whole instance diverged.
    let block = q.inputs * a;
    let finite = |b: usize| {
        q.values[b * block..(b + 1) * block]
            .iter()
            .all(|v| v.is_finite())
    };
    // ‖Q − Q*‖²_μ, ‖Q − Q*_obs∘o‖²_μ and max |Q − Q*| over μ's support, of a finite instance.
    let errors = |b: usize| {
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
                sup = sup.max(d.abs());
            }
            sq += analysis.mu[s] * e / a as f64;
            sq_obs += analysis.mu[s] * e_obs / a as f64;
        }
        (sq, sq_obs, sup)
    };
    let mut out: Vec<Metrics> = (0..instances)
        .into_par_iter()
        .map(|b| {
            // A diverged instance has no errors: NaN, which the means leave out.
            let (sq, sq_obs, sup) = if finite(b) {
                errors(b)
            } else {
                (f64::NAN, f64::NAN, f64::NAN)
            };
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

    // Greedy policies, keyed by their actions per joint state, each evaluated once. A diverged
    // instance has no greedy policy: its gap stays unknown.
    let per_seed = plan.per_seed as usize;
    let with_gap: Vec<usize> = (0..instances)
        .filter(|&b| b % per_seed < policy_gap_instances && !out[b].diverged())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::LearnerConfig;
    use crate::model::synthetic::Synthetic;
    use crate::oracle::OracleOptions;

    /// Q tables of `shifts.len()` instances of `plan`: instance b holds `row(s) + shifts[b]`
    /// at the input of every joint state s (rounded to f32).
    fn tables<'a>(plan: &Plan, shifts: &[f32], row: impl Fn(usize) -> &'a [f64]) -> QTables {
        let params = vec![0.0; shifts.len() * plan.layout.params];
        let mut q = QTables::from_params(&plan.layout, &params);
        let a = q.actions;
        for (b, c) in shifts.iter().enumerate() {
            for s in 0..plan.space.states {
                let (unit, input) = (plan.unit_of(s), plan.state_input[s] as usize);
                let at = (b * q.inputs + q.unit_offset[unit] + input) * a;
                for (act, &v) in row(s).iter().enumerate() {
                    q.values[at + act] = v as f32 + c;
                }
            }
        }
        q
    }

    /// Metrics of Q tables set by hand on a model whose interface hides much (the greedy
    /// policy of Q*_obs loses 16% of V*): instance 0 holds Q*_obs∘o exactly (up to f32
    /// rounding), instance 1 the same plus 0.25 everywhere. So q_err_obs is 0 and 0.25, q_err
    /// of instance 0 is the oracle's interface term, q_err_sup is the largest entry of
    /// |Q*_obs∘o − Q*| (and 0.25 more, at most, for instance 1), and both greedy policies are
    /// the greedy policy of Q*_obs, whose gap the oracle gives directly. Tolerances: f32
    /// rounding of values near ‖Q*‖, about 1e-7 relative.
    #[test]
    fn metrics_of_q_tables_set_by_hand() {
        let model = Synthetic {
            agents: 2,
            artifact_states: 8,
            interface_states: 4,
            private_states: 2,
            interface_noise: 0.6,
            private_weight: 0.5,
            model_seed: 2,
            ..Synthetic::default()
        }
        .build()
        .unwrap();
        let oracle = Oracle::new(&model).unwrap();
        let analysis = oracle.analyze(&OracleOptions::default()).unwrap();
        assert!(
            analysis.interface_term > 0.01,
            "the interface hides something"
        );
        let plan = Plan::new(&model, &LearnerConfig::default(), 2, 0, None).unwrap();
        let q = tables(&plan, &[0.0, 0.25], |s| analysis.q_obs_row(s));
        let a = q.actions;
        let counters = Counters {
            epochs: vec![10, 10],
            steps: vec![40, 35],
            abs_target: vec![5.0, 2.0],
            updates: vec![3, 7, 4, 6],
        };
        let m = checkpoint_metrics(&plan, &oracle, &analysis, &q, &counters, 2, 1e-12).unwrap();
        let tol = 1e-6 * analysis.q_star_norm;
        assert!(m[0].q_err_obs < tol, "{}", m[0].q_err_obs);
        assert!((m[1].q_err_obs - 0.25).abs() < tol, "{}", m[1].q_err_obs);
        assert!(
            (m[0].q_err - analysis.interface_term).abs() < tol,
            "{} against {}",
            m[0].q_err,
            analysis.interface_term
        );
        let gap_sup = (0..plan.space.states)
            .filter(|&s| analysis.mu[s] > 0.0)
            .flat_map(|s| {
                let (star, obs) = (analysis.q_row(s), analysis.q_obs_row(s));
                star.iter()
                    .zip(obs)
                    .map(|(x, y)| (x - y).abs())
                    .collect::<Vec<_>>()
            })
            .fold(0.0, f64::max);
        assert!((m[0].q_err_sup - gap_sup).abs() < tol, "{}", m[0].q_err_sup);
        assert!(m[1].q_err_sup <= gap_sup + 0.25 + tol);

        let greedy: Vec<usize> = (0..analysis.observations)
            .map(|o| {
                let row = &analysis.q_star_obs[o * a..(o + 1) * a];
                let f: Vec<f32> = row.iter().map(|&v| v as f32).collect();
                argmax(&f)
            })
            .collect();
        let want = oracle.policy_gap(&analysis, &greedy, 1e-12).unwrap();
        // The model is chosen so that the interface costs the greedy policy of Q*_obs value.
        assert!(want > 0.1, "{want}");
        for metrics in &m {
            let gap = metrics.policy_gap.expect("evaluated");
            assert!((gap - want).abs() < 1e-9, "{gap} against {want}");
        }
        assert_eq!((m[0].mean_tau, m[1].mean_tau), (4.0, 3.5));
        assert_eq!((m[0].mean_abs_target, m[1].mean_abs_target), (0.5, 0.2));
        assert_eq!(
            (m[0].updates.clone(), m[1].updates.clone()),
            (vec![3, 7], vec![4, 6])
        );
    }

    /// A diverged instance (one Q-value not finite, here anywhere in its tables) has no greedy
    /// policy to evaluate: its gap is unknown, not the gap of whatever argmax makes of NaN.
    #[test]
    fn a_diverged_instance_has_no_policy_gap() {
        let model = Synthetic {
            agents: 2,
            artifact_states: 8,
            interface_states: 4,
            ..Synthetic::default()
        }
        .build()
        .unwrap();
        let oracle = Oracle::new(&model).unwrap();
        let analysis = oracle.analyze(&OracleOptions::default()).unwrap();
        let plan = Plan::new(&model, &LearnerConfig::default(), 3, 0, None).unwrap();
        let mut q = tables(&plan, &[0.0, 0.0, 0.0], |s| analysis.q_obs_row(s));
        let block = q.inputs * q.actions;
        q.values[2 * block - 1] = f32::NAN;
        q.values[3 * block - 1] = f32::INFINITY;
        let counters = Counters {
            epochs: vec![1; 3],
            steps: vec![1; 3],
            abs_target: vec![0.0; 3],
            updates: vec![1; 6],
        };
        let m = checkpoint_metrics(&plan, &oracle, &analysis, &q, &counters, 3, 1e-12).unwrap();
        assert!(m[0].policy_gap.is_some_and(f64::is_finite), "{:?}", m[0]);
        assert_eq!((m[1].policy_gap, m[2].policy_gap), (None, None));
    }

    /// A Q-value that is not finite off μ's support still makes the instance diverged: here
    /// artifact state 0 is only the start (both options move to state 1 and stay), so μ puts
    /// no mass on it, but the greedy policy starts there. The instance's errors are NaN, it has
    /// no policy gap, and it counts as diverged; the other instance is untouched.
    #[test]
    fn a_value_not_finite_off_the_support_is_divergence() {
        use crate::model::{Agent, Duration, Initial, Model, OptionSpec};
        let option = |reward: f64| OptionSpec {
            executor: 0,
            duration: Duration::Fixed { steps: 1 },
            artifact_transition: vec![vec![0.0, 1.0], vec![0.0, 1.0]],
            private_transition: vec![vec![1.0]],
            reward: vec![vec![reward], vec![reward]],
            terminal: false,
        };
        let model = Model {
            gamma: 0.9,
            agents: vec![Agent {
                private_states: 1,
                interface: vec![0, 1],
            }],
            artifact_states: 2,
            actions: 2,
            options: vec![option(1.0), option(0.5)],
            action_options: vec![vec![0, 1]],
            initial: Initial {
                agent: 0,
                artifact: vec![1.0, 0.0],
                private: vec![vec![1.0]],
            },
        };
        let oracle = Oracle::new(&model).unwrap();
        let analysis = oracle.analyze(&OracleOptions::default()).unwrap();
        let plan = Plan::new(&model, &LearnerConfig::default(), 2, 0, None).unwrap();
        let start = (0..plan.space.states)
            .find(|&s| analysis.mu[s] == 0.0)
            .expect("a state off the support");
        let input = plan.state_input[start] as usize;
        assert!(
            (0..plan.space.states)
                .filter(|&s| plan.state_input[s] as usize == input)
                .all(|s| analysis.mu[s] == 0.0),
            "the input of the start is seen off the support only"
        );
        let mut q = tables(&plan, &[0.0, 0.0], |s| analysis.q_row(s));
        let at = (q.inputs + q.unit_offset[plan.unit_of(start)] + input) * q.actions;
        q.values[at] = f32::NAN;
        let counters = Counters {
            epochs: vec![1; 2],
            steps: vec![1; 2],
            abs_target: vec![0.0; 2],
            updates: vec![1; 2],
        };
        let m = checkpoint_metrics(&plan, &oracle, &analysis, &q, &counters, 2, 1e-12).unwrap();
        let tol = 1e-6 * analysis.q_star_norm;
        assert!(!m[0].diverged() && m[0].q_err < tol, "{:?}", m[0]);
        assert!(
            m[0].policy_gap.is_some_and(|g| g.abs() < 1e-9),
            "{:?}",
            m[0]
        );
        assert!(m[1].diverged(), "{:?}", m[1]);
        assert!(m[1].q_err.is_nan() && m[1].q_err_obs.is_nan() && m[1].q_err_sup.is_nan());
        assert_eq!(m[1].policy_gap, None);
    }

    /// A centralized learner's table set to Q* itself: q_err 0, q_err_obs the interface term,
    /// and the greedy policy of Q* is optimal (gap 0, to the evaluation's tolerance).
    #[test]
    fn a_centralized_table_equal_to_q_star() {
        let model = Synthetic {
            agents: 2,
            artifact_states: 8,
            interface_states: 4,
            private_states: 2,
            interface_noise: 0.3,
            ..Synthetic::default()
        }
        .build()
        .unwrap();
        let oracle = Oracle::new(&model).unwrap();
        let analysis = oracle.analyze(&OracleOptions::default()).unwrap();
        let learner = LearnerConfig {
            mode: Mode::Centralized,
            ..LearnerConfig::default()
        };
        let plan = Plan::new(&model, &learner, 1, 0, None).unwrap();
        let q = tables(&plan, &[0.0], |s| analysis.q_row(s));
        let counters = Counters {
            epochs: vec![1],
            steps: vec![1],
            abs_target: vec![0.0],
            updates: vec![1],
        };
        let m = checkpoint_metrics(&plan, &oracle, &analysis, &q, &counters, 1, 1e-12).unwrap();
        let tol = 1e-6 * analysis.q_star_norm;
        assert!(m[0].q_err < tol && m[0].q_err_sup < tol, "{:?}", m[0]);
        assert!(
            (m[0].q_err_obs - analysis.interface_term).abs() < tol,
            "{:?}",
            m[0]
        );
        assert!(
            m[0].policy_gap.expect("evaluated").abs() < 1e-9,
            "{:?}",
            m[0]
        );
    }
}
