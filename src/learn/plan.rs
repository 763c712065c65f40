//! A batch plan: everything the host computes once for a batch of instances — the model's draw
//! tables, the network layout and features, each joint state's decider input, the sampler's
//! thresholds — shared read-only by every instance and uploaded as-is by device backends.

use super::net::NetLayout;
use super::{LearnerConfig, Mode, Sampler};
use crate::error::{Error, Result};
use crate::lanes::Lanes;
use crate::model::{DrawTables, Model, StateSpace};
use crate::rng::{probability_threshold, sample_cdf, CdfTable, Stream, TAG_INIT};

/// A batch of instances of one model and one learner configuration.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The model.
    pub model: Model,
    /// Its joint-state space.
    pub space: StateSpace,
    /// Its `u32` draw tables.
    pub tables: DrawTables,
    /// The learner.
    pub learner: LearnerConfig,
    /// Parameter layout and input features.
    pub layout: NetLayout,
    /// Instances B (all seeds together).
    pub instances: u32,
    /// The run seeds: instances `j·per_seed .. (j+1)·per_seed` are instances `0..per_seed` of
    /// seed `seeds[j]`, each drawing exactly what it would in a run of that seed alone.
    pub seeds: Vec<u64>,
    /// Instances per seed.
    pub per_seed: u32,
    /// Per joint state: the input index of its decider's unit (observation or joint state).
    pub state_input: Vec<u32>,
    /// Per joint state: the index in `layout.passes` of its decider's unit at that input.
    pub state_pass: Vec<u32>,
    /// μ as a cumulative table over joint states (the `reset` sampler only).
    pub mu_table: Option<CdfTable>,
    /// The sampler's threshold: `lazy` ⌊ρ·2³²⌋, `reset` ⌊(1−ρ)·2³²⌋, else 0.
    pub sampler_threshold: u32,
    /// ⌊ε·2³²⌋ of ε-greedy behavior (0 for uniform).
    pub explore_threshold: u32,
    /// Per joint state, `2 + N` words: h, x, p_0 … p_{N−1} (no divisions in the epoch loop).
    pub decoded: Vec<u32>,
}

impl Plan {
    /// The plan of `instances` instances under `seed`; `mu` (the oracle's stationary law) is
    /// needed by the `reset` sampler only.
    pub fn new(
        model: &Model,
        learner: &LearnerConfig,
        instances: u32,
        seed: u64,
        mu: Option<&[f64]>,
    ) -> Result<Self> {
        Self::packed(model, learner, instances, &[seed], mu)
    }

    /// One batch of `per_seed` instances for each of `seeds` (seed-major), every instance
    /// drawing what it would in a run of its seed alone.
    pub fn packed(
        model: &Model,
        learner: &LearnerConfig,
        per_seed: u32,
        seeds: &[u64],
        mu: Option<&[f64]>,
    ) -> Result<Self> {
        if seeds.is_empty() {
            return Err(Error::invalid(
                "run.seed",
                "a batch needs at least one seed",
            ));
        }
        let instances = u32::try_from(u64::from(per_seed) * seeds.len() as u64).map_err(|_| {
            Error::invalid(
                "run.instances",
                format!(
                    "{per_seed} instances × {} seeds do not fit one batch",
                    seeds.len()
                ),
            )
        })?;
        learner.validate()?;
        if instances == 0 {
            return Err(Error::invalid(
                "run.instances",
                "expected at least 1 instance, found 0",
            ));
        }
        let space = model.space();
        if space.states > u32::MAX as usize / 2 {
            return Err(Error::TooLarge(format!(
                "{} joint states do not fit in u32",
                space.states
            )));
        }
        let layout = NetLayout::new(
            &space,
            model.actions,
            learner.mode,
            learner.network,
            learner.encoding,
        )
        .with_weights(learner.weights);
        // Each joint state's deciding unit and its input there: the joint learner at the
        // joint state, or the decider at its observation.
        let (state_input, state_pass) = (0..space.states)
            .map(|s| {
                let (unit, input) = match learner.mode {
                    Mode::Centralized => (0, s as u32),
                    _ => {
                        let h = space.decider(s);
                        (h, (space.observation(s) - space.obs_offset[h]) as u32)
                    }
                };
                (input, layout.pass_first[unit] + input)
            })
            .unzip();
        let (mu_table, sampler_threshold) = match learner.sampler {
            Sampler::Trajectory => (None, 0),
            Sampler::Lazy { rho } => (None, probability_threshold(rho)),
            Sampler::Reset { rho } => {
                let mu = mu.ok_or_else(|| {
                    Error::invalid(
                        "learner.sampler",
                        "the reset sampler needs the stationary law μ",
                    )
                })?;
                (Some(CdfTable::new(mu)), probability_threshold(1.0 - rho))
            }
        };
        let explore_threshold = match learner.behavior {
            super::Behavior::Uniform => 0,
            super::Behavior::EpsilonGreedy { epsilon } => probability_threshold(epsilon),
        };
        let decoded = (0..space.states)
            .flat_map(|s| space.decode(s).into_iter().map(|v| v as u32))
            .collect();
        Ok(Self {
            decoded,
            tables: DrawTables::new(model),
            model: model.clone(),
            space,
            learner: learner.clone(),
            layout,
            instances,
            seeds: seeds.to_vec(),
            per_seed,
            state_input,
            state_pass,
            mu_table,
            sampler_threshold,
            explore_threshold,
        })
    }

    /// The learning unit that decides in joint state `s`.
    #[inline]
    pub fn unit_of(&self, s: usize) -> usize {
        self.layout.passes[self.state_pass[s] as usize].unit as usize
    }

    /// (h, x, p_0 … p_{N−1}) of joint state `s`.
    #[inline]
    pub fn decode(&self, s: usize) -> &[u32] {
        let w = 2 + self.space.agents;
        &self.decoded[s * w..(s + 1) * w]
    }

    /// Number of learning units per instance.
    pub fn units(&self) -> usize {
        self.layout.units.len()
    }

    /// A draw of the initial law from the raw words of `stream`: artifact, then each agent's
    /// private state.
    pub fn draw_initial<L: Lanes>(&self, stream: &mut Stream<L>) -> usize {
        let (t, sp) = (&self.tables, &self.space);
        let x = t.initial_artifact.sample(stream.next_raw());
        let mut s = self.model.initial.agent * sp.stride_h + x * sp.stride_x;
        for (law, stride) in t.initial_private.iter().zip(&sp.stride_p) {
            s += sample_cdf(&law.thresholds, stream.next_raw()) * stride;
        }
        s
    }

    /// The seed and the index within its seed of batch instance `instance`: the key of its
    /// streams.
    #[inline]
    pub fn key(&self, instance: u32) -> (u64, u32) {
        let j = instance / self.per_seed;
        (self.seeds[j as usize], instance - j * self.per_seed)
    }

    /// Instance `b`'s initial joint state (its `TAG_INIT` stream).
    pub fn initial_state(&self, instance: u32) -> usize {
        let (seed, local) = self.key(instance);
        self.draw_initial(&mut Stream::new(seed, local, 0, TAG_INIT))
    }
}

/// One batch of one or more plans — each its own model, learner and seeds — run side by side
/// on one backend: the instances of `plans[0]`, then those of `plans[1]`, … (plan-major). Every
/// instance draws exactly what it would in a batch of its plan alone, so packing grid points
/// of a sweep into one batch changes no number, only how full the device is.
#[derive(Clone, Debug)]
pub struct BatchPlan {
    /// The plans, in batch order.
    pub plans: Vec<Plan>,
    /// Global index of each plan's first instance, then the total.
    starts: Vec<u32>,
}

impl BatchPlan {
    /// The batch of `plans` (at least one; all instances together must fit `u32`).
    pub fn new(plans: Vec<Plan>) -> Result<Self> {
        if plans.is_empty() {
            return Err(Error::invalid("batch", "a batch needs at least one plan"));
        }
        let mut starts = vec![0u32];
        for plan in &plans {
            let last = *starts.last().expect("one start");
            let next = last.checked_add(plan.instances).ok_or_else(|| {
                Error::TooLarge(format!(
                    "{} plans of {} instances in all do not fit one batch",
                    plans.len(),
                    plans.iter().map(|p| u64::from(p.instances)).sum::<u64>()
                ))
            })?;
            starts.push(next);
        }
        Ok(Self { plans, starts })
    }

    /// Instances in the whole batch.
    pub fn instances(&self) -> u32 {
        *self.starts.last().expect("the total")
    }

    /// Global index of plan `g`'s first instance.
    pub fn start(&self, g: usize) -> u32 {
        self.starts[g]
    }

    /// The plan of global instance `b` and `b`'s index within it.
    pub fn locate(&self, b: u32) -> (usize, u32) {
        let g = self.starts.partition_point(|&s| s <= b) - 1;
        (g, b - self.starts[g])
    }
}

impl From<Plan> for BatchPlan {
    fn from(plan: Plan) -> Self {
        Self {
            starts: vec![0, plan.instances],
            plans: vec![plan],
        }
    }
}
