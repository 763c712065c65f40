//! The CUDA kernel's host build: `kernels/epoch.cu` compiled as C++ by `build.rs`, run one
//! instance after another on the CPU. It exists so the CUDA source is tested against the CPU
//! reference on every machine; on a GPU the `cuda` backend runs the same source.

use super::device::{initial_instances, params_instance_major, DeviceModel, EpochParams};
use super::{Backend, Counters, QTables};
use crate::error::Result;
use crate::learn::plan::Plan;

extern "C" {
    fn icq_philox_host(ctr: *const u32, key: *const u32, out: *mut u32, n: u32);
    fn icq_epochs_host(
        p: *const EpochParams,
        mu: *const u32,
        mf: *const f32,
        inst: *mut u32,
        params: *mut f32,
    );
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

/// A batch of the host build: the same buffers the device would hold, in host memory.
pub struct CudaHostBatch {
    plan: Plan,
    model: DeviceModel,
    inst: Vec<u32>,
    params: Vec<f32>,
    epoch: u32,
}

impl Backend for CudaHost {
    type Batch = CudaHostBatch;

    fn name(&self) -> &'static str {
        "cuda-host"
    }

    fn device(&self) -> String {
        "kernels/epoch.cu compiled for the host".into()
    }

    fn upload(&self, plan: &Plan) -> Result<CudaHostBatch> {
        let model = DeviceModel::new(plan);
        let (inst, params) = initial_instances(plan, 0, plan.instances);
        Ok(CudaHostBatch {
            plan: plan.clone(),
            model,
            inst,
            params,
            epoch: 0,
        })
    }

    fn advance(&self, batch: &mut CudaHostBatch, epochs: u32) -> Result<()> {
        let params = EpochParams {
            instances: batch.plan.instances,
            epochs,
            epoch0: batch.epoch,
            instance0: 0,
            ..batch.model.params
        };
        // SAFETY: the pointers address live buffers laid out as kernels/epoch.cu expects: the
        // packed model (`words`, `values`) with every offset inside it, and `instances`
        // instance-minor records of `inst_fields` words and parameters of
        // `params_per_instance` floats, which the call may write.
        unsafe {
            icq_epochs_host(
                &params,
                batch.model.words.as_ptr(),
                batch.model.values.as_ptr(),
                batch.inst.as_mut_ptr(),
                batch.params.as_mut_ptr(),
            );
        }
        batch.epoch += epochs;
        Ok(())
    }

    fn read_q(&self, batch: &CudaHostBatch) -> Result<QTables> {
        let (p, n) = (batch.plan.layout.params, batch.plan.instances as usize);
        let major = params_instance_major(&batch.params, p, n);
        Ok(QTables::from_params(&batch.plan.layout, &major))
    }

    fn counters(&self, batch: &CudaHostBatch) -> Result<Counters> {
        Ok(counters_of(
            batch.plan.units(),
            batch.plan.instances as usize,
            &batch.inst,
        ))
    }

    fn states(&self, batch: &CudaHostBatch) -> Result<Vec<u32>> {
        Ok(batch.inst[..batch.plan.instances as usize].to_vec())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

/// Counters from the instance-minor records of `instances` instances with `units` learning
/// units each (shared by the device backends).
pub fn counters_of(units: usize, instances: usize, words: &[u32]) -> Counters {
    let n = instances;
    let field = |f: usize, b: usize| words[f * n + b];
    let mut out = Counters::default();
    for b in 0..n {
        out.epochs.push(field(1, b));
        out.steps
            .push(u64::from(field(2, b)) | (u64::from(field(3, b)) << 32));
        out.abs_target.push(f64::from(f32::from_bits(field(4, b))));
        out.updates.extend((0..units).map(|u| field(5 + u, b)));
    }
    out
}
