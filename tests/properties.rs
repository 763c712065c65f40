//! Property tests (CPU only): validation catches any broken row, oracle invariants hold on any
//! small synthetic model, and building is deterministic.

use icq::model::synthetic::Synthetic;
use icq::model::Duration;
use icq::oracle::{total_variation, Oracle, OracleOptions};
use proptest::prelude::*;

fn knobs() -> impl Strategy<Value = Synthetic> {
    (
        1usize..=3,
        prop_oneof![Just((4usize, 2usize)), Just((6, 3)), Just((8, 4))],
        1usize..=2,
        0.5f64..0.95,
        prop_oneof![
            (1.0f64..5.0).prop_map(|mean| Duration::Geometric { mean }),
            (1u32..4).prop_map(|steps| Duration::Fixed { steps }),
            (1.0f64..4.0).prop_map(|mean| Duration::Poisson { mean }),
        ],
        (0.2f64..=1.0, 0.0f64..=1.0, 0.0f64..1.0, any::<u64>()),
    )
        .prop_map(
            |(agents, (s, k), m, gamma, duration, (alpha, eta, beta, seed))| Synthetic {
                agents,
                artifact_states: s,
                interface_states: k,
                private_states: m,
                gamma,
                duration,
                laziness: alpha,
                interface_noise: eta,
                private_weight: beta,
                reward_scale: 1.0,
                model_seed: seed,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn oracle_invariants(k in knobs()) {
        let model = k.build().unwrap();
        prop_assert_eq!(&model, &k.build().unwrap());
        let oracle = Oracle::new(&model).unwrap();
        let a = oracle.analyze(&OracleOptions::default()).unwrap();
        let total: f64 = a.mu.iter().sum();
        prop_assert!((total - 1.0).abs() < 1e-12);
        let mut next = vec![0.0; a.states];
        oracle.chain().step(&a.mu, &mut next, 1, &mut Default::default());
        prop_assert!(total_variation(&next, &a.mu) < 1e-10);
        prop_assert!(a.eps_phi >= 0.0 && a.delta_phi >= 0.0 && a.delta_phi <= 1.0);
        prop_assert!(a.mixing.spectral_gap >= 0.0 && a.mixing.spectral_gap <= 1.0 + 1e-12);
        // V* dominates the value of any decentralized policy, e.g. "always action 0".
        let (_, v0) = oracle.policy_value(&vec![0; a.observations], 1e-12).unwrap();
        prop_assert!(v0 <= a.v_star_initial + 1e-8 * a.v_star_initial.abs().max(1.0));
    }

    #[test]
    fn validation_names_a_broken_row(k in knobs(), w in 0usize..3, x in 0usize..4, bump in 1e-6f64..0.5) {
        let mut model = k.build().unwrap();
        let w = w % model.options.len();
        let x = x % model.artifact_states;
        model.options[w].artifact_transition[x][0] += bump;
        let err = model.validate().unwrap_err().to_string();
        let want = format!("model.options[{w}].artifact_transition[{x}]: row sums to");
        prop_assert!(err.starts_with(&want), "{}", err);
    }
}
