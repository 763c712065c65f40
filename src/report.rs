//! What the oracle's answers look like to a person (a table) and to a program (JSON).

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::Model;
use crate::oracle::{Analysis, Mixing};

/// The oracle's JSON document (`icq oracle --json`): joint states in canonical order (h major,
/// then x, then p_0 … p_{N−1}, the last fastest) and every figure of the analysis.
#[derive(Serialize)]
pub struct OracleJson<'a> {
    /// [h, x, p_0, …, p_{N−1}] per joint state.
    pub states: Vec<Vec<usize>>,
    /// Q*(s, ·) per joint state.
    pub q_star: Vec<&'a [f64]>,
    /// μ(s).
    pub mu: &'a [f64],
    /// t_mix(1/4) of the trajectory chain, in epochs (`null`: never mixes).
    pub t_mix: Option<u64>,
    /// 1 − |λ₂| of the trajectory chain.
    pub spectral_gap: f64,
    /// How far |λ₂|'s estimate still moved when the Arnoldi iteration stopped at its cap
    /// (`null`: settled, or exact).
    pub spectral_gap_unsettled: Option<f64>,
    /// The configured sampler's mixing, when it is not `trajectory`.
    pub sampler_mixing: Option<&'a Mixing>,
    /// ε_φ.
    pub eps_phi: f64,
    /// δ_φ.
    pub delta_phi: f64,
    /// Q*_obs(o(s), ·) per joint state.
    pub q_star_obs: Vec<&'a [f64]>,
    /// ‖Q*_obs∘o − Q*‖_μ.
    pub interface_term: f64,
    /// The approximate-information-state bound (ε_φ + δ_φ·span V̂)/(1 − β).
    pub ais_bound: f64,
    /// max |Q*_obs∘o − Q*| over μ's support, which `ais_bound` bounds.
    pub interface_error_sup: f64,
    /// ‖Q*‖_μ.
    pub q_star_norm: f64,
    /// V*(ρ₀).
    pub v_star_initial: f64,
    /// (V*(ρ₀) − V^uniform(ρ₀)) / |V*(ρ₀)|: the policy gap of uniform behavior.
    pub uniform_policy_gap: f64,
    /// The policy gap of the configured fixed handoff order (`[run] pipeline`; `null` without
    /// one).
    pub pipeline_policy_gap: Option<f64>,
    /// β = max E[γ^τ].
    pub beta: f64,
    /// E[γ^τ] per option.
    pub option_discount: &'a [f64],
    /// E\[τ\] per option.
    pub option_mean_steps: &'a [f64],
}

impl<'a> OracleJson<'a> {
    /// The document of an analysis of `model`.
    pub fn new(model: &Model, a: &'a Analysis) -> Self {
        let space = model.space();
        Self {
            states: (0..a.states).map(|s| space.decode(s)).collect(),
            q_star: (0..a.states).map(|s| a.q_row(s)).collect(),
            mu: &a.mu,
            t_mix: a.mixing.t_mix,
            spectral_gap: a.mixing.spectral_gap,
            spectral_gap_unsettled: a.mixing.spectral_gap_unsettled,
            sampler_mixing: a.sampler_mixing.as_ref(),
            eps_phi: a.eps_phi,
            delta_phi: a.delta_phi,
            q_star_obs: (0..a.states).map(|s| a.q_obs_row(s)).collect(),
            interface_term: a.interface_term,
            ais_bound: a.ais_bound(),
            interface_error_sup: a.interface_error_sup(),
            q_star_norm: a.q_star_norm,
            v_star_initial: a.v_star_initial,
            uniform_policy_gap: a.uniform_policy_gap,
            pipeline_policy_gap: a.pipeline_policy_gap,
            beta: a.beta,
            option_discount: &a.option_discount,
            option_mean_steps: &a.option_mean_steps,
        }
    }
}

/// A readable summary of an analysis.
pub fn oracle_table(model: &Model, a: &Analysis, seconds: f64) -> String {
    let mut t = String::new();
    let space = model.space();
    let private: Vec<String> = space.private_states.iter().map(|m| m.to_string()).collect();
    let _ = writeln!(
        t,
        "model      N = {} agents, S = {} artifact states, M = [{}], A = {} actions, W = {} options, γ = {}",
        model.num_agents(),
        model.artifact_states,
        private.join(", "),
        model.actions,
        model.options.len(),
        model.gamma
    );
    let _ = writeln!(
        t,
        "space      {} joint states ({} in the support of μ), {} observations",
        a.states, a.support, a.observations
    );
    let rows: Vec<(&str, String)> = vec![
        ("V*(ρ₀)", format!("{:.6}", a.v_star_initial)),
        (
            "uniform gap",
            format!("{:.4}  ((V* − V^uniform)/|V*| at ρ₀)", a.uniform_policy_gap),
        ),
        ("‖Q*‖_μ", format!("{:.6}", a.q_star_norm)),
        ("β = max E[γ^τ]", format!("{:.6}", a.beta)),
        (
            "t_mix(1/4)",
            format!("{} (trajectory)", epochs(a.mixing.t_mix)),
        ),
        ("spectral gap", gap(&a.mixing)),
        ("ε_φ", format!("{:.3e}", a.eps_phi)),
        ("δ_φ", format!("{:.3e}", a.delta_phi)),
        (
            "interface term",
            format!("{:.3e}  (‖Q*_obs∘o − Q*‖_μ)", a.interface_term),
        ),
        (
            "AIS bound",
            format!(
                "{:.3e}  ((ε_φ + δ_φ·span V̂)/(1 − β) ≥ max |Q*_obs∘o − Q*| = {:.3e} ± {:.1e}, value iteration's error)",
                a.ais_bound(),
                a.interface_error_sup(),
                a.value_error
            ),
        ),
        ("VI sweeps", format!("{}", a.sweeps)),
        ("wall time", format!("{seconds:.3} s")),
    ];
    let mut rows = rows;
    if let (Some(gap), Some(order)) = (a.pipeline_policy_gap, &a.pipeline) {
        rows.insert(
            2,
            (
                "pipeline gap",
                format!("{gap:.4}  (agent i always takes action {order:?}[i])"),
            ),
        );
    }
    if let Some(m) = &a.sampler_mixing {
        // After the trajectory chain's t_mix and spectral gap, which it stands beside.
        let at = rows
            .iter()
            .position(|(k, _)| *k == "spectral gap")
            .expect("a row");
        rows.insert(
            at + 1,
            (
                "sampler mixing",
                format!("t_mix {}, gap {} ({})", epochs(m.t_mix), gap(m), m.sampler),
            ),
        );
    }
    let _ = writeln!(t);
    for (k, v) in rows {
        let _ = writeln!(t, "  {k:<16} {v}");
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "  option  executor  duration      E[τ]     E[γ^τ]  terminal"
    );
    for (w, o) in model.options.iter().enumerate() {
        let _ = writeln!(
            t,
            "  {w:<6}  {:<8}  {:<12}  {:<7.3}  {:<6.4}  {}",
            o.executor,
            o.duration.label(),
            a.option_mean_steps[w],
            a.option_discount[w],
            o.terminal
        );
    }
    t
}

fn epochs(t: Option<u64>) -> String {
    t.map_or("never (|λ₂| = 1)".into(), |t| format!("{t} epochs"))
}

/// A spectral gap as the table prints it: six decimals, and why it is approximate when the
/// Arnoldi iteration stopped at its cap before settling.
fn gap(m: &Mixing) -> String {
    match m.gap_caveat() {
        None => format!("{:.6}", m.spectral_gap),
        Some(caveat) => format!("{:.6}  ({caveat})", m.spectral_gap),
    }
}
