//! The oracle against models solved by hand.

mod common;

use common::{assert_close, swap_model, two_agent_model};
use icq::model::Duration;
use icq::oracle::{Oracle, OracleOptions};

const DURATIONS: [Duration; 3] = [
    Duration::Geometric { mean: 3.0 },
    Duration::Fixed { steps: 3 },
    Duration::Poisson { mean: 2.5 },
];

fn analyze(m: &icq::model::Model) -> icq::oracle::Analysis {
    m.validate().expect("valid model");
    Oracle::new(m)
        .and_then(|o| o.analyze(&OracleOptions::default()))
        .expect("analysis")
}

/// One agent repeating one option forever collects Σ_t γ^t r(x_t) whatever the option
/// durations: Q*(0) = 1/(1−γ²), Q*(1) = γ/(1−γ²) for the swap chain with r = (1, 0).
#[test]
fn single_option_value_does_not_depend_on_duration_law() {
    let g: f64 = 0.8;
    for d in DURATIONS {
        let a = analyze(&swap_model(g, d, false));
        assert_close(
            &format!("{d:?} Q*(0)"),
            a.q_star[0],
            1.0 / (1.0 - g * g),
            1e-9,
            0.0,
        );
        assert_close(
            &format!("{d:?} Q*(1)"),
            a.q_star[1],
            g / (1.0 - g * g),
            1e-9,
            0.0,
        );
    }
}

/// E[γ^τ] in closed form: geometric qγ/(1 − γ(1−q)), fixed γ^d, Poisson γ·exp(λ(γ−1)).
#[test]
fn expected_discount_per_duration_law() {
    let g: f64 = 0.8;
    let want = [
        (1.0 / 3.0) * g / (1.0 - g * (2.0 / 3.0)),
        g.powi(3),
        g * (1.5 * (g - 1.0)).exp(),
    ];
    for (d, w) in DURATIONS.into_iter().zip(want) {
        let a = analyze(&swap_model(g, d, false));
        assert_close(
            &format!("{d:?} E[γ^τ]"),
            a.option_discount[0],
            w,
            1e-12,
            0.0,
        );
    }
}

/// A terminal option bootstraps nothing: Q* = R̄, the expected return of one option run.
#[test]
fn terminal_option_value_is_its_expected_return() {
    let g: f64 = 0.8;
    // Fixed 3 steps from x = 0 visit 0, 1, 0: 1 + γ². From x = 1: γ.
    let a = analyze(&swap_model(g, Duration::Fixed { steps: 3 }, true));
    assert_close("fixed Q*(0)", a.q_star[0], 1.0 + g * g, 1e-12, 0.0);
    assert_close("fixed Q*(1)", a.q_star[1], g, 1e-12, 0.0);
    // Geometric with q = 1/3: R̄ = (I − cT)⁻¹ r with c = γ(1−q) and T the swap, whose inverse
    // is [[1, c], [c, 1]] / (1 − c²).
    let c = g * (2.0 / 3.0);
    let a = analyze(&swap_model(g, Duration::Geometric { mean: 3.0 }, true));
    assert_close(
        "geometric Q*(0)",
        a.q_star[0],
        1.0 / (1.0 - c * c),
        1e-12,
        0.0,
    );
    assert_close(
        "geometric Q*(1)",
        a.q_star[1],
        c / (1.0 - c * c),
        1e-12,
        0.0,
    );
    // Poisson: τ = 1 + K, K ~ Poisson(λ = 1.5); R̄(0) = Σ_{t even} γ^t P(K ≥ t),
    // R̄(1) = Σ_{t odd} γ^t P(K ≥ t).
    let lambda: f64 = 1.5;
    let mut pk = (-lambda).exp();
    let mut tail = 1.0; // P(K ≥ t)
    let (mut r0, mut r1) = (0.0, 0.0);
    for t in 0..200 {
        let term = g.powi(t) * tail;
        if t % 2 == 0 {
            r0 += term;
        } else {
            r1 += term;
        }
        tail -= pk;
        pk *= lambda / f64::from(t + 1);
    }
    let a = analyze(&swap_model(g, Duration::Poisson { mean: 2.5 }, true));
    assert_close("poisson Q*(0)", a.q_star[0], r0, 1e-12, 0.0);
    assert_close("poisson Q*(1)", a.q_star[1], r1, 1e-12, 0.0);
}

/// The two-agent model of `common`, solved by hand. The optimal policy: agent 0 hands over
/// when p_1 = 0 and keeps control when p_1 = 1; agent 1 always hands back. Then
/// V(0,1) = 0.5/(1−γ) = 5, V(1,1) = γ·5 = 4.5, V(0,0) = 1 + γ·4.5 = 5.05,
/// V(1,0) = γ·5.05 = 4.545, and every Q follows in one step.
#[test]
fn two_agent_model_with_private_states() {
    let a = analyze(&two_agent_model());
    // Joint index = h·2 + p_1 (S = 1, M_0 = 1).
    let want = [
        [5.05, 0.5 + 0.9 * 5.05],
        [0.9 * 4.545, 5.0],
        [0.9 * 5.05, 0.2 + 0.9 * 4.545],
        [0.9 * 5.0, 0.2 + 0.9 * 4.5],
    ];
    for (s, row) in want.iter().enumerate() {
        for (act, &w) in row.iter().enumerate() {
            assert_close(
                &format!("Q*(s={s}, a={act})"),
                a.q_row(s)[act],
                w,
                1e-9,
                0.0,
            );
        }
    }
    // V*(ρ₀) with ρ₀ = agent 0, p_1 uniform.
    assert_close("V*(ρ₀)", a.v_star_initial, 0.5 * (5.05 + 5.0), 1e-9, 0.0);
}

/// V^π of "always action 0": V(0,p) = r(p) + γ V(1,1−p), V(1,p) = γ V(0,p), so
/// V(0,0) = 1/(1 − γ⁴) and V(0,1) = γ² V(0,0).
#[test]
fn policy_value_of_a_fixed_policy() {
    let m = two_agent_model();
    let oracle = Oracle::new(&m).expect("oracle");
    // Observations: agent 0 has one (K = 1, M = 1), agent 1 has two (K = 1, M = 2).
    let (v, initial) = oracle
        .policy_value(&[0, 0, 0], 1e-12)
        .expect("policy value");
    let v00 = 1.0 / (1.0 - 0.9f64.powi(4));
    assert_close("V^π(0,0)", v[0], v00, 1e-10, 0.0);
    assert_close("V^π(0,1)", v[1], 0.81 * v00, 1e-10, 0.0);
    assert_close("V^π(1,0)", v[2], 0.9 * v00, 1e-10, 0.0);
    assert_close("V^π(ρ₀)", initial, 0.5 * (1.0 + 0.81) * v00, 1e-10, 0.0);
    // The optimal decentralized policy cannot see p_1 at agent 0's observation, so its gap is
    // positive; the bad policy's gap is (V* − V^π)/|V*|.
    let analysis = oracle.analyze(&OracleOptions::default()).expect("analysis");
    let gap = oracle
        .policy_gap(&analysis, &[0, 0, 0], 1e-12)
        .expect("gap");
    let want = (analysis.v_star_initial - initial) / analysis.v_star_initial;
    assert_close("policy gap", gap, want, 1e-12, 0.0);
    assert!(
        oracle.policy_value(&[0, 0], 1e-12).is_err(),
        "short policy accepted"
    );
    assert!(
        oracle.policy_value(&[0, 0, 2], 1e-12).is_err(),
        "bad action accepted"
    );
}

/// A fixed handoff order (`[run] pipeline`): "agent 0 keeps control" earns 0.5 per step
/// forever, V = 0.5/(1 − γ) = 5 from either p_1, against V*(ρ₀) = 5.025; "both take action
/// 0" is the fixed policy of the test above.
#[test]
fn pipeline_policy_gap_by_hand() {
    let m = two_agent_model();
    let oracle = Oracle::new(&m).expect("oracle");
    let gap_of = |order: Vec<usize>| {
        let options = OracleOptions {
            pipeline: Some(order),
            ..OracleOptions::default()
        };
        oracle.analyze(&options).map(|a| a.pipeline_policy_gap)
    };
    let v_star = 0.5 * (5.05 + 5.0);
    let keep = gap_of(vec![1, 0]).unwrap().expect("a gap");
    assert_close("keep-control gap", keep, (v_star - 5.0) / v_star, 1e-9, 0.0);
    let v00 = 1.0 / (1.0 - 0.9f64.powi(4));
    let hand_over = gap_of(vec![0, 0]).unwrap().expect("a gap");
    let want = (v_star - 0.5 * (1.0 + 0.81) * v00) / v_star;
    assert_close("hand-over gap", hand_over, want, 1e-9, 0.0);
    // No order, no gap; a wrong order names the field.
    let none = oracle.analyze(&OracleOptions::default()).unwrap();
    assert_eq!(none.pipeline_policy_gap, None);
    let err = gap_of(vec![0]).unwrap_err().to_string();
    assert!(
        err.contains("run.pipeline: expected one action per agent (2)"),
        "{err}"
    );
    let err = gap_of(vec![0, 2]).unwrap_err().to_string();
    assert!(
        err.contains("run.pipeline[1]: expected an action below 2"),
        "{err}"
    );
}

/// The swap chain is periodic under one option of fixed even length: the chain from x = 0
/// stays at 0 — μ is the point mass of the initial law and t_mix is 0.
#[test]
fn stationary_law_follows_the_initial_law() {
    let a = analyze(&swap_model(0.8, Duration::Fixed { steps: 2 }, false));
    assert_eq!(a.mu, vec![1.0, 0.0]);
    assert_eq!(a.mixing.t_mix, Some(0));
    // Odd length: the epoch chain swaps deterministically; μ = (1/2, 1/2) is the lazy limit,
    // the chain is periodic (λ₂ = −1) and never mixes.
    let a = analyze(&swap_model(0.8, Duration::Fixed { steps: 3 }, false));
    assert_close("μ(0)", a.mu[0], 0.5, 1e-12, 0.0);
    assert_close("spectral gap", a.mixing.spectral_gap, 0.0, 0.0, 1e-12);
    assert_eq!(a.mixing.t_mix, None);
    // Geometric of mean 2 from the swap: the epoch kernel is [[1/3, 2/3], [2/3, 1/3]]
    // (odd τ swaps, P(τ odd) = 2/3), so λ₂ = −1/3, the gap is 2/3, and from a point mass
    // TV(t) = ½·(1/3)^t: t_mix(1/4) = 1.
    let a = analyze(&swap_model(0.8, Duration::Geometric { mean: 2.0 }, false));
    assert_close("μ(0)", a.mu[0], 0.5, 1e-12, 0.0);
    assert_close("spectral gap", a.mixing.spectral_gap, 2.0 / 3.0, 1e-9, 0.0);
    assert_eq!(a.mixing.t_mix, Some(1));
}

/// The uniform policy of the two-agent model solves the linear system
/// V(0,p) = ½(r(p) + γV(1,1−p)) + ½(0.5 + γV(0,p)), V(1,p) = ½γV(0,p) + ½(0.2 + γV(1,p)),
/// with r = (1, 0). Summed over p, with S_h = V(h,0) + V(h,1) and γ/2 = 0.45:
/// 0.55·S₀ = 1 + 0.45·S₁ and 0.55·S₁ = 0.2 + 0.45·S₀, so 0.1·S₀ = 0.64, S₀ = 6.4, and
/// V^u(ρ₀) = S₀/2 = 3.2 (ρ₀: agent 0, p uniform). With V*(ρ₀) = 5.025 (see
/// `two_agent_model_with_private_states`) the gap is (5.025 − 3.2)/5.025.
#[test]
fn uniform_policy_gap_solves_its_linear_system() {
    let analysis = analyze(&two_agent_model());
    assert_close("V*(ρ₀)", analysis.v_star_initial, 5.025, 1e-9, 0.0);
    let want = (5.025 - 3.2) / 5.025;
    assert_close("uniform gap", analysis.uniform_policy_gap, want, 1e-9, 0.0);
}

/// One agent, four artifact states seen as two observations ({0, 1} and {2, 3}), one-step
/// options: a uniform jump and the permutation 0 → 0, 1 → 2, 2 → 1, 3 → 3, which splits
/// observation 0 (state 0 stays in it, state 1 leaves it). Both options keep μ uniform.
///
/// As a continuing option the permutation's discounted next-observation law differs from its
/// observation's average by γ·½ in total variation, so δ_φ = γ/2. As a terminal option it
/// bootstraps nothing and adds nothing: every next-observation law the Bellman operators use
/// is the uniform jump's, the same from every state, so δ_φ = 0. Rewards are constant per
/// option, so ε_φ = 0 in both.
#[test]
fn terminal_options_add_nothing_to_delta_phi() {
    use icq::model::{Agent, Initial, Model, OptionSpec};
    let gamma = 0.9;
    let option = |terminal: bool, artifact_transition: Vec<Vec<f64>>, r: f64| OptionSpec {
        executor: 0,
        duration: Duration::Fixed { steps: 1 },
        artifact_transition,
        private_transition: vec![vec![1.0]],
        reward: vec![vec![r]; 4],
        terminal,
    };
    let permutation = [0, 2, 1, 3].map(|to| (0..4).map(|x| f64::from(x == to)).collect());
    let model = |terminal: bool| Model {
        gamma,
        agents: vec![Agent {
            private_states: 1,
            interface: vec![0, 0, 1, 1],
        }],
        artifact_states: 4,
        actions: 2,
        options: vec![
            option(false, vec![vec![0.25; 4]; 4], 1.0),
            option(terminal, permutation.to_vec(), 2.0),
        ],
        action_options: vec![vec![0, 1]],
        initial: Initial {
            agent: 0,
            artifact: vec![0.25; 4],
            private: vec![vec![1.0]],
        },
    };
    let continuing = analyze(&model(false));
    assert_close(
        "continuing δ_φ",
        continuing.delta_phi,
        gamma / 2.0,
        1e-12,
        0.0,
    );
    assert_close("continuing ε_φ", continuing.eps_phi, 0.0, 0.0, 1e-12);
    let terminal = analyze(&model(true));
    assert_close("terminal δ_φ", terminal.delta_phi, 0.0, 0.0, 1e-12);
    assert_close("terminal ε_φ", terminal.eps_phi, 0.0, 0.0, 1e-12);
}

/// A transient initial state that the chain leaves slowly (with probability p = 5·10⁻⁵ per
/// epoch) and never re-enters has μ = 0 exactly, however slowly its mass drains. On the
/// recurrent states {1, 2} the epoch kernel is [[0.3, 0.7], [0.6, 0.4]]: μ = (0, 6/13, 7/13),
/// λ₂ = −0.3 (gap 0.7), and from either recurrent state one epoch brings the distance to μ
/// below 1/4 (|0.3 − 6/13| and |0.6 − 6/13|), so t_mix = 1. The interface merges states 0
/// and 1, which differ in reward; on μ's support it hides nothing: ε_φ = δ_φ = 0.
#[test]
fn slowly_drained_transient_state_is_outside_the_support() {
    let a = analyze(&drained_model(5e-5));
    assert_eq!(a.mu[0], 0.0, "μ = {:?}", a.mu);
    assert_eq!(a.support, 2);
    assert_close("μ(1)", a.mu[1], 6.0 / 13.0, 1e-9, 0.0);
    assert_close("μ(2)", a.mu[2], 7.0 / 13.0, 1e-9, 0.0);
    assert_close("spectral gap", a.mixing.spectral_gap, 0.7, 1e-9, 0.0);
    assert_eq!(a.mixing.t_mix, Some(1));
    assert_close("ε_φ", a.eps_phi, 0.0, 0.0, 1e-12);
    assert_close("δ_φ", a.delta_phi, 0.0, 0.0, 1e-12);
    // Q* and Q*_obs come from value iteration to a relative 1e-10 (|Q*| ≤ 50 here).
    assert_close("interface term", a.interface_term, 0.0, 0.0, 1e-8);
}

/// The same chain drained so slowly (p = 5·10⁻¹⁶) that the first step of the iteration
/// already changes μ by less than its tolerance, with nearly all the mass still on the
/// transient state: μ on the recurrent states is still their stationary law (6/13, 7/13), not
/// the (1/2, 1/2) of the mass that leaked in that one step.
#[test]
fn a_transient_state_drained_below_the_tolerance_leaves_mu_stationary() {
    let a = analyze(&drained_model(5e-16));
    assert_eq!(a.mu[0], 0.0, "μ = {:?}", a.mu);
    assert_close("μ(1)", a.mu[1], 6.0 / 13.0, 1e-9, 0.0);
    assert_close("μ(2)", a.mu[2], 7.0 / 13.0, 1e-9, 0.0);
}

/// A transient initial state 0 left with probability p per epoch, into the recurrent
/// states {1, 2}; the interface merges states 0 and 1.
fn drained_model(p: f64) -> icq::model::Model {
    let rows = vec![
        vec![1.0 - p, p / 2.0, p / 2.0],
        vec![0.0, 0.3, 0.7],
        vec![0.0, 0.6, 0.4],
    ];
    one_step_chain(rows, vec![0, 0, 1], vec![5.0, 0.0, 1.0])
}

/// One agent, one action, one option of one step over three artifact states: the epoch chain
/// is `rows`, started from state 0.
fn one_step_chain(
    rows: Vec<Vec<f64>>,
    interface: Vec<usize>,
    reward: Vec<f64>,
) -> icq::model::Model {
    use icq::model::{Agent, Initial, Model, OptionSpec};
    Model {
        gamma: 0.9,
        agents: vec![Agent {
            private_states: 1,
            interface,
        }],
        artifact_states: 3,
        actions: 1,
        options: vec![OptionSpec {
            executor: 0,
            duration: Duration::Fixed { steps: 1 },
            artifact_transition: rows,
            private_transition: vec![vec![1.0]],
            reward: reward.into_iter().map(|r| vec![r]).collect(),
            terminal: false,
        }],
        action_options: vec![vec![0]],
        initial: Initial {
            agent: 0,
            artifact: vec![1.0, 0.0, 0.0],
            private: vec![vec![1.0]],
        },
    }
}

/// A distance of exactly 1/4 counts as mixed, whatever the rounding of its sum. From state 0
/// one epoch gives (0.35, 0.35, 0.3) against μ = (0.1, 0.6, 0.3) (the other rows are
/// (0.065, 0.565, 0.27)/0.9, which keep μ stationary): TV = (0.25 + 0.25)/2 = 1/4 exactly in
/// decimals, not in binary. From states 1 and 2 the distance is 1/36 after one epoch, and at
/// t = 0 every start is at least 0.4 away, so t_mix(1/4) = 1.
#[test]
fn a_distance_of_exactly_a_quarter_is_mixed() {
    let q: Vec<f64> = [0.065, 0.565, 0.27].iter().map(|v| v / 0.9).collect();
    let rows = vec![vec![0.35, 0.35, 0.3], q.clone(), q];
    let model = one_step_chain(rows, vec![0, 1, 2], vec![1.0, 0.0, 0.5]);
    let a = analyze(&model);
    for (s, want) in [0.1, 0.6, 0.3].into_iter().enumerate() {
        assert_close(&format!("μ({s})"), a.mu[s], want, 1e-12, 0.0);
    }
    assert_eq!(a.mixing.t_mix, Some(1), "μ = {:?}", a.mu);
}
