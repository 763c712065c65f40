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
use crate::learn::plan::{BatchPlan, Plan};

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
    ws.forget();
    let key = plan.key(b);
    for _ in 0..epochs {
        run_epoch(lanes, plan, key, inst, ws);
    }
}

/// The epoch loop compiled for AVX2: the epoch and everything it calls are inlined into it,
/// so the portable loops around the intrinsics are compiled for AVX2 as well.
///
/// Both builds compute the same thing in the same order (see [`crate::lanes`]), so
/// results do not depend on which runs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
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

/// One plan's instances on the CPU.
struct Group {
    plan: Plan,
    states: Vec<InstanceState>,
    params: Vec<f32>,
    updates: Vec<u32>,
    pending: Vec<Pending>,
}

/// One instance of a batch, ready to run: its plan, its index within the plan, its state.
type Part<'a> = (&'a Plan, u32, InstanceMut<'a>);

impl Group {
    fn new(plan: &Plan) -> Self {
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
        Self {
            plan: plan.clone(),
            states,
            params,
            updates: vec![0; b * plan.units()],
            pending,
        }
    }

    /// Every instance of this plan, with what it needs to run.
    fn parts(&mut self) -> impl Iterator<Item = Part<'_>> {
        let (p, u) = (self.plan.layout.params, self.plan.units());
        let n = if self.pending.is_empty() {
            0
        } else {
            self.plan.space.agents
        };
        let mut pending = self.pending.chunks_mut(n.max(1));
        let plan = &self.plan;
        self.states
            .iter_mut()
            .zip(self.params.chunks_mut(p.max(1)))
            .zip(self.updates.chunks_mut(u))
            .enumerate()
            .map(move |(b, ((state, params), updates))| {
                let pending = if n == 0 {
                    <&mut [Pending]>::default()
                } else {
                    pending.next().expect("one pending block per instance")
                };
                (
                    plan,
                    b as u32,
                    InstanceMut {
                        state,
                        params,
                        updates,
                        pending,
                    },
                )
            })
    }

    fn counters(&self) -> Counters {
        Counters {
            epochs: self.states.iter().map(|s| s.epoch).collect(),
            steps: self.states.iter().map(|s| s.steps).collect(),
            abs_target: self.states.iter().map(|s| s.abs_target).collect(),
            updates: self.updates.clone(),
        }
    }
}

/// A batch on the CPU: each plan's instances laid out instance-major, all of them run in one
/// parallel loop.
pub struct CpuBatch {
    groups: Vec<Group>,
}

impl CpuBatch {
    fn parts(&mut self) -> Vec<Part<'_>> {
        self.groups.iter_mut().flat_map(Group::parts).collect()
    }

    /// Every instance's parameters, per plan, instance-major.
    pub fn params(&self) -> Vec<Vec<f32>> {
        self.groups.iter().map(|g| g.params.clone()).collect()
    }

    /// Runs `epochs` epochs of instance `b` of the first plan alone and returns what each did
    /// (parity tests).
    pub fn trace(&mut self, b: usize, epochs: u32) -> Vec<EpochTrace> {
        let mut ws = Workspace::default();
        let mut out = Vec::with_capacity(epochs as usize);
        let (plan, local, mut inst) = self.groups[0].parts().nth(b).expect("instance in range");
        let key = plan.key(local);
        for _ in 0..epochs {
            out.push(run_epoch(Portable, plan, key, &mut inst, &mut ws));
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
        format!(
            "{} CPU thread{}",
            rayon::current_num_threads(),
            if rayon::current_num_threads() == 1 {
                ""
            } else {
                "s"
            }
        )
    }

    fn upload(&self, batch: &BatchPlan) -> Result<CpuBatch> {
        Ok(CpuBatch {
            groups: batch.plans.iter().map(Group::new).collect(),
        })
    }

    fn advance(&self, batch: &mut CpuBatch, epochs: u32) -> Result<()> {
        #[cfg(target_arch = "x86_64")]
        let wide = if self.portable { None } else { Avx2::detect() };
        batch.parts().into_par_iter().for_each_init(
            Workspace::default,
            |ws, (plan, b, mut inst)| {
                #[cfg(target_arch = "x86_64")]
                if let Some(lanes) = wide {
                    // SAFETY: an `Avx2` exists only where AVX2 was detected.
                    unsafe { epochs_avx2(lanes, plan, b, &mut inst, ws, epochs) };
                    return;
                }
                epochs_with(Portable, plan, b, &mut inst, ws, epochs);
            },
        );
        Ok(())
    }

    fn read_q(&self, batch: &CpuBatch) -> Result<Vec<QTables>> {
        Ok(batch
            .groups
            .iter()
            .map(|g| QTables::from_params(&g.plan.layout, &g.params))
            .collect())
    }

    fn counters(&self, batch: &CpuBatch) -> Result<Vec<Counters>> {
        Ok(batch.groups.iter().map(Group::counters).collect())
    }

    fn states(&self, batch: &CpuBatch) -> Result<Vec<Vec<u32>>> {
        Ok(batch
            .groups
            .iter()
            .map(|g| g.states.iter().map(|s| s.state).collect())
            .collect())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}
