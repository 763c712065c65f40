//! The WGSL backend: whole IC-Q epochs fused in one compute kernel (`shaders/epoch.wgsl`), many
//! epochs per dispatch, state resident on the device between dispatches.
//!
//! The tables of a batch's plans are packed once into two read-only buffers (`u32` tables and
//! `f32` values) shared by every instance; each chunk carries a group table (one entry per plan
//! slice it holds) and per-instance records instance-minor within a group (field f of the
//! group's instance b at base + f·n + b), so neighbouring invocations read neighbouring words,
//! and parameters in tiles of eight (`device::param_index`), so an invocation's run of its own
//! parameters reads whole tiles whatever its neighbours read. A batch larger than the
//! adapter's storage-binding limit is split into chunks with buffers of their own.
//! Initial states and parameters come from the host (the CPU backend's own initialisation);
//! Q tables are read back at checkpoints only and evaluated by the CPU forward pass.

use std::collections::HashMap;
use std::sync::Mutex;

use super::device::{
    gather_counters, gather_params, gather_q, gather_states, inst_fields, param_words, Chunk,
    DeviceModel,
};
use super::gpu::{AdapterChoice, GpuContext};
use super::sources::epoch_wgsl;
use super::{Backend, Counters, QTables};
use crate::error::{Error, Result};
use crate::learn::plan::BatchPlan;

/// Invocations per workgroup of the epoch kernel.
pub const WORKGROUP: u32 = 64;

/// The WGSL backend on one adapter.
pub struct Wgpu {
    ctx: GpuContext,
    max_chunk: u32,
    pipelines: Mutex<HashMap<(u32, u32), std::sync::Arc<wgpu::ComputePipeline>>>,
}

/// One chunk of a batch on the device: its group table, records and parameters.
struct DeviceChunk {
    chunk: Chunk,
    inst: wgpu::Buffer,
    params: wgpu::Buffer,
    uniform: wgpu::Buffer,
    bind: wgpu::BindGroup,
    _groups: wgpu::Buffer,
}

/// A batch on the device.
pub struct WgpuBatch {
    batch: BatchPlan,
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    chunks: Vec<DeviceChunk>,
    epoch: u32,
    _model: (wgpu::Buffer, wgpu::Buffer),
}

impl Wgpu {
    /// The backend on the best adapter `choice` accepts.
    pub fn new(choice: AdapterChoice) -> Result<Self> {
        Ok(Self {
            ctx: GpuContext::new(choice)?,
            max_chunk: u32::MAX,
            pipelines: Mutex::new(HashMap::new()),
        })
    }

    /// The same backend with at most `instances` instances per chunk (to exercise the
    /// splitting of large batches on small test batches).
    pub fn with_chunk_limit(mut self, instances: u32) -> Self {
        self.max_chunk = instances.max(1);
        self
    }

    /// The same backend keeping each storage binding to at most `bytes` (to exercise the
    /// limits of small adapters on any adapter).
    pub fn with_binding_limit(mut self, bytes: u64) -> Self {
        let limits = &mut self.ctx.limits;
        limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(bytes);
        self
    }

    /// The device context.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    fn pipeline(&self, width: u32, actions: u32) -> Result<std::sync::Arc<wgpu::ComputePipeline>> {
        let key = (width, actions);
        let mut cache = self.pipelines.lock().expect("pipeline cache");
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let source = epoch_wgsl(WORKGROUP, width, actions);
        let module = self.ctx.shader("epoch", &source)?;
        let pipeline = std::sync::Arc::new(self.ctx.pipeline("epoch", &module, "epochs")?);
        cache.insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Instances per chunk under the adapter's limits; an error when even one instance, or
    /// the shared model tables, exceed what one storage binding may hold.
    fn chunk_size(&self, batch: &BatchPlan, packed: &DeviceModel) -> Result<u32> {
        let limit = self
            .ctx
            .limits
            .max_storage_buffer_binding_size
            .min(self.ctx.limits.max_buffer_size);
        let size = |bytes: u64| match bytes {
            b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
            b => format!("{:.1} KiB", b as f64 / 1024.0),
        };
        let too_large = |what: String, bytes: u64| {
            Error::TooLarge(format!(
                "{what} needs {}, more than the {} one storage binding of {} may hold: use a \
                 smaller network or model, or the cpu backend",
                size(bytes),
                size(limit),
                self.ctx.info.name
            ))
        };
        for (name, bytes) in [
            ("words", 4 * packed.words.len() as u64),
            ("values", 4 * packed.values.len() as u64),
        ] {
            if bytes > limit {
                return Err(too_large(format!("the model's table of {name}"), bytes));
            }
        }
        let widest = batch
            .plans
            .iter()
            .map(|p| param_words(p.layout.params, 1).max(inst_fields(p)))
            .max()
            .unwrap_or(1);
        let per_instance = 4 * widest as u64;
        if per_instance > limit {
            return Err(too_large(
                format!("one instance's state ({widest} words)"),
                per_instance,
            ));
        }
        let by_memory = (limit / per_instance.max(1)).max(1);
        let by_dispatch =
            u64::from(self.ctx.limits.max_compute_workgroups_per_dimension) * u64::from(WORKGROUP);
        Ok(by_memory.min(by_dispatch).min(u64::from(self.max_chunk)) as u32)
    }
}

impl Wgpu {
    /// Every instance's parameters as stored, per plan, instance-major.
    pub fn read_params(&self, batch: &WgpuBatch) -> Result<Vec<Vec<f32>>> {
        Ok(gather_params(
            &batch.batch,
            self.read_chunks(batch, |c| &c.params)?,
        ))
    }

    /// One buffer of every chunk (`which` picks it), read back.
    fn read_chunks<'a, T: bytemuck::Pod>(
        &self,
        batch: &'a WgpuBatch,
        which: fn(&DeviceChunk) -> &wgpu::Buffer,
    ) -> Result<Vec<(&'a Chunk, Vec<T>)>> {
        let mut back = Vec::with_capacity(batch.chunks.len());
        for c in &batch.chunks {
            back.push((&c.chunk, self.ctx.read_back(which(c))?));
        }
        Ok(back)
    }
}

impl Backend for Wgpu {
    type Batch = WgpuBatch;

    fn name(&self) -> &'static str {
        "wgpu"
    }

    fn device(&self) -> String {
        format!(
            "{}; storage bindings up to {} MiB",
            self.ctx.describe(),
            self.ctx.limits.max_storage_buffer_binding_size >> 20
        )
    }

    fn upload(&self, batch: &BatchPlan) -> Result<WgpuBatch> {
        let packed = DeviceModel::new(batch);
        let chunk_size = self.chunk_size(batch, &packed)?;
        let shape = packed.kernel_shape();
        let pipeline = self.pipeline(shape.width, shape.actions)?;
        let words = self.ctx.storage("model.words", &packed.words);
        let values = self.ctx.storage("model.values", &packed.values);
        let chunks = Chunk::split(batch, &packed, chunk_size)?
            .into_iter()
            .map(|chunk| {
                let (inst, params) = chunk.initial(batch);
                let inst = self.ctx.storage("instances.records", &inst);
                let params = self.ctx.storage("instances.params", &params);
                let groups = self.ctx.storage("chunk.groups", &chunk.groups);
                let uniform = self.ctx.uniform("epoch.dispatch", &chunk.dispatch(0, 0));
                let bind = self.ctx.bind(
                    "epoch",
                    &pipeline,
                    &[&uniform, &words, &values, &inst, &params, &groups],
                );
                DeviceChunk {
                    chunk,
                    inst,
                    params,
                    uniform,
                    bind,
                    _groups: groups,
                }
            })
            .collect();
        Ok(WgpuBatch {
            batch: batch.clone(),
            pipeline,
            chunks,
            epoch: 0,
            _model: (words, values),
        })
    }

    fn advance(&self, batch: &mut WgpuBatch, epochs: u32) -> Result<()> {
        for n in super::device::launches(epochs) {
            for c in &batch.chunks {
                let d = c.chunk.dispatch(n, batch.epoch);
                self.ctx
                    .queue
                    .write_buffer(&c.uniform, 0, bytemuck::bytes_of(&d));
                self.ctx.dispatch(
                    "epoch",
                    &batch.pipeline,
                    &c.bind,
                    c.chunk.len.div_ceil(WORKGROUP),
                );
            }
            batch.epoch += n;
        }
        Ok(())
    }

    fn read_q(&self, batch: &WgpuBatch) -> Result<Vec<QTables>> {
        Ok(gather_q(
            &batch.batch,
            self.read_chunks(batch, |c| &c.params)?,
        ))
    }

    fn counters(&self, batch: &WgpuBatch) -> Result<Vec<Counters>> {
        Ok(gather_counters(
            &batch.batch,
            self.read_chunks(batch, |c| &c.inst)?,
        ))
    }

    fn states(&self, batch: &WgpuBatch) -> Result<Vec<Vec<u32>>> {
        Ok(gather_states(
            &batch.batch,
            self.read_chunks(batch, |c| &c.inst)?,
        ))
    }

    fn sync(&self) -> Result<()> {
        self.ctx.wait()
    }
}
