//! Per-option exact quantities over the executor-local space c = (x, p_e): the expected
//! discounted return R̄, the discounted kernel G = E[γ^τ T^τ], the undiscounted epoch kernel
//! K̄ = E[T^τ], E[γ^τ] and E\[τ\], for every duration law.
//!
//! T = P ⊗ Π is the step matrix. Geometric durations (q = 1/mean) are closed forms:
//! R̄ = (I − γ(1−q)T)⁻¹ r and G = qγ T (I − γ(1−q)T)⁻¹. Fixed and Poisson durations are
//! summed as series (Poisson truncated where its tail is below 1e-16).

use super::linalg::Mat;
use super::support::{epoch_reach, BitMatrix};
use crate::error::{Error, Result};
use crate::model::{Duration, Model, OptionSpec};

/// Poisson tail below which the oracle's duration series stops.
const ORACLE_POISSON_TAIL: f64 = 1e-16;

/// The exact epoch quantities of one option.
#[derive(Clone, Debug)]
pub struct OptionKernel {
    /// The executor e.
    pub executor: usize,
    /// Whether the option is terminal.
    pub terminal: bool,
    /// C = S · M_e, the size of the local space.
    pub size: usize,
    /// R̄(c), length C.
    pub rbar: Vec<f64>,
    /// G(c, c') = E[γ^τ 1{(x_τ, p_τ) = c'}], C×C.
    pub g: Mat,
    /// K̄(c, c') = P(x_τ, p_τ = c'), C×C.
    pub kbar: Mat,
    /// The support of K̄: which local states the option can end in from each one.
    pub reach: BitMatrix,
    /// E[γ^τ].
    pub discount: f64,
    /// E\[τ\].
    pub mean_steps: f64,
}

impl OptionKernel {
    /// The kernel of option `opt` of `model`.
    pub fn new(model: &Model, index: usize, opt: &OptionSpec) -> Result<Self> {
        let e = opt.executor;
        let m = model.agents[e].private_states;
        let size = model.artifact_states * m;
        let to_mat = |rows: &[Vec<f64>]| Mat {
            rows: rows.len(),
            cols: rows.len(),
            data: rows.iter().flatten().copied().collect(),
        };
        let t = to_mat(&opt.artifact_transition).kron(&to_mat(&opt.private_transition));
        let r: Vec<f64> = opt.reward.iter().flatten().copied().collect();
        let gamma = model.gamma;
        let singular = || {
            Error::NotConverged(format!(
                "model.options[{index}]: the epoch system of this option is singular"
            ))
        };
        let (rbar, g, kbar, discount) = match opt.duration {
            Duration::Geometric { mean } => {
                let q = 1.0 / mean;
                let inv = t
                    .identity_minus(gamma * (1.0 - q))
                    .inverse()
                    .ok_or_else(singular)?;
                let rbar = inv.mul_vec(&r);
                let g = t.mul(&inv).scaled(q * gamma);
                let kbar = if q == 1.0 {
                    t.clone()
                } else {
                    let inv1 = t.identity_minus(1.0 - q).inverse().ok_or_else(singular)?;
                    t.mul(&inv1).scaled(q)
                };
                let discount = q * gamma / (1.0 - gamma * (1.0 - q));
                (rbar, g, kbar, discount)
            }
            Duration::Fixed { steps } => {
                let mut rbar = vec![0.0; size];
                let mut v = r.clone();
                let mut disc = 1.0;
                for _ in 0..steps {
                    rbar.iter_mut().zip(&v).for_each(|(a, b)| *a += disc * b);
                    v = t.mul_vec(&v);
                    disc *= gamma;
                }
                let kbar = t.pow(steps);
                let g = kbar.clone().scaled(disc);
                (rbar, g, kbar, disc)
            }
            Duration::Poisson { mean } => {
                let pmf = crate::model::poisson_pmf_with_tail(mean - 1.0, ORACLE_POISSON_TAIL);
                let mut rbar = vec![0.0; size];
                let mut g = Mat::zeros(size, size);
                let mut kbar = Mat::zeros(size, size);
                let mut power = t.clone(); // T^{k+1}
                let mut v = r.clone(); // T^k r
                let mut survive = 1.0; // P(τ > k)
                let mut disc = 1.0; // γ^k
                let mut discount = 0.0;
                for &pk in &pmf {
                    rbar.iter_mut()
                        .zip(&v)
                        .for_each(|(a, b)| *a += disc * survive * b);
                    g.add_scaled(pk * disc * gamma, &power);
                    kbar.add_scaled(pk, &power);
                    discount += pk * disc * gamma;
                    survive -= pk;
                    disc *= gamma;
                    v = t.mul_vec(&v);
                    power = power.mul(&t);
                }
                (rbar, g, kbar, discount)
            }
        };
        Ok(Self {
            executor: e,
            terminal: opt.terminal,
            size,
            rbar,
            g,
            kbar,
            reach: epoch_reach(opt),
            discount,
            mean_steps: opt.duration.mean(),
        })
    }

    /// The kernels of every option of `model`.
    pub fn all(model: &Model) -> Result<Vec<Self>> {
        model
            .options
            .iter()
            .enumerate()
            .map(|(w, o)| Self::new(model, w, o))
            .collect()
    }
}

/// β = max E[γ^τ] over the non-terminal options: the sup-norm contraction factor of every
/// Bellman operator over these kernels (0 when every option is terminal).
pub fn contraction(kernels: &[OptionKernel]) -> f64 {
    kernels
        .iter()
        .filter(|k| !k.terminal)
        .map(|k| k.discount)
        .fold(0.0, f64::max)
}
