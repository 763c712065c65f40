//! `icq bench`: handoff updates per second of one backend on one config, timed around
//! `advance` with `sync` before the clock is read (no oracle, no metrics in the timed part).

use std::time::Instant;

use serde::Serialize;

use crate::backend::{Backend, Chosen};
use crate::config::Input;
use crate::error::{Error, Result};
use crate::learn::plan::{BatchPlan, Plan};
use crate::learn::Weights;
use crate::oracle::Oracle;

/// One benchmark measurement.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Backend name.
    pub backend: String,
    /// What it ran on.
    pub device: String,
    /// Instances B.
    pub instances: u32,
    /// Epochs timed.
    pub epochs: u32,
    /// Seconds of the timed epochs.
    pub seconds: f64,
    /// B · epochs / seconds.
    pub handoff_updates_per_s: f64,
    /// Primitive option steps per second.
    pub primitive_steps_per_s: f64,
    /// Parameters per instance.
    pub params_per_instance: usize,
    /// Bytes of per-instance state one update reads and writes (modeled: the parameters the
    /// two forward passes and the SGD step touch, and the instance record; the shared model
    /// tables, which caches serve, are not counted).
    pub bytes_per_update: u64,
    /// The traffic the model implies: `bytes_per_update` × handoff updates/s, in GB/s (10⁹
    /// bytes).
    pub modeled_gb_per_s: f64,
    /// The peak bandwidth of the device's memory in GB/s: given with `--peak-bandwidth`, else
    /// read from the device where the backend can (CUDA), else `null`.
    pub peak_gb_per_s: Option<f64>,
    /// `modeled_gb_per_s / peak_gb_per_s`: the fraction of the memory-bandwidth roofline the
    /// modeled traffic reaches (`null` without a peak). On the CPU, where each instance's
    /// parameters stay in cache, it compares with DRAM only what DRAM would have to carry.
    pub roofline_fraction: Option<f64>,
}

/// The modeled per-update traffic of a plan (see [`BenchResult::bytes_per_update`]) when
/// parameters take `param_bytes` bytes each (4, or 2 for f16 storage on the CUDA backend).
pub fn bytes_per_update(plan: &Plan, param_bytes: u64) -> u64 {
    let l = &plan.layout;
    let a = l.actions as u64;
    let active = if l.feat_start.is_empty() || l.feat_idx.is_empty() {
        0
    } else {
        let s = &l.feat_start[0];
        u64::from(s[1] - s[0])
    };
    let touched = match l.network {
        crate::learn::Network::Tabular => a + 1,
        crate::learn::Network::Mlp { width, depth } => {
            let w = width as u64;
            let hidden = (active + 1) * w + (depth as u64 - 1) * (w * w + w);
            hidden + a * w + a
        }
    };
    let record = (5 + plan.units() + 5 * plan.space.agents) as u64;
    // Two forward passes read `touched`; the SGD step reads and writes it once more.
    param_bytes * 4 * touched + 4 * 2 * record
}

/// What `icq bench` runs: the size of the batch, and what it compares the traffic with.
#[derive(Clone, Copy, Debug)]
pub struct BenchRequest<'a> {
    /// Backend name (`auto`, `cpu`, `wgpu`, `cuda`).
    pub backend: &'a str,
    /// Instances B.
    pub instances: u32,
    /// Epochs timed.
    pub epochs: u32,
    /// The device memory's peak bandwidth in GB/s, overriding what the device reports.
    pub peak_gb_per_s: Option<f64>,
}

/// Times `epochs` epochs of `instances` instances (after one untimed warm-up epoch).
pub fn bench(input: &Input, request: BenchRequest<'_>) -> Result<BenchResult> {
    let BenchRequest {
        backend,
        instances,
        epochs,
        peak_gb_per_s,
    } = request;
    for (flag, n) in [("--instances", instances), ("--epochs", epochs)] {
        if n == 0 {
            return Err(Error::invalid(flag, "expected at least 1, found 0"));
        }
    }
    if let Some(p) = peak_gb_per_s {
        if !(p.is_finite() && p > 0.0) {
            return Err(Error::invalid(
                "--peak-bandwidth",
                format!("expected GB/s > 0, found {p}"),
            ));
        }
    }
    let cfg = &input.config;
    let mu = if cfg.learner.sampler.draws_from_mu() {
        let oracle = Oracle::new(&input.model)?;
        Some(oracle.chain().stationary(1_000_000)?.0)
    } else {
        None
    };
    let plan = Plan::new(
        &input.model,
        &cfg.learner,
        instances,
        cfg.run.seed,
        mu.as_deref(),
    )?;
    let (chosen, _) = Chosen::pick(backend)?;
    match chosen {
        Chosen::Cpu(b) => time(&b, &plan, epochs, peak_gb_per_s),
        Chosen::Wgpu(b) => time(&*b, &plan, epochs, peak_gb_per_s),
        #[cfg(feature = "cuda")]
        Chosen::Cuda(b) => time(&*b, &plan, epochs, peak_gb_per_s),
    }
}

fn time<B: Backend>(
    backend: &B,
    plan: &Plan,
    epochs: u32,
    peak_gb_per_s: Option<f64>,
) -> Result<BenchResult> {
    let batch = BatchPlan::from(plan.clone());
    crate::backend::check_host_memory(&batch, 0)?;
    let mut batch = backend.upload(&batch)?;
    backend.advance(&mut batch, 1)?;
    backend.sync()?;
    let steps =
        |batch: &B::Batch| -> Result<u64> { Ok(backend.counters(batch)?[0].steps.iter().sum()) };
    let before = steps(&batch)?;
    let start = Instant::now();
    backend.advance(&mut batch, epochs)?;
    backend.sync()?;
    let seconds = start.elapsed().as_secs_f64();
    let after = steps(&batch)?;
    let updates = f64::from(plan.instances) * f64::from(epochs);
    let bytes = bytes_per_update(
        plan,
        if backend.name() == "cuda" && plan.learner.weights == Weights::F16 {
            2
        } else {
            4
        },
    );
    let modeled_gb_per_s = bytes as f64 * updates / seconds / 1e9;
    let peak_gb_per_s = peak_gb_per_s.or_else(|| backend.peak_bandwidth().map(|b| b / 1e9));
    Ok(BenchResult {
        backend: backend.name().into(),
        device: backend.device(),
        instances: plan.instances,
        epochs,
        seconds,
        handoff_updates_per_s: updates / seconds,
        primitive_steps_per_s: (after - before) as f64 / seconds,
        params_per_instance: plan.layout.params,
        bytes_per_update: bytes,
        modeled_gb_per_s,
        peak_gb_per_s,
        roofline_fraction: peak_gb_per_s.map(|p| modeled_gb_per_s / p),
    })
}
