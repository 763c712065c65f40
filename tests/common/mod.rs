//! Small hand-made models, and f16 rounding cases, shared by the integration tests.
#![allow(dead_code)]

use icq::model::{Agent, Duration, Initial, Model, OptionSpec};

/// An option of executor `e` over S artifact states and M_e private states.
pub fn option(
    executor: usize,
    duration: Duration,
    artifact: Vec<Vec<f64>>,
    private: Vec<Vec<f64>>,
    reward: Vec<Vec<f64>>,
    terminal: bool,
) -> OptionSpec {
    OptionSpec {
        executor,
        duration,
        artifact_transition: artifact,
        private_transition: private,
        reward,
        terminal,
    }
}

/// One agent, S = 2, one option that swaps the artifact each step, reward 1 in state 0.
pub fn swap_model(gamma: f64, duration: Duration, terminal: bool) -> Model {
    Model {
        gamma,
        agents: vec![Agent {
            private_states: 1,
            interface: vec![0, 1],
        }],
        artifact_states: 2,
        actions: 1,
        options: vec![option(
            0,
            duration,
            vec![vec![0.0, 1.0], vec![1.0, 0.0]],
            vec![vec![1.0]],
            vec![vec![1.0], vec![0.0]],
            terminal,
        )],
        action_options: vec![vec![0]],
        initial: Initial {
            agent: 0,
            artifact: vec![1.0, 0.0],
            private: vec![vec![1.0]],
        },
    }
}

/// Two agents, S = 1; agent 0 has one private state, agent 1 two. Agent 0: action 0 hands to
/// agent 1 (reward 1 if p_1 = 0, then p_1 flips), action 1 keeps control (reward 0.5).
/// Agent 1: action 0 hands back (reward 0), action 1 keeps control (reward 0.2). Fixed
/// durations of one step, γ = 0.9.
pub fn two_agent_model() -> Model {
    let one = || vec![vec![1.0]];
    let d = Duration::Fixed { steps: 1 };
    Model {
        gamma: 0.9,
        agents: vec![
            Agent {
                private_states: 1,
                interface: vec![0],
            },
            Agent {
                private_states: 2,
                interface: vec![0],
            },
        ],
        artifact_states: 1,
        actions: 2,
        options: vec![
            option(
                1,
                d,
                one(),
                vec![vec![0.0, 1.0], vec![1.0, 0.0]],
                vec![vec![1.0, 0.0]],
                false,
            ),
            option(0, d, one(), one(), vec![vec![0.5]], false),
            option(0, d, one(), one(), vec![vec![0.0]], false),
            option(
                1,
                d,
                one(),
                vec![vec![1.0, 0.0], vec![0.0, 1.0]],
                vec![vec![0.2, 0.2]],
                false,
            ),
        ],
        action_options: vec![vec![0, 1], vec![2, 3]],
        initial: Initial {
            agent: 0,
            artifact: vec![1.0],
            private: vec![vec![1.0], vec![0.5, 0.5]],
        },
    }
}

/// `|x − y| ≤ max(rel·|y|, abs)`, with a message naming what differs.
pub fn assert_close(what: &str, x: f64, y: f64, rel: f64, abs: f64) {
    let tol = (rel * y.abs()).max(abs);
    assert!(
        (x - y).abs() <= tol,
        "{what}: got {x}, expected {y} (|diff| = {:e} > {tol:e})",
        (x - y).abs()
    );
}

/// f32 values that exercise rounding to f16: every f16 and its f32 neighbours, the ties halfway
/// between neighbouring f16s and either side of them, zeros, infinities, the largest finite f16
/// and the overflow boundary, and a million values spread over every exponent (xorshift bits).
/// NaNs are left out.
pub fn f16_rounding_cases() -> Vec<f32> {
    let mut values = vec![
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        65504.0,
        65520.0,
        1e-8,
    ];
    for bits in 0..=u16::MAX {
        let h = half::f16::from_bits(bits);
        if h.is_nan() {
            continue;
        }
        let x = h.to_f32();
        values.extend([
            x,
            f32::from_bits(x.to_bits() + 1),
            f32::from_bits(x.to_bits().wrapping_sub(1)),
        ]);
        let up = half::f16::from_bits(bits.wrapping_add(1)).to_f32();
        if up.is_finite() && x.is_finite() && up.abs() > x.abs() {
            let mid = x + (up - x) / 2.0;
            values.extend([
                mid,
                f32::from_bits(mid.to_bits() + 1),
                f32::from_bits(mid.to_bits() - 1),
            ]);
        }
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..1_000_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let x = f32::from_bits(state as u32);
        if !x.is_nan() {
            values.push(x);
        }
    }
    values.retain(|x| !x.is_nan());
    values
}
