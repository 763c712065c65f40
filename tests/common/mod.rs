//! Small hand-made models shared by the integration tests.
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
