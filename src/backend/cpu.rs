//! The CPU backend: the reference epoch over every instance in parallel with rayon. Instances
//! are laid out instance-major (each instance's parameters contiguous); nothing is allocated
//! inside the epoch loop.

use rayon::prelude::*;

use super::{Backend, Counters, QTables};
use crate::error::Result;
#[cfg(target_arch = "x86_64")]
use crate::lanes::Avx2;
use crate::lanes::{Lanes, Portable};
use crate::learn::epoch::{run_epoch, EpochTrace, InstanceMut, InstanceState, Pending, Workspace};
use crate::learn::plan::Plan;

/// Runs `epochs` epochs of instance `b` with the vector loops of `lanes`.
#[inline(always)]
fn epochs_with<L: Lanes>(
    lanes: L,
    plan: &Plan,
    b: u32,
    inst: &mut InstanceMut<'_>,
    ws: &mut Workspace,
    epochs: u32,
) {
    for _ in 0..epochs {
        run_epoch(lanes, plan, b, inst, ws);
    }
}

/// The epoch loop compiled for AVX2: the epoch and everything it calls are inlined into it,
/// so the portable loops around the intrinsics are compiled for AVX2 as well.
///
/// Both builds compute the same thing in the same order (see [`crate::lanes`]), so
/// results do not depend on which runs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn epochs_avx2(
    lanes: Avx2,
    plan: &Plan,
    b: u32,
    inst: &mut InstanceMut<'_>,
    ws: &mut Workspace,
    epochs: u32,
) {
    epochs_with(lanes, plan, b, inst, ws, epochs);
}

/// The CPU backend.
#[derive(Clone, Debug, Default)]
pub struct Cpu {
    portable: bool,
}

impl Cpu {
    /// The backend (rayon's global pool: `RAYON_NUM_THREADS` sets its size).
    pub fn new() -> Self {
        Self { portable: false }
    }

    /// The backend that never takes the AVX2 build of the epoch loop (to test that both builds
    /// agree bit for bit).
    pub fn portable() -> Self {
        Self { portable: true }
    }
}

/// A batch on the CPU.
pub struct CpuBatch {
    plan: Plan,
    states: Vec<InstanceState>,
    params: Vec<f32>,
    updates: Vec<u32>,
    pending: Vec<Pending>,
}

impl CpuBatch {
    fn parts(&mut self) -> impl IndexedParallelIterator<Item = (usize, InstanceMut<'_>)> {
        let (p, u) = (self.plan.layout.params, self.plan.units());
        let n = if self.pending.is_empty() {
            0
        } else {
            self.plan.space.agents
        };
        let pending_chunks: Vec<&mut [Pending]> = if n == 0 {
            (0..self.states.len())
                .map(|_| <&mut [Pending]>::default())
                .collect()
        } else {
            self.pending.chunks_mut(n).collect()
        };
        self.states
            .par_iter_mut()
            .zip(self.params.par_chunks_mut(p.max(1)))
            .zip(self.updates.par_chunks_mut(u))
            .zip(pending_chunks.into_par_iter())
            .enumerate()
            .map(|(b, (((state, params), updates), pending))| {
                (
                    b,
                    InstanceMut {
                        state,
                        params,
                        updates,
                        pending,
                    },
                )
            })
    }

    /// Every instance's joint state (the start of its next epoch).
    pub fn states(&self) -> Vec<u32> {
        self.states.iter().map(|s| s.state).collect()
    }

    /// The plan of this batch.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs `epochs` epochs of instance `b` alone and returns what each did (parity tests).
    pub fn trace(&mut self, b: usize, epochs: u32) -> Vec<EpochTrace> {
        let plan = self.plan.clone();
        let mut ws = Workspace::default();
        let mut out = Vec::with_capacity(epochs as usize);
        let part = self.parts().find_any(|(i, _)| *i == b).map(|(_, m)| m);
        let mut inst = part.expect("instance in range");
        for _ in 0..epochs {
            out.push(run_epoch(Portable, &plan, b as u32, &mut inst, &mut ws));
        }
        out
    }
}

impl Backend for Cpu {
    type Batch = CpuBatch;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn device(&self) -> String {
        format!("{} CPU threads", rayon::current_num_threads())
    }

    fn upload(&self, plan: &Plan) -> Result<CpuBatch> {
        let b = plan.instances as usize;
        let p = plan.layout.params;
        let mut params = vec![0.0f32; b * p];
        params
            .par_chunks_mut(p.max(1))
            .enumerate()
            .for_each(|(i, chunk)| {
                let (seed, local) = plan.key(i as u32);
                plan.layout.init(seed, local, chunk)
            });
        let states = (0..b)
            .into_par_iter()
            .map(|i| InstanceState {
                state: plan.initial_state(i as u32) as u32,
                ..InstanceState::default()
            })
            .collect();
        let pending = if plan.learner.mode == crate::learn::Mode::Independent {
            vec![Pending::default(); b * plan.space.agents]
        } else {
            Vec::new()
        };
        Ok(CpuBatch {
            plan: plan.clone(),
            states,
            params,
            updates: vec![0; b * plan.units()],
            pending,
        })
    }

    fn advance(&self, batch: &mut CpuBatch, epochs: u32) -> Result<()> {
        let plan = batch.plan.clone();
        #[cfg(target_arch = "x86_64")]
        let wide = if self.portable { None } else { Avx2::detect() };
        batch
            .parts()
            .for_each_init(Workspace::default, |ws, (b, mut inst)| {
                #[cfg(target_arch = "x86_64")]
                if let Some(lanes) = wide {
                    // SAFETY: an `Avx2` exists only where AVX2 was detected.
                    unsafe { epochs_avx2(lanes, &plan, b as u32, &mut inst, ws, epochs) };
                    return;
                }
                epochs_with(Portable, &plan, b as u32, &mut inst, ws, epochs);
            });
        Ok(())
    }

    fn read_q(&self, batch: &CpuBatch) -> Result<QTables> {
        Ok(QTables::from_params(&batch.plan.layout, &batch.params))
    }

    fn counters(&self, batch: &CpuBatch) -> Result<Counters> {
        Ok(Counters {
            epochs: batch.states.iter().map(|s| s.epoch).collect(),
            steps: batch.states.iter().map(|s| s.steps).collect(),
            abs_target: batch.states.iter().map(|s| s.abs_target).collect(),
            updates: batch.updates.clone(),
        })
    }

    fn states(&self, batch: &CpuBatch) -> Result<Vec<u32>> {
        Ok(batch.states())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}
