//! The CUDA kernel's host build: `kernels/epoch.cu` compiled as C++ by `build.rs`, run one
//! instance after another on the CPU. It exists so the CUDA source is tested against the CPU
//! reference on every machine; on a GPU the `cuda` backend runs the same source.

use super::device::{
    f16_bits, from_f16_bits, gather_counters, gather_q, gather_states, launches, Chunk,
    DeviceModel, Dispatch, EpochParams,
};
use super::{Backend, Counters, QTables};
use crate::error::{Error, Result};
use crate::learn::plan::BatchPlan;

extern "C" {
    fn icq_philox_host(ctr: *const u32, key: *const u32, out: *mut u32, n: u32);
    fn icq_epochs_host(
        d: *const Dispatch,
        groups: *const EpochParams,
        mu: *const u32,
        mf: *const f32,
        inst: *mut u32,
        params: *mut f32,
    );
    fn icq_epochs_host_f16(
        d: *const Dispatch,
        groups: *const EpochParams,
        mu: *const u32,
        mf: *const f32,
        inst: *mut u32,
        params: *mut u16,
    );
    fn icq_f16_host(values: *const f32, bits: *mut u16, back: *mut f32, n: u32);
    fn icq_host_limits(width: *mut u32, actions: *mut u32);
}

/// The largest hidden width and action count the host build's per-thread arrays hold (both
/// builds share them).
pub fn host_limits() -> (u32, u32) {
    let (mut width, mut actions) = (0, 0);
    // SAFETY: the function writes one u32 through each pointer.
    unsafe { icq_host_limits(&mut width, &mut actions) };
    (width, actions)
}

/// The host build's f16 conversions of `values`: the bits of each rounded to f16, and those
/// bits read back as f32.
pub fn f16_host(values: &[f32]) -> (Vec<u16>, Vec<f32>) {
    let mut bits = vec![0u16; values.len()];
    let mut back = vec![0f32; values.len()];
    // SAFETY: the three buffers hold `n` elements each, which is all the function touches.
    unsafe {
        icq_f16_host(
            values.as_ptr(),
            bits.as_mut_ptr(),
            back.as_mut_ptr(),
            values.len() as u32,
        );
    }
    (bits, back)
}

/// Philox blocks computed by `kernels/philox.cuh` compiled for the host.
pub fn philox_blocks(counters: &[[u32; 4]], keys: &[[u32; 2]]) -> Vec<[u32; 4]> {
    assert_eq!(counters.len(), keys.len(), "one key per counter");
    let mut out = vec![[0u32; 4]; counters.len()];
    // SAFETY: `counters`, `keys` and `out` hold `n` blocks of 4, 2 and 4 words, which is all
    // the function reads and writes.
    unsafe {
        icq_philox_host(
            counters.as_ptr().cast(),
            keys.as_ptr().cast(),
            out.as_mut_ptr().cast(),
            counters.len() as u32,
        );
    }
    out
}

/// The CUDA kernel source run on the host.
#[derive(Clone, Debug, Default)]
pub struct CudaHost;

/// Parameters as the kernel stores them.
enum HostParams {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

/// A batch of the host build: the same buffers the device would hold, in host memory (the
/// whole batch one chunk).
pub struct CudaHostBatch {
    batch: BatchPlan,
    model: DeviceModel,
    chunk: Chunk,
    inst: Vec<u32>,
    params: HostParams,
    epoch: u32,
}

impl CudaHost {
    /// One call of the host build over `epochs` epochs of every instance.
    fn launch(batch: &mut CudaHostBatch, epochs: u32) {
        let d = batch.chunk.dispatch(epochs, batch.epoch);
        // SAFETY: the pointers address live buffers laid out as kernels/epoch.cu expects: the
        // dispatch, its `groups` group records, the packed model (`words`, `values`) with every
        // offset inside it, and the chunk's records and parameters, where every group's
        // `inst_base`/`param_base` block lies, which the call may write.
        unsafe {
            let (groups, words) = (batch.chunk.groups.as_ptr(), batch.model.words.as_ptr());
            let (values, inst) = (batch.model.values.as_ptr(), batch.inst.as_mut_ptr());
            match &mut batch.params {
                HostParams::F32(p) => {
                    icq_epochs_host(&d, groups, words, values, inst, p.as_mut_ptr());
                }
                HostParams::F16(p) => {
                    icq_epochs_host_f16(&d, groups, words, values, inst, p.as_mut_ptr());
                }
            }
        }
        batch.epoch += epochs;
    }
}

impl Backend for CudaHost {
    type Batch = CudaHostBatch;

    fn name(&self) -> &'static str {
        "cuda-host"
    }

    fn device(&self) -> String {
        "kernels/epoch.cu compiled for the host".into()
    }

    fn upload(&self, batch: &BatchPlan) -> Result<CudaHostBatch> {
        let model = DeviceModel::new(batch);
        let shape = model.uniform_shape()?;
        let (width, actions) = host_limits();
        for (field, what, have, limit) in [
            ("learner.network", "a hidden width", shape.width, width),
            ("model.actions", "an action count", shape.actions, actions),
        ] {
            if have > limit {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{what} of {have} is more than the {limit} the host build of the CUDA kernel holds"
                    ),
                ));
            }
        }
        let chunk = Chunk::new(batch, &model, 0, batch.instances())?;
        let (inst, params) = chunk.initial(batch);
        let params = if shape.f16 {
            HostParams::F16(f16_bits(&params))
        } else {
            HostParams::F32(params)
        };
        Ok(CudaHostBatch {
            batch: batch.clone(),
            model,
            chunk,
            inst,
            params,
            epoch: 0,
        })
    }

    fn advance(&self, batch: &mut CudaHostBatch, epochs: u32) -> Result<()> {
        // In launches of at most EPOCHS_PER_LAUNCH epochs, as on the device.
        for n in launches(epochs) {
            Self::launch(batch, n);
        }
        Ok(())
    }

    fn read_q(&self, batch: &CudaHostBatch) -> Result<Vec<QTables>> {
        Ok(match &batch.params {
            HostParams::F32(p) => gather_q(&batch.batch, [(&batch.chunk, p)]),
            HostParams::F16(p) => gather_q(&batch.batch, [(&batch.chunk, from_f16_bits(p))]),
        })
    }

    fn counters(&self, batch: &CudaHostBatch) -> Result<Vec<Counters>> {
        Ok(gather_counters(&batch.batch, [(&batch.chunk, &batch.inst)]))
    }

    fn states(&self, batch: &CudaHostBatch) -> Result<Vec<Vec<u32>>> {
        Ok(gather_states(&batch.batch, [(&batch.chunk, &batch.inst)]))
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}
