//! The WGSL backend: whole IC-Q epochs fused in one compute kernel (`shaders/epoch.wgsl`), many
//! epochs per dispatch, state resident on the device between dispatches.
//!
//! The model is packed once into two read-only buffers (`u32` tables and `f32` values) shared
//! by every instance; per-instance records and parameters are instance-minor (field f of
//! instance b at f·B + b), so neighbouring invocations read neighbouring words. A batch larger
//! than the adapter's storage-binding limit is split into chunks with buffers of their own.
//! Initial states and parameters come from the host (the CPU backend's own initialisation);
//! Q tables are read back at checkpoints only and evaluated by the CPU forward pass.

use std::collections::HashMap;
use std::sync::Mutex;

use super::cuda_host::counters_of;
use super::device::{
    initial_instances, inst_fields, params_instance_major, DeviceModel, EpochParams,
};
use super::gpu::{AdapterChoice, GpuContext};
use super::sources::epoch_wgsl;
use super::{Backend, Counters, QTables};
use crate::error::Result;
use crate::learn::plan::Plan;

/// Invocations per workgroup of the epoch kernel.
pub const WORKGROUP: u32 = 64;
/// Epochs one dispatch runs (dispatches are queued back to back).
const EPOCHS_PER_DISPATCH: u32 = 64;

/// The WGSL backend on one adapter.
pub struct Wgpu {
    ctx: GpuContext,
    max_chunk: u32,
    pipelines: Mutex<HashMap<(u32, u32), std::sync::Arc<wgpu::ComputePipeline>>>,
}

/// One chunk of a batch: its instances' records and parameters.
struct Chunk {
    start: u32,
    len: u32,
    inst: wgpu::Buffer,
    params: wgpu::Buffer,
    uniform: wgpu::Buffer,
    bind: wgpu::BindGroup,
}

/// A batch on the device.
pub struct WgpuBatch {
    plan: Plan,
    base: EpochParams,
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    chunks: Vec<Chunk>,
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

    /// Instances per chunk under the adapter's limits.
    fn chunk_size(&self, plan: &Plan) -> u32 {
        let limit = self
            .ctx
            .limits
            .max_storage_buffer_binding_size
            .min(self.ctx.limits.max_buffer_size);
        let per_instance = 4 * (plan.layout.params.max(inst_fields(plan))) as u64;
        let by_memory = (limit / per_instance.max(1)).max(1);
        let by_dispatch =
            u64::from(self.ctx.limits.max_compute_workgroups_per_dimension) * u64::from(WORKGROUP);
        by_memory.min(by_dispatch).min(u64::from(self.max_chunk)) as u32
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

    fn upload(&self, plan: &Plan) -> Result<WgpuBatch> {
        let packed = DeviceModel::new(plan);
        let pipeline = self.pipeline(packed.params.width, packed.params.actions)?;
        let words = self.ctx.storage("model.words", &packed.words);
        let values = self.ctx.storage("model.values", &packed.values);
        let per_chunk = self.chunk_size(plan);
        let mut chunks = Vec::new();
        let mut start = 0u32;
        while start < plan.instances {
            let len = per_chunk.min(plan.instances - start);
            let (inst, params) = initial_instances(plan, start, len);
            let inst = self.ctx.storage("instances.records", &inst);
            let params = self.ctx.storage("instances.params", &params);
            let uniform = self.ctx.uniform("epoch.params", &packed.params);
            let bind = self.ctx.bind(
                "epoch",
                &pipeline,
                &[&uniform, &words, &values, &inst, &params],
            );
            chunks.push(Chunk {
                start,
                len,
                inst,
                params,
                uniform,
                bind,
            });
            start += len;
        }
        Ok(WgpuBatch {
            plan: plan.clone(),
            base: packed.params,
            pipeline,
            chunks,
            epoch: 0,
            _model: (words, values),
        })
    }

    fn advance(&self, batch: &mut WgpuBatch, epochs: u32) -> Result<()> {
        let mut left = epochs;
        while left > 0 {
            let n = left.min(EPOCHS_PER_DISPATCH);
            for c in &batch.chunks {
                let params = EpochParams {
                    instances: c.len,
                    epochs: n,
                    epoch0: batch.epoch,
                    instance0: c.start,
                    ..batch.base
                };
                self.ctx
                    .queue
                    .write_buffer(&c.uniform, 0, bytemuck::bytes_of(&params));
                self.ctx
                    .dispatch("epoch", &batch.pipeline, &c.bind, c.len.div_ceil(WORKGROUP));
            }
            batch.epoch += n;
            left -= n;
        }
        Ok(())
    }

    fn read_q(&self, batch: &WgpuBatch) -> Result<QTables> {
        let p = batch.plan.layout.params;
        let mut all = Vec::with_capacity(p * batch.plan.instances as usize);
        for c in &batch.chunks {
            let minor: Vec<f32> = self.ctx.read_back(&c.params)?;
            all.extend(params_instance_major(&minor, p, c.len as usize));
        }
        Ok(QTables::from_params(&batch.plan.layout, &all))
    }

    fn counters(&self, batch: &WgpuBatch) -> Result<Counters> {
        let mut out = Counters::default();
        for c in &batch.chunks {
            let words: Vec<u32> = self.ctx.read_back(&c.inst)?;
            let part = counters_of(batch.plan.units(), c.len as usize, &words);
            out.epochs.extend(part.epochs);
            out.steps.extend(part.steps);
            out.abs_target.extend(part.abs_target);
            out.updates.extend(part.updates);
        }
        Ok(out)
    }

    fn states(&self, batch: &WgpuBatch) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(batch.plan.instances as usize);
        for c in &batch.chunks {
            let words: Vec<u32> = self.ctx.read_back(&c.inst)?;
            out.extend_from_slice(&words[..c.len as usize]);
        }
        Ok(out)
    }

    fn sync(&self) -> Result<()> {
        self.ctx.wait()
    }
}
