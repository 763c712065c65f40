//! What every device backend uploads: the per-dispatch and per-group parameter structs
//! (mirrored in `shaders/epoch.wgsl` and `kernels/epoch.cu`), the model and learner tables of a
//! batch's plans packed into one `u32` buffer and one `f32` buffer shared by all instances, and
//! the chunks a batch is cut into — each a table of groups (the slice of one plan it holds) with
//! their records (instance-minor) and parameters (in tiles, see [`param_index`]) one block after
//! the other — and the way back from chunk buffers to per-plan Q tables and counters.

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

use super::{Counters, QTables};
use crate::error::{Error, Result};
use crate::learn::plan::{BatchPlan, Plan};
use crate::learn::{Behavior, Mode, Network, Sampler, StepSize, Weights};
use crate::model::DurationTable;

/// `u32` fields per option record in the model buffer.
const OPTION_FIELDS: usize = 8;
/// `u32` fields per unit record in the model buffer.
const UNIT_FIELDS: usize = 4;

/// Per-dispatch parameters of the epoch kernel, shared by every group of a chunk; mirrored
/// field for field by `Dispatch` in `shaders/epoch.wgsl` and `kernels/epoch.cu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Dispatch {
    /// Instances in this chunk, all groups together.
    pub instances: u32,
    /// Epochs each invocation runs in this dispatch.
    pub epochs: u32,
    /// Index of the first epoch of this dispatch.
    pub epoch0: u32,
    /// Groups in this chunk (entries of the group table).
    pub groups: u32,
}

const _: () = assert!(core::mem::size_of::<Dispatch>() == 16);

/// The parameters of one group of a chunk — the instances of one plan that the chunk holds —
/// read by each invocation from the chunk's group table; mirrored field for field by
/// `EpochParams` in `shaders/epoch.wgsl` and `kernels/epoch.cu` (only 4-byte scalars).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct EpochParams {
    /// Instances of this group in the chunk.
    pub instances: u32,
    /// Chunk index of the group's first instance (groups are contiguous and in order).
    pub first: u32,
    /// Offset of the group's instance records in the chunk's record buffer (words).
    pub inst_base: u32,
    /// Offset of the group's parameters in the chunk's parameter buffer (floats).
    pub param_base: u32,
    /// Instances per seed (instance b draws as instance b mod per_seed of its seed).
    pub per_seed: u32,
    /// Offset in the words of the seeds, two words (low, high) per seed.
    pub off_seeds: u32,
    /// N.
    pub agents: u32,
    /// Joint states.
    pub states: u32,
    /// A.
    pub actions: u32,
    /// S.
    pub artifact_states: u32,
    /// Stride of x in a joint index.
    pub stride_x: u32,
    /// Stride of h in a joint index.
    pub stride_h: u32,
    /// 0 icq, 1 centralized, 2 independent, 3 myopic.
    pub mode: u32,
    /// 0 tabular, 1 MLP.
    pub network: u32,
    /// Hidden width (MLP).
    pub width: u32,
    /// Hidden layers (MLP).
    pub depth: u32,
    /// 0 uniform, 1 ε-greedy.
    pub behavior: u32,
    /// ⌊ε·2³²⌋.
    pub explore_threshold: u32,
    /// 0 trajectory, 1 lazy, 2 reset.
    pub sampler: u32,
    /// The sampler's threshold (see `Plan`).
    pub sampler_threshold: u32,
    /// 0 constant, 1 inverse_sqrt, 2 inverse.
    pub step_kind: u32,
    /// α.
    pub alpha: f32,
    /// t0 of `inverse`.
    pub t0: f32,
    /// Gradient clip (≤ 0: none).
    pub clip: f32,
    /// γ.
    pub gamma: f32,
    /// Parameters per instance.
    pub params_per_instance: u32,
    /// Learning units per instance.
    pub units: u32,
    /// `u32` fields per instance record.
    pub inst_fields: u32,
    /// Offset of the option records.
    pub off_options: u32,
    /// Offset of `action_options` (N×A).
    pub off_action_options: u32,
    /// Offset of the decoded joint states ((2 + N) per state).
    pub off_decoded: u32,
    /// Offset of each joint state's decider input.
    pub off_state_input: u32,
    /// Offset of the private strides.
    pub off_stride_p: u32,
    /// Offset of the private-state counts.
    pub off_private_states: u32,
    /// Offset of the initial artifact table.
    pub off_init_artifact: u32,
    /// Offset of the initial private tables' (offset, length) pairs.
    pub off_init_private: u32,
    /// Offset of the μ table (reset sampler).
    pub off_mu: u32,
    /// Offset of the unit records.
    pub off_units: u32,
    /// Offset of the feature column indices.
    pub off_feat_idx: u32,
    /// The initial decider h₀.
    pub init_agent: u32,
    /// Index within its plan of the group's first instance in the chunk (keys its Philox
    /// streams).
    pub instance0: u32,
    /// Offset of the feature values in the values.
    pub off_feat_val: u32,
    /// Parameter storage: 0 f32, 1 f16 (values rounded to f16 at every write).
    pub weights: u32,
}

/// What an epoch kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelShape {
    /// The largest hidden width of the batch (1 for tabular networks).
    pub width: u32,
    /// The largest action count of the batch.
    pub actions: u32,
    /// Whether parameters are stored as f16 (the CUDA kernel's buffer type; the WGSL kernel
    /// reads each group's `weights` instead).
    pub f16: bool,
}

/// The model and learner tables of a batch's plans, packed one after the other for the device
/// into one `u32` buffer and one `f32` buffer.
pub struct DeviceModel {
    /// `u32` tables.
    pub words: Vec<u32>,
    /// Feature values and rewards.
    pub values: Vec<f32>,
    /// Per plan: its parameters with every offset filled in (per-chunk fields zero).
    pub params: Vec<EpochParams>,
}

impl DeviceModel {
    /// Packs the plans of `batch`.
    pub fn new(batch: &BatchPlan) -> Self {
        let (mut words, mut values) = (Vec::new(), Vec::new());
        let params = batch
            .plans
            .iter()
            .map(|plan| pack_plan(plan, &mut words, &mut values))
            .collect();
        if words.is_empty() {
            words.push(0);
        }
        if values.is_empty() {
            values.push(0.0);
        }
        Self {
            words,
            values,
            params,
        }
    }

    /// What the kernel is specialised for: the largest hidden width and action count of the
    /// batch (loops run to each group's own), and f16 storage when every plan stores f16.
    pub fn kernel_shape(&self) -> KernelShape {
        let (width, actions) = self
            .params
            .iter()
            .fold((1, 1), |(w, a), p| (w.max(p.width), a.max(p.actions)));
        KernelShape {
            width,
            actions,
            f16: self.params.iter().all(|p| p.weights == 1),
        }
    }

    /// [`Self::kernel_shape`] for a kernel with one parameter buffer type (the CUDA one): an
    /// error when the plans do not all store their parameters alike.
    pub fn uniform_shape(&self) -> Result<KernelShape> {
        if self.params.windows(2).all(|w| w[0].weights == w[1].weights) {
            Ok(self.kernel_shape())
        } else {
            Err(Error::invalid(
                "learner.weights",
                "this backend runs a batch whose plans all store parameters alike (all f32 or all f16); this one mixes them",
            ))
        }
    }
}

/// Appends the tables of `plan` to `words` and `values`; returns its parameters, every offset
/// pointing into the two buffers.
fn pack_plan(plan: &Plan, words: &mut Vec<u32>, values: &mut Vec<f32>) -> EpochParams {
    let (model, space, layout) = (&plan.model, &plan.space, &plan.layout);
    let off_feat_val = values.len() as u32;
    values.extend(&layout.feat_val);
    let mark = |words: &[u32]| words.len() as u32;
    // Categorical tables first; options point into them.
    let mut table_offsets = Vec::new();
    for w in 0..model.options.len() {
        let art = mark(words);
        words.extend(&plan.tables.options[w].artifact);
        let prv = mark(words);
        words.extend(&plan.tables.options[w].private);
        let dur = match &plan.tables.options[w].duration {
            DurationTable::Geometric(t) => (0, *t, 0),
            DurationTable::Fixed(n) => (1, *n, 0),
            DurationTable::Poisson(t) => {
                let off = mark(words);
                words.extend(&t.thresholds);
                (2, off, t.thresholds.len() as u32)
            }
        };
        let rew = values.len() as u32;
        values.extend(plan.tables.options[w].reward.iter().map(|&r| r as f32));
        table_offsets.push((art, prv, dur, rew));
    }
    let off_options = mark(words);
    for (w, &(art, prv, (kind, a, b), rew)) in table_offsets.iter().enumerate() {
        let o = &model.options[w];
        words.extend([
            o.executor as u32,
            kind,
            a,
            b,
            u32::from(o.terminal),
            art,
            prv,
            rew,
        ]);
    }
    debug_assert_eq!(
        words.len() - off_options as usize,
        OPTION_FIELDS * model.options.len()
    );
    let off_action_options = mark(words);
    words.extend(model.action_options.iter().flatten().map(|&w| w as u32));
    let off_decoded = mark(words);
    words.extend(&plan.decoded);
    let off_state_input = mark(words);
    words.extend(&plan.state_input);
    let off_stride_p = mark(words);
    words.extend(space.stride_p.iter().map(|&s| s as u32));
    let off_private_states = mark(words);
    words.extend(space.private_states.iter().map(|&m| m as u32));
    let off_init_artifact = mark(words);
    words.extend(&plan.tables.initial_artifact.thresholds);
    let mut private_tables = Vec::new();
    for t in &plan.tables.initial_private {
        private_tables.push((mark(words), t.thresholds.len() as u32));
        words.extend(&t.thresholds);
    }
    let off_init_private = mark(words);
    for (off, len) in private_tables {
        words.extend([off, len]);
    }
    let off_mu = mark(words);
    if let Some(mu) = &plan.mu_table {
        words.extend(&mu.thresholds);
    }
    let off_seeds = mark(words);
    for &seed in &plan.seeds {
        words.extend([seed as u32, (seed >> 32) as u32]);
    }
    let off_feat_idx = mark(words);
    words.extend(&layout.feat_idx);
    let mut feat_starts = Vec::new();
    for starts in &layout.feat_start {
        feat_starts.push(mark(words));
        words.extend(starts);
    }
    let off_units = mark(words);
    for (u, unit) in layout.units.iter().enumerate() {
        words.extend([
            unit.offset as u32,
            unit.inputs as u32,
            unit.in_dim as u32,
            feat_starts[u],
        ]);
    }
    debug_assert_eq!(
        words.len() - off_units as usize,
        UNIT_FIELDS * layout.units.len()
    );
    let l = &plan.learner;
    let (network, width, depth) = match l.network {
        Network::Tabular => (0, 1, 1),
        Network::Mlp { width, depth } => (1, width as u32, depth as u32),
    };
    let (step_kind, alpha, t0) = match l.step_size {
        StepSize::Constant { alpha } => (0, alpha, 0.0),
        StepSize::InverseSqrt { alpha } => (1, alpha, 0.0),
        StepSize::Inverse { alpha, t0 } => (2, alpha, t0),
    };
    EpochParams {
        per_seed: plan.per_seed,
        off_seeds,
        agents: space.agents as u32,
        states: space.states as u32,
        actions: model.actions as u32,
        artifact_states: model.artifact_states as u32,
        stride_x: space.stride_x as u32,
        stride_h: space.stride_h as u32,
        mode: match l.mode {
            Mode::Icq => 0,
            Mode::Centralized => 1,
            Mode::Independent => 2,
            Mode::Myopic => 3,
        },
        network,
        width,
        depth,
        behavior: u32::from(matches!(l.behavior, Behavior::EpsilonGreedy { .. })),
        explore_threshold: plan.explore_threshold,
        sampler: match l.sampler {
            Sampler::Trajectory => 0,
            Sampler::Lazy { .. } => 1,
            Sampler::Reset { .. } => 2,
        },
        sampler_threshold: plan.sampler_threshold,
        step_kind,
        alpha: alpha as f32,
        t0: t0 as f32,
        clip: l.clip.map_or(-1.0, |c| c as f32),
        gamma: model.gamma as f32,
        params_per_instance: layout.params as u32,
        units: layout.units.len() as u32,
        inst_fields: inst_fields(plan) as u32,
        off_options,
        off_action_options,
        off_decoded,
        off_state_input,
        off_stride_p,
        off_private_states,
        off_init_artifact,
        off_init_private,
        off_mu,
        off_units,
        off_feat_idx,
        init_agent: model.initial.agent as u32,
        off_feat_val,
        weights: u32::from(l.weights == Weights::F16),
        ..EpochParams::default()
    }
}

/// Epochs one kernel launch (a WGSL dispatch, a CUDA launch, a call of the host build) runs at
/// most: each launch sums |y| over its epochs and adds that to the record's f32 total once.
pub const EPOCHS_PER_LAUNCH: u32 = 64;

/// The epochs of each launch that together run `epochs` epochs: EPOCHS_PER_LAUNCH each, then
/// what is left.
pub fn launches(epochs: u32) -> impl Iterator<Item = u32> {
    (0..epochs)
        .step_by(EPOCHS_PER_LAUNCH as usize)
        .map(move |start| (epochs - start).min(EPOCHS_PER_LAUNCH))
}

/// `u32` fields of one instance record: joint state, epoch, steps (two words), Σ|y| (f32
/// bits), updates per unit, then five per agent for pending independent updates.
pub fn inst_fields(plan: &Plan) -> usize {
    record_fields(plan.units(), plan.space.agents)
}

/// [`inst_fields`] of a batch with `units` learning units and `agents` agents.
pub fn record_fields(units: usize, agents: usize) -> usize {
    5 + units + 5 * agents
}

/// Parameters per tile: a group's parameters j = 8t … 8t + 7 of one instance lie together (32
/// bytes of f32, one memory sector), the tiles of all its instances side by side.
pub const PARAM_TILE: usize = 8;

/// Where parameter `j` of instance `b` of a group of `n` instances lies in the group's
/// parameter block: tile ⌊j/8⌋ of every instance in turn, eight values each,
/// `(⌊j/8⌋·n + b)·8 + j mod 8`. One invocation reading a run of its own parameters (a hidden
/// layer's column, an output row) touches one tile per eight values, plus one where the run
/// does not start on a tile (units' blocks do not, unless their size is a multiple of eight),
/// whichever unit and input its neighbours are at; a tile of f32 is one 32-byte memory sector
/// (of f16, half of one). Plain instance-minor, `j·n + b`, made every such read by a thread
/// whose unit or input differed from its neighbours' a sector of its own. The kernels'
/// `param_at` computes the same.
pub fn param_index(j: usize, b: usize, n: usize) -> usize {
    (j / PARAM_TILE * n + b) * PARAM_TILE + j % PARAM_TILE
}

/// Values of the parameter block of a group of `n` instances with `params` parameters each:
/// whole tiles (the last tile's unused values stay zero).
pub fn param_words(params: usize, n: usize) -> usize {
    params.div_ceil(PARAM_TILE) * PARAM_TILE * n
}

/// Instance records (instance-minor) and parameters (tiled, [`param_index`]) of instances
/// `start..start + len`, as the host initialises them (the CPU backend's own initial states
/// and parameters).
///
/// Instances go in blocks of about 16 MB of parameters: a block's parameters are drawn in
/// parallel, instance-major, then copied into every row of tiles in parallel, one contiguous
/// run per row.
/// (Instance by instance, on one thread, with a write per row for each instance, this took
/// most of a large batch's set-up.)
pub fn initial_instances(plan: &Plan, start: u32, len: u32) -> (Vec<u32>, Vec<f32>) {
    let n = len as usize;
    let mut inst = vec![0u32; inst_fields(plan) * n];
    let mut params = vec![0.0f32; param_words(plan.layout.params, n)];
    initial_instances_into(plan, start, &mut inst, &mut params, BLOCK_FLOATS);
    (inst, params)
}

/// Parameters per block of [`initial_instances_into`]: 16 MB.
const BLOCK_FLOATS: usize = 1 << 22;

/// [`initial_instances`] into `inst` and `params`, zeroed and holding the records and
/// parameters of the instances from `start` (as many as `inst` has records), in blocks of
/// `block_floats` parameters (at least one instance).
fn initial_instances_into(
    plan: &Plan,
    start: u32,
    inst: &mut [u32],
    params: &mut [f32],
    block_floats: usize,
) {
    let p = plan.layout.params;
    let n = inst.len() / inst_fields(plan);
    debug_assert_eq!(params.len(), param_words(p, n));
    for (b, state) in inst[..n].iter_mut().enumerate() {
        *state = plan.initial_state(start + b as u32) as u32;
    }
    if p == 0 || n == 0 {
        return;
    }
    let per_block = (block_floats / p).clamp(1, n);
    let mut block = vec![0.0f32; p * per_block];
    for b0 in (0..n).step_by(per_block) {
        let count = per_block.min(n - b0);
        let block = &mut block[..p * count];
        block.par_chunks_mut(p).enumerate().for_each(|(i, own)| {
            let (seed, local) = plan.key(start + (b0 + i) as u32);
            plan.layout.init(seed, local, own);
        });
        let block = &*block;
        params
            .par_chunks_mut(PARAM_TILE * n)
            .enumerate()
            .for_each(|(t, row)| {
                let (j0, j1) = (t * PARAM_TILE, ((t + 1) * PARAM_TILE).min(p));
                let tiles = row[PARAM_TILE * b0..PARAM_TILE * (b0 + count)].chunks_mut(PARAM_TILE);
                for (i, tile) in tiles.enumerate() {
                    tile[..j1 - j0].copy_from_slice(&block[i * p + j0..i * p + j1]);
                }
            });
    }
}

/// A group's tiled parameter block ([`param_index`]; `instances` instances of `params`
/// parameters) made instance-major, instances in parallel.
pub fn params_instance_major(tiled: &[f32], params: usize, instances: usize) -> Vec<f32> {
    debug_assert_eq!(tiled.len(), param_words(params, instances));
    let mut major = vec![0.0f32; params * instances];
    if params > 0 {
        major
            .par_chunks_mut(params)
            .enumerate()
            .for_each(|(b, own)| {
                for (t, run) in own.chunks_mut(PARAM_TILE).enumerate() {
                    let at = param_index(t * PARAM_TILE, b, instances);
                    run.copy_from_slice(&tiled[at..at + run.len()]);
                }
            });
    }
    major
}

/// One chunk of a batch on a device: global instances `start..start + len`, cut into groups
/// by plan, each group's records (instance-minor) and parameters (tiled) one block after the
/// other.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// Global index of the chunk's first instance.
    pub start: u32,
    /// Instances in the chunk.
    pub len: u32,
    /// The group table the kernel reads (instance fields filled in).
    pub groups: Vec<EpochParams>,
    /// The plan of each group.
    pub plans: Vec<usize>,
    /// Words of the chunk's record buffer.
    pub inst_words: usize,
    /// Floats of the chunk's parameter buffer.
    pub param_words: usize,
}

impl Chunk {
    /// The chunk of instances `start..start + len` of `batch`, packed as `model`; an error when
    /// its records or parameters do not fit the kernels' 32-bit indices.
    pub fn new(batch: &BatchPlan, model: &DeviceModel, start: u32, len: u32) -> Result<Self> {
        let end = start + len;
        let mut chunk = Self {
            start,
            len,
            groups: Vec::new(),
            plans: Vec::new(),
            inst_words: 0,
            param_words: 0,
        };
        for (g, plan) in batch.plans.iter().enumerate() {
            let (lo, hi) = (batch.start(g), batch.start(g) + plan.instances);
            let (from, to) = (lo.max(start), hi.min(end));
            if from >= to {
                continue;
            }
            let n = to - from;
            chunk.groups.push(EpochParams {
                instances: n,
                first: from - start,
                inst_base: chunk.inst_words as u32,
                param_base: chunk.param_words as u32,
                instance0: from - lo,
                ..model.params[g]
            });
            chunk.plans.push(g);
            chunk.inst_words += inst_fields(plan) * n as usize;
            chunk.param_words += param_words(plan.layout.params, n as usize);
            if chunk.inst_words.max(chunk.param_words) > u32::MAX as usize {
                return Err(Error::TooLarge(format!(
                    "instances {start}..{end} of the batch hold {} parameter words and {} record words, more than 2³² − 1; run fewer instances at once",
                    chunk.param_words, chunk.inst_words
                )));
            }
        }
        Ok(chunk)
    }

    /// The chunks of `batch`, each holding at most `per_chunk` instances.
    pub fn split(batch: &BatchPlan, model: &DeviceModel, per_chunk: u32) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < batch.instances() {
            let len = per_chunk.max(1).min(batch.instances() - start);
            out.push(Self::new(batch, model, start, len)?);
            start += len;
        }
        Ok(out)
    }

    /// The parameters of one dispatch of `epochs` epochs from epoch `epoch0`.
    pub fn dispatch(&self, epochs: u32, epoch0: u32) -> Dispatch {
        Dispatch {
            instances: self.len,
            epochs,
            epoch0,
            groups: self.groups.len() as u32,
        }
    }

    /// The chunk's initial records and parameters, as the host initialises them.
    pub fn initial(&self, batch: &BatchPlan) -> (Vec<u32>, Vec<f32>) {
        // Each group drawn straight into its part of the chunk's buffers.
        let mut inst = vec![0u32; self.inst_words];
        let mut params = vec![0.0f32; self.param_words];
        for (group, &g) in self.groups.iter().zip(&self.plans) {
            let plan = &batch.plans[g];
            let n = group.instances as usize;
            let (i0, p0) = (group.inst_base as usize, group.param_base as usize);
            initial_instances_into(
                plan,
                group.instance0,
                &mut inst[i0..i0 + inst_fields(plan) * n],
                &mut params[p0..p0 + param_words(plan.layout.params, n)],
                BLOCK_FLOATS,
            );
        }
        (inst, params)
    }

    /// Each group's plan, its instance count, and its slice of `buffer` (a chunk's record
    /// buffer when `records`, else its parameter buffer).
    fn segments<'a, T>(
        &'a self,
        batch: &'a BatchPlan,
        buffer: &'a [T],
        records: bool,
    ) -> impl Iterator<Item = (usize, usize, &'a [T])> + 'a {
        self.groups.iter().zip(&self.plans).map(move |(group, &g)| {
            let plan = &batch.plans[g];
            let n = group.instances as usize;
            let (base, size) = if records {
                (group.inst_base as usize, inst_fields(plan) * n)
            } else {
                (
                    group.param_base as usize,
                    param_words(plan.layout.params, n),
                )
            };
            (g, n, &buffer[base..base + size])
        })
    }
}

/// Per plan of `batch`: every instance's parameters, instance-major, from each chunk's
/// parameter buffer.
pub fn gather_params<'a>(
    batch: &BatchPlan,
    chunks: impl IntoIterator<Item = (&'a Chunk, impl AsRef<[f32]>)>,
) -> Vec<Vec<f32>> {
    let mut major: Vec<Vec<f32>> = vec![Vec::new(); batch.plans.len()];
    for (chunk, buffer) in chunks {
        for (g, n, minor) in chunk.segments(batch, buffer.as_ref(), false) {
            let p = batch.plans[g].layout.params;
            major[g].extend(params_instance_major(minor, p, n));
        }
    }
    major
}

/// Per plan of `batch`: every instance's Q-values, from each chunk's parameter buffer.
pub fn gather_q<'a>(
    batch: &BatchPlan,
    chunks: impl IntoIterator<Item = (&'a Chunk, impl AsRef<[f32]>)>,
) -> Vec<QTables> {
    batch
        .plans
        .iter()
        .zip(gather_params(batch, chunks))
        .map(|(plan, params)| QTables::from_params(&plan.layout, &params))
        .collect()
}

/// Per plan of `batch`: every instance's counters, from each chunk's record buffer.
pub fn gather_counters<'a>(
    batch: &BatchPlan,
    chunks: impl IntoIterator<Item = (&'a Chunk, impl AsRef<[u32]>)>,
) -> Vec<Counters> {
    let mut out = vec![Counters::default(); batch.plans.len()];
    for (chunk, buffer) in chunks {
        for (g, n, words) in chunk.segments(batch, buffer.as_ref(), true) {
            out[g].append(counters_of(batch.plans[g].units(), n, words));
        }
    }
    out
}

/// Per plan of `batch`: every instance's joint state, from each chunk's record buffer.
pub fn gather_states<'a>(
    batch: &BatchPlan,
    chunks: impl IntoIterator<Item = (&'a Chunk, impl AsRef<[u32]>)>,
) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); batch.plans.len()];
    for (chunk, buffer) in chunks {
        for (g, n, words) in chunk.segments(batch, buffer.as_ref(), true) {
            out[g].extend_from_slice(&words[..n]);
        }
    }
    out
}

/// Counters from the instance-minor records of `instances` instances with `units` learning
/// units each.
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

/// Parameters as IEEE binary16 bits (each value rounded to the nearest f16, ties to even): a
/// kernel with f16 storage uploads these.
pub fn f16_bits(values: &[f32]) -> Vec<u16> {
    values
        .par_iter()
        .map(|&v| half::f16::from_f32(v).to_bits())
        .collect()
}

/// f16 parameter bits read back, as f32.
pub fn from_f16_bits(bits: &[u16]) -> Vec<f32> {
    bits.par_iter()
        .map(|&b| half::f16::from_bits(b).to_f32())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{
        initial_instances, initial_instances_into, inst_fields, launches, param_index, param_words,
        params_instance_major,
    };
    use crate::learn::plan::Plan;
    use crate::learn::{LearnerConfig, Network};
    use crate::model::synthetic::Synthetic;

    /// The blocked, parallel set-up lays out exactly what instance-by-instance drawing gives:
    /// every instance's own parameters at `(⌊j/8⌋·n + b)·8 + j mod 8` (zeros after the last
    /// parameter of the last tile) and its initial state in the first record field, across
    /// block boundaries and from a chunk that starts mid-batch; the read-back inverts it.
    #[test]
    fn initial_instances_lay_out_each_instance_in_tiles() {
        let model = Synthetic::default().build().unwrap();
        let learner = LearnerConfig {
            network: Network::Mlp { width: 4, depth: 1 },
            ..LearnerConfig::default()
        };
        let plan = Plan::new(&model, &learner, 10_000, 0, None).unwrap();
        let (start, n) = (1_000u32, 8_200usize);
        let p = plan.layout.params;
        assert_ne!(p % 8, 0, "a last tile part empty");
        // Blocks of 1 000 instances: eight whole blocks and a part.
        let mut inst = vec![0u32; inst_fields(&plan) * n];
        let mut params = vec![0.0f32; param_words(p, n)];
        initial_instances_into(&plan, start, &mut inst, &mut params, 1_000 * p);
        // The same as one block (the default size holds them all), allocated by the caller.
        let (whole_inst, whole_params) = initial_instances(&plan, start, n as u32);
        assert_eq!(whole_inst.len(), inst_fields(&plan) * n);
        assert_eq!(whole_params.len(), p.div_ceil(8) * 8 * n);
        assert_eq!(whole_inst, inst);
        assert_eq!(whole_params, params);
        let mut own = vec![0.0f32; p];
        for b in 0..n {
            let global = start + b as u32;
            assert_eq!(inst[b], plan.initial_state(global) as u32, "instance {b}");
            let (seed, local) = plan.key(global);
            plan.layout.init(seed, local, &mut own);
            for (j, &v) in own.iter().enumerate() {
                assert_eq!(
                    params[(j / 8 * n + b) * 8 + j % 8].to_bits(),
                    v.to_bits(),
                    "instance {b}, parameter {j}"
                );
            }
            for j in p..p.div_ceil(8) * 8 {
                assert_eq!(
                    params[param_index(j, b, n)],
                    0.0,
                    "instance {b}, padding {j}"
                );
            }
        }
        assert!(
            inst[n..].iter().all(|&w| w == 0),
            "other record fields start at zero"
        );
        let major = params_instance_major(&params, p, n);
        for b in [0, 999, 1_000, n - 1] {
            let (seed, local) = plan.key(start + b as u32);
            plan.layout.init(seed, local, &mut own);
            assert_eq!(
                &major[b * p..(b + 1) * p],
                &own[..],
                "instance {b} read back"
            );
        }
    }

    #[test]
    fn launches_cover_the_epochs_in_order() {
        assert_eq!(launches(0).count(), 0);
        assert_eq!(launches(64).collect::<Vec<_>>(), [64]);
        assert_eq!(launches(130).collect::<Vec<_>>(), [64, 64, 2]);
        assert_eq!(
            launches(u32::MAX).map(u64::from).sum::<u64>(),
            u64::from(u32::MAX)
        );
    }
}
