//! Q* against Monte-Carlo returns on a random model that mixes all three duration laws and a
//! terminal option, simulated with the reference rollout (the draws every backend makes).

use icq::model::{Agent, DrawTables, Duration, Initial, Model, OptionSpec};
use icq::oracle::{Oracle, OracleOptions};
use icq::rng::{HostRng, Stream, TAG_EPOCH};
use rand::RngExt;

fn random_law(rng: &mut HostRng, n: usize) -> Vec<f64> {
    let v: Vec<f64> = (0..n).map(|_| rng.random::<f64>() + 0.05).collect();
    let total: f64 = v.iter().sum();
    v.iter().map(|x| x / total).collect()
}

fn random_model(seed: u64) -> Model {
    let mut rng = HostRng::new(seed, 0);
    let s = 3;
    let m = [2usize, 1];
    // (executor, duration, terminal) per option.
    let specs = [
        (1, Duration::Geometric { mean: 2.5 }, false),
        (0, Duration::Fixed { steps: 2 }, false),
        (0, Duration::Poisson { mean: 1.8 }, false),
        (1, Duration::Geometric { mean: 1.5 }, true),
    ];
    let options = specs
        .iter()
        .map(|&(e, duration, terminal)| OptionSpec {
            executor: e,
            duration,
            artifact_transition: (0..s).map(|_| random_law(&mut rng, s)).collect(),
            private_transition: (0..m[e]).map(|_| random_law(&mut rng, m[e])).collect(),
            reward: (0..s)
                .map(|_| (0..m[e]).map(|_| rng.random::<f64>()).collect())
                .collect(),
            terminal,
        })
        .collect();
    Model {
        gamma: 0.85,
        agents: vec![
            Agent {
                private_states: 2,
                interface: vec![0, 0, 1],
            },
            Agent {
                private_states: 1,
                interface: vec![0, 1, 2],
            },
        ],
        artifact_states: s,
        actions: 2,
        options,
        action_options: vec![vec![0, 1], vec![2, 3]],
        initial: Initial {
            agent: 0,
            artifact: vec![0.5, 0.25, 0.25],
            private: vec![vec![0.5, 0.5], vec![1.0]],
        },
    }
}

/// Each (s, a) of the model, 20 000 rollouts: a then the greedy policy of Q*, until a terminal
/// option or until γ-discounting has shrunk the rest below 1e-10. The estimate must be within
/// 4.5 standard errors of Q*(s, a) (a false alarm about once in 150 000 per pair; the seed is
/// fixed, so the test is deterministic).
#[test]
fn q_star_matches_monte_carlo_returns() {
    let model = random_model(2024);
    model.validate().expect("valid");
    let oracle = Oracle::new(&model).unwrap();
    let a = oracle.analyze(&OracleOptions::default()).unwrap();
    let space = oracle.space();
    let tables = DrawTables::new(&model);
    let greedy = |s: usize| {
        let q = a.q_row(s);
        (0..q.len()).max_by(|&i, &j| q[i].total_cmp(&q[j])).unwrap()
    };
    let runs = 20_000u32;
    let mut instance = 0u32;
    for s0 in 0..space.states {
        for a0 in 0..model.actions {
            let (mut sum, mut sum_sq) = (0.0, 0.0);
            for _ in 0..runs {
                instance += 1;
                let (mut s, mut act, mut disc, mut total) = (s0, a0, 1.0, 0.0);
                for epoch in 0.. {
                    let h = space.decider(s);
                    let w = model.action_options[h][act];
                    let opt = &model.options[w];
                    let e = opt.executor;
                    let mut stream = Stream::new(7, instance, epoch, TAG_EPOCH);
                    let run = tables.rollout(
                        w,
                        space.artifact(s),
                        space.private(s, e),
                        model.gamma,
                        &mut stream,
                    );
                    total += disc * run.ret;
                    disc *= run.discount;
                    if opt.terminal || disc < 1e-10 {
                        break;
                    }
                    let m = space.private_states[e];
                    s = space.with_local(s, e, run.artifact * m + run.private);
                    act = greedy(s);
                }
                sum += total;
                sum_sq += total * total;
            }
            let n = f64::from(runs);
            let mean = sum / n;
            let se = ((sum_sq / n - mean * mean) / n).sqrt();
            let want = a.q_row(s0)[a0];
            assert!(
                (mean - want).abs() <= 4.5 * se + 1e-9,
                "Q*({s0},{a0}) = {want}, Monte Carlo {mean} ± {se}"
            );
        }
    }
}
