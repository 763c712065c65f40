//! `icq bench`: handoff updates per second of one backend on one config, timed around
//! `advance` with `sync` before the clock is read (no oracle, no metrics in the timed part).

use std::time::Instant;

use serde::Serialize;

use crate::backend::{Backend, Chosen};
use crate::config::Input;
use crate::error::Result;
use crate::learn::plan::Plan;
use crate::learn::Sampler;
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
    /// f32 parameters per instance.
    pub params_per_instance: usize,
}

/// Times `epochs` epochs of `instances` instances (after one untimed warm-up epoch).
pub fn bench(input: &Input, backend: &str, instances: u32, epochs: u32) -> Result<BenchResult> {
    let cfg = &input.config;
    let mu = match cfg.learner.sampler {
        Sampler::Reset { .. } => {
            let oracle = Oracle::new(&input.model)?;
            Some(oracle.chain().stationary(1_000_000)?.0)
        }
        _ => None,
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
        Chosen::Cpu(b) => time(&b, &plan, epochs),
        Chosen::Wgpu(b) => time(&*b, &plan, epochs),
    }
}

fn time<B: Backend>(backend: &B, plan: &Plan, epochs: u32) -> Result<BenchResult> {
    let mut batch = backend.upload(plan)?;
    backend.advance(&mut batch, 1)?;
    backend.sync()?;
    let before: u64 = backend.counters(&batch)?.steps.iter().sum();
    let start = Instant::now();
    backend.advance(&mut batch, epochs)?;
    backend.sync()?;
    let seconds = start.elapsed().as_secs_f64();
    let after: u64 = backend.counters(&batch)?.steps.iter().sum();
    let updates = f64::from(plan.instances) * f64::from(epochs);
    Ok(BenchResult {
        backend: backend.name().into(),
        device: backend.device(),
        instances: plan.instances,
        epochs,
        seconds,
        handoff_updates_per_s: updates / seconds,
        primitive_steps_per_s: (after - before) as f64 / seconds,
        params_per_instance: plan.layout.params,
    })
}
