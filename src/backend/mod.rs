//! Backends: where a batch of instances lives and how it advances. One trait, implemented
//! once per backend with static dispatch inside; the command line picks one at run time
//! through [`Chosen`].

pub mod cpu;
pub mod cuda;
pub mod cuda_host;
pub mod device;
pub mod gpu;
pub mod sources;
pub mod wgpu;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::lanes::Portable;
use crate::learn::net::{Acts, NetLayout};
use crate::learn::plan::BatchPlan;

/// Host bytes of one instance of `layout` over `agents` agents: its parameters and its
/// record and, for a run that takes `checkpoints` checkpoints (0: a bench), its Q-values over
/// every input (read back at each) and its metrics at every checkpoint (kept to the end).
pub fn instance_bytes(layout: &NetLayout, agents: usize, checkpoints: usize) -> u64 {
    let units = layout.units.len();
    // Parameters in the device backends' whole tiles (at most seven more than the CPU's).
    let words = device::param_words(layout.params, 1) + device::record_fields(units, agents);
    let mut bytes = 4 * words as u64;
    if checkpoints > 0 {
        let inputs: usize = layout.units.iter().map(|u| u.inputs).sum();
        // A metrics record, its update counts and their allocation's bookkeeping.
        let metrics = std::mem::size_of::<crate::learn::metrics::Metrics>() + 4 * units + 16;
        bytes += (4 * inputs * layout.actions + checkpoints * metrics) as u64;
    }
    bytes
}

/// What [`instance_bytes`] counts.
pub fn instance_holds(checkpoints: usize) -> &'static str {
    if checkpoints > 0 {
        "parameters, records, Q tables and metrics"
    } else {
        "parameters and records"
    }
}

/// Refuses a batch whose instances need more host memory than the system has available,
/// before anything is allocated (see [`instance_bytes`]).
pub fn check_host_memory(batch: &BatchPlan, checkpoints: usize) -> Result<()> {
    let bytes = batch.plans.iter().fold(0u64, |sum, plan| {
        let each = instance_bytes(&plan.layout, plan.space.agents, checkpoints);
        sum.saturating_add(u64::from(plan.instances).saturating_mul(each))
    });
    let instances = u64::from(batch.instances());
    let each = bytes / instances.max(1);
    crate::io::check_memory(
        instances,
        each,
        instance_holds(checkpoints),
        "run.instances",
    )
}

/// Every instance's Q-values over every input of every unit, read back at a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct QTables {
    /// A.
    pub actions: usize,
    /// Offset of each unit's table inside one instance's block (in inputs).
    pub unit_offset: Vec<usize>,
    /// Inputs per instance over all units.
    pub inputs: usize,
    /// Values, instance-major: `[instance][unit input][action]`.
    pub values: Vec<f32>,
}

impl QTables {
    /// Every instance's Q-values from its parameters (instance-major, the plan's layout), by
    /// the CPU forward pass: the one way back to the oracle for every backend.
    pub fn from_params(layout: &NetLayout, params: &[f32]) -> Self {
        let a = layout.actions;
        let mut unit_offset = Vec::with_capacity(layout.units.len());
        let mut inputs = 0;
        for u in &layout.units {
            unit_offset.push(inputs);
            inputs += u.inputs;
        }
        let p = layout.params;
        let instances = params.len() / p.max(1);
        let mut values = vec![0.0f32; instances * inputs * a];
        values
            .par_chunks_mut((inputs * a).max(1))
            .enumerate()
            .for_each_init(Acts::default, |acts, (b, out)| {
                let params = &params[b * p..(b + 1) * p];
                for (unit, u) in layout.units.iter().enumerate() {
                    for input in 0..u.inputs {
                        layout.forward(Portable, layout.pass(unit, input), params, acts);
                        let at = (unit_offset[unit] + input) * a;
                        out[at..at + a].copy_from_slice(&acts.q);
                    }
                }
            });
        Self {
            actions: a,
            unit_offset,
            inputs,
            values,
        }
    }

    /// Q(unit, input, ·) of `instance`.
    pub fn row(&self, instance: usize, unit: usize, input: usize) -> &[f32] {
        let at = (instance * self.inputs + self.unit_offset[unit] + input) * self.actions;
        &self.values[at..at + self.actions]
    }
}

/// Per-instance counters, read back at a checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// Epochs run per instance.
    pub epochs: Vec<u32>,
    /// Primitive steps per instance.
    pub steps: Vec<u64>,
    /// Σ |y| per instance.
    pub abs_target: Vec<f64>,
    /// Updates per instance and unit, instance-major.
    pub updates: Vec<u32>,
}

impl Counters {
    /// Appends the counters of further instances.
    pub fn append(&mut self, more: Counters) {
        self.epochs.extend(more.epochs);
        self.steps.extend(more.steps);
        self.abs_target.extend(more.abs_target);
        self.updates.extend(more.updates);
    }
}

/// A place where batches of instances live and learn.
pub trait Backend {
    /// Device-resident instances.
    type Batch;
    /// The backend's name (`cpu`, `wgpu`, `cuda`).
    fn name(&self) -> &'static str;
    /// What the backend runs on, in words.
    fn device(&self) -> String;
    /// Creates a batch of one or more plans: initial states and parameters.
    fn upload(&self, batch: &BatchPlan) -> Result<Self::Batch>;
    /// Runs `epochs` more epochs on every instance.
    fn advance(&self, batch: &mut Self::Batch, epochs: u32) -> Result<()>;
    /// Reads every instance's Q-values back, one table set per plan of the batch.
    fn read_q(&self, batch: &Self::Batch) -> Result<Vec<QTables>>;
    /// Reads every instance's counters back, per plan.
    fn counters(&self, batch: &Self::Batch) -> Result<Vec<Counters>>;
    /// Reads every instance's joint state back (the start of its next epoch), per plan.
    fn states(&self, batch: &Self::Batch) -> Result<Vec<Vec<u32>>>;
    /// Waits until submitted work is done (benches call it before reading the clock).
    fn sync(&self) -> Result<()>;
    /// The peak bandwidth of the device's memory in bytes per second, when the backend can
    /// read it from the device (the denominator of `icq bench`'s roofline fraction).
    fn peak_bandwidth(&self) -> Option<f64> {
        None
    }
}

/// The backend a command runs on, chosen at run time.
pub enum Chosen {
    /// The CPU reference.
    Cpu(cpu::Cpu),
    /// WGSL compute shaders through wgpu.
    Wgpu(Box<wgpu::Wgpu>),
    /// CUDA C kernels through cudarc and NVRTC (cargo feature `cuda`).
    #[cfg(feature = "cuda")]
    Cuda(Box<cuda::Cuda>),
}

impl Chosen {
    /// The backend named `name` (`auto`, `cpu`, `wgpu` or `cuda`), and a sentence on what was
    /// chosen and why. `auto` takes CUDA when a device is present, then a hardware GPU adapter
    /// through wgpu, else the CPU; `wgpu` takes any adapter, software ones (lavapipe) included.
    pub fn pick(name: &str) -> Result<(Self, String)> {
        #[cfg(feature = "cuda")]
        let cuda_first = if name == "auto" {
            cuda::Cuda::new().ok()
        } else {
            None
        };
        #[cfg(feature = "cuda")]
        if let Some(b) = cuda_first {
            let why = format!("cuda on {} (auto: a CUDA device was found)", b.device());
            return Ok((Self::Cuda(Box::new(b)), why));
        }
        match name {
            "cpu" => Ok((Self::Cpu(cpu::Cpu::new()), "cpu (requested)".into())),
            "cuda" => {
                #[cfg(feature = "cuda")]
                {
                    let b = cuda::Cuda::new()?;
                    let why = format!("cuda on {} (requested)", b.device());
                    Ok((Self::Cuda(Box::new(b)), why))
                }
                #[cfg(not(feature = "cuda"))]
                {
                    cuda::Cuda::new().map(|_| unreachable!("the disabled backend never opens"))
                }
            }
            "wgpu" => {
                let b = wgpu::Wgpu::new(gpu::AdapterChoice::Any)?;
                let why = format!("wgpu on {} (requested)", b.device());
                Ok((Self::Wgpu(Box::new(b)), why))
            }
            "auto" => match wgpu::Wgpu::new(gpu::AdapterChoice::Hardware) {
                Ok(b) => {
                    let why = format!(
                        "wgpu on {} (auto: a hardware GPU adapter was found)",
                        b.device()
                    );
                    Ok((Self::Wgpu(Box::new(b)), why))
                }
                Err(e) => Ok((
                    Self::Cpu(cpu::Cpu::new()),
                    format!("cpu ({} threads; auto: {e})", rayon::current_num_threads()),
                )),
            },
            other => Err(Error::invalid(
                "run.backend",
                format!("expected one of [auto, cpu, wgpu, cuda], found \"{other}\""),
            )),
        }
    }
}
