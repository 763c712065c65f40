//! Q-networks: which learners ("units") a batch holds, where each unit's parameters sit in an
//! instance's parameter block, how inputs are encoded, and the f32 forward pass and SGD step.
//!
//! Units are the agents (IC-Q, independent, myopic) or one joint-state learner (centralized).
//! A unit's inputs are its observations (z·M_i + p) or the joint states. Encodings are stored
//! once per batch as sparse feature lists: one-hot inputs touch two (or 2 + N) columns of the
//! first layer, scalar ones two (or 2 + N), embeddings d.
//!
//! MLP parameter layout of one unit (f32): W1 as `in_dim` columns of `width` (column j
//! contiguous), b1, then for depth 2 W2 (`width` rows of `width`) and b2, then the output
//! layer as A rows of `width`, then its A biases. A table is `inputs × A`, row-major.

use super::{Encoding, Mode, Network, Weights};
use crate::lanes::{Lanes, Mlp1};
use crate::model::StateSpace;
use crate::rng::{uniform_f32, Stream};

/// Stream tag of parameter initialisation.
pub const TAG_PARAMS: u32 = 2;
/// Stream tag of the `embed` encoding's vectors: apart from [`TAG_PARAMS`], so that an
/// embedding seed equal to the run seed does not make unit u's vectors the initial weights
/// of instance u.
pub const TAG_EMBED: u32 = 3;

/// One learner inside an instance.
#[derive(Clone, Debug)]
pub struct Unit {
    /// Distinct inputs (observations or joint states).
    pub inputs: usize,
    /// Encoded input dimension (MLP only).
    pub in_dim: usize,
    /// Offset of this unit's parameters in an instance's block.
    pub offset: usize,
    /// Number of parameters.
    pub size: usize,
}

/// Everything a forward pass or an SGD step needs of one (unit, input), found once per batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// The unit.
    pub unit: u32,
    /// The input within the unit.
    pub input: u32,
    /// The unit's encoded input dimension (MLP only).
    pub in_dim: u32,
    /// The unit's parameters: `offset .. offset + size` of an instance's block.
    pub offset: u32,
    /// Their number.
    pub size: u32,
    /// The input's features: `feat_lo .. feat_hi` of `feat_idx` / `feat_val`.
    pub feat_lo: u32,
    /// End of its features.
    pub feat_hi: u32,
}

/// The parameter layout of every instance of a batch, and its input features.
#[derive(Clone, Debug)]
pub struct NetLayout {
    /// How parameters are stored (set with [`Self::with_weights`]; default f32).
    pub weights: Weights,
    /// The network kind.
    pub network: Network,
    /// A.
    pub actions: usize,
    /// The units.
    pub units: Vec<Unit>,
    /// Parameters per instance.
    pub params: usize,
    /// Per unit: start of each input's features in `feat_idx`/`feat_val` (inputs + 1 entries).
    pub feat_start: Vec<Vec<u32>>,
    /// Feature column indices.
    pub feat_idx: Vec<u32>,
    /// Feature values.
    pub feat_val: Vec<f32>,
    /// Per (unit, input), unit-major: its [`Pass`].
    pub passes: Vec<Pass>,
    /// Per unit: the index of its first input's pass.
    pub pass_first: Vec<u32>,
}

/// Per-thread buffers of the forward and backward passes.
#[derive(Clone, Debug, Default)]
pub struct Acts {
    /// First hidden layer (post-ReLU).
    pub h1: Vec<f32>,
    /// Second hidden layer (post-ReLU).
    pub h2: Vec<f32>,
    /// Q-values of the last whole forward pass ([`NetLayout::forward_one`] leaves them as
    /// they were).
    pub q: Vec<f32>,
    g1: Vec<f32>,
    g2: Vec<f32>,
}

impl NetLayout {
    /// The layout of a batch of learners of `mode` with `network` and `encoding`.
    pub fn new(
        space: &StateSpace,
        actions: usize,
        mode: Mode,
        network: Network,
        encoding: Encoding,
    ) -> Self {
        // Per unit: input count and, per input, its components (value, range) to encode.
        let unit_inputs: Vec<Vec<Vec<(usize, usize)>>> = match mode {
            Mode::Centralized => vec![(0..space.states)
                .map(|s| {
                    let mut c = vec![
                        (space.decider(s), space.agents),
                        (space.artifact(s), space.artifact_states),
                    ];
                    c.extend(
                        (0..space.agents).map(|i| (space.private(s, i), space.private_states[i])),
                    );
                    c
                })
                .collect()],
            _ => (0..space.agents)
                .map(|i| {
                    let (k, m) = (space.interface_states[i], space.private_states[i]);
                    (0..k * m).map(|o| vec![(o / m, k), (o % m, m)]).collect()
                })
                .collect(),
        };
        let mut feat_start = Vec::new();
        let (mut feat_idx, mut feat_val) = (Vec::new(), Vec::new());
        let mut units = Vec::new();
        let mut offset = 0;
        for (u, inputs) in unit_inputs.iter().enumerate() {
            let in_dim = match encoding {
                Encoding::Onehot => inputs[0].iter().map(|&(_, r)| r).sum(),
                Encoding::Scalar => inputs[0].len(),
                Encoding::Embed { d, .. } => d,
            };
            let mut starts = vec![feat_idx.len() as u32];
            for (i, comps) in inputs.iter().enumerate() {
                match encoding {
                    Encoding::Onehot => {
                        let mut base = 0;
                        for &(v, r) in comps {
                            feat_idx.push((base + v) as u32);
                            feat_val.push(1.0);
                            base += r;
                        }
                    }
                    Encoding::Scalar => {
                        for (j, &(v, r)) in comps.iter().enumerate() {
                            feat_idx.push(j as u32);
                            feat_val.push(v as f32 / r as f32);
                        }
                    }
                    Encoding::Embed { d, seed } => {
                        let mut stream = Stream::new(seed, u as u32, i as u32, TAG_EMBED);
                        for j in 0..d {
                            feat_idx.push(j as u32);
                            let unit = uniform_f32(stream.next_raw()) * 2.0 - 1.0;
                            feat_val.push(unit * 3f32.sqrt());
                        }
                    }
                }
                // Strictly increasing, so distinct: the SGD step rounds each column to the
                // parameter storage once, after the whole step.
                let this = &feat_idx[*starts.last().expect("starts") as usize..];
                debug_assert!(this.windows(2).all(|w| w[0] < w[1]));
                starts.push(feat_idx.len() as u32);
            }
            feat_start.push(starts);
            let size = match network {
                Network::Tabular => inputs.len() * actions,
                Network::Mlp { width, depth } => {
                    in_dim * width
                        + width
                        + (depth - 1) * (width * width + width)
                        + actions * width
                        + actions
                }
            };
            units.push(Unit {
                inputs: inputs.len(),
                in_dim,
                offset,
                size,
            });
            offset += size;
        }
        let mut passes = Vec::new();
        let mut pass_first = Vec::with_capacity(units.len());
        let word = |v: usize| u32::try_from(v).expect("a batch's layout fits u32 offsets");
        for (u, unit) in units.iter().enumerate() {
            pass_first.push(word(passes.len()));
            passes.extend((0..unit.inputs).map(|i| Pass {
                unit: word(u),
                input: word(i),
                in_dim: word(unit.in_dim),
                offset: word(unit.offset),
                size: word(unit.size),
                feat_lo: feat_start[u][i],
                feat_hi: feat_start[u][i + 1],
            }));
        }
        Self {
            weights: Weights::F32,
            network,
            actions,
            units,
            params: offset,
            feat_start,
            feat_idx,
            feat_val,
            passes,
            pass_first,
        }
    }

    /// The pass of input `input` of `unit`.
    #[inline]
    pub fn pass(&self, unit: usize, input: usize) -> &Pass {
        assert!(
            input < self.units[unit].inputs,
            "input {input} of unit {unit}"
        );
        &self.passes[self.pass_first[unit] as usize + input]
    }

    /// The same layout with parameters stored as `weights`.
    pub fn with_weights(mut self, weights: Weights) -> Self {
        self.weights = weights;
        self
    }

    /// Rounds `p` to what the parameter storage holds (nothing to do for f32; f16 through a
    /// small stack buffer, so the `half` crate converts whole vectors at a time).
    #[inline(always)]
    fn stored(&self, p: &mut [f32]) {
        if self.weights == Weights::F16 {
            use half::slice::HalfFloatSliceExt;
            let mut buf = [half::f16::ZERO; 64];
            for chunk in p.chunks_mut(buf.len()) {
                let h = &mut buf[..chunk.len()];
                h.convert_from_f32_slice(chunk);
                h.convert_to_f32_slice(chunk);
            }
        }
    }

    /// `x −= d`, then `x` rounded to the parameter storage.
    #[inline(always)]
    fn sub_stored(&self, x: &mut f32, d: f32) {
        *x -= d;
        if self.weights == Weights::F16 {
            *x = half::f16::from_f32(*x).to_f32();
        }
    }

    /// Initial parameters of one instance: tables at zero, MLP weights U(±1/√fan_in) from the
    /// instance's `TAG_PARAMS` stream in layout order, biases zero (then rounded to the
    /// parameter storage).
    ///
    /// The words come two Philox blocks at a time from the AVX2 build where this CPU has it
    /// (the same words as the portable one).
    pub fn init(&self, seed: u64, instance: u32, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(lanes) = crate::lanes::Avx2::detect() {
            return self.init_with(lanes, seed, instance, out);
        }
        self.init_with(crate::lanes::Portable, seed, instance, out);
    }

    fn init_with<L: Lanes>(&self, lanes: L, seed: u64, instance: u32, out: &mut [f32]) {
        out.fill(0.0);
        let Network::Mlp { width, depth } = self.network else {
            return;
        };
        let mut stream = Stream::with_lanes(lanes, seed, instance, 0, TAG_PARAMS);
        let mut fill = |w: &mut [f32], fan_in: usize| {
            let bound = 1.0 / (fan_in as f32).sqrt();
            for x in w {
                *x = (uniform_f32(stream.next_raw()) * 2.0 - 1.0) * bound;
            }
        };
        for u in &self.units {
            let p = &mut out[u.offset..u.offset + u.size];
            let mut at = 0;
            fill(&mut p[at..at + u.in_dim * width], u.in_dim);
            at += u.in_dim * width + width;
            if depth == 2 {
                fill(&mut p[at..at + width * width], width);
                at += width * width + width;
            }
            fill(&mut p[at..at + self.actions * width], width);
        }
        self.stored(out);
    }

    /// The one-hidden-layer view of `pass`'s unit at the input features `idx`, `val`.
    #[inline(always)]
    fn mlp1<'a>(&self, pass: &Pass, idx: &'a [u32], val: &'a [f32]) -> Mlp1<'a> {
        Mlp1 {
            in_dim: pass.in_dim as usize,
            actions: self.actions,
            idx,
            val,
        }
    }

    #[inline(always)]
    fn features(&self, pass: &Pass) -> (&[u32], &[f32]) {
        let (a, b) = (pass.feat_lo as usize, pass.feat_hi as usize);
        (&self.feat_idx[a..b], &self.feat_val[a..b])
    }

    /// Q(input, ·) of `pass` (its unit at its input) with the instance parameters `p`, into
    /// `acts.q` (the hidden activations stay in `acts` for [`Self::sgd`]).
    #[inline(always)]
    pub fn forward<L: Lanes>(&self, lanes: L, pass: &Pass, p: &[f32], acts: &mut Acts) {
        let (offset, in_dim) = (pass.offset as usize, pass.in_dim as usize);
        let p = &p[offset..offset + pass.size as usize];
        let input = pass.input as usize;
        let a_count = self.actions;
        acts.q.resize(a_count, 0.0);
        match self.network {
            Network::Tabular => acts
                .q
                .copy_from_slice(&p[input * a_count..(input + 1) * a_count]),
            Network::Mlp { width, depth: 1 } => {
                let (idx, val) = self.features(pass);
                acts.h1.resize(width, 0.0);
                let net = self.mlp1(pass, idx, val);
                lanes.mlp1_forward(net, p, &mut acts.h1, &mut acts.q);
            }
            Network::Mlp { width, depth } => {
                let (idx, val) = self.features(pass);
                let w1 = &p[..in_dim * width];
                let b1 = &p[in_dim * width..in_dim * width + width];
                acts.h1.resize(width, 0.0);
                lanes.sparse_relu(&mut acts.h1, b1, w1, idx, val);
                let mut at = in_dim * width + width;
                let last = if depth == 2 {
                    let w2 = &p[at..at + width * width];
                    let b2 = &p[at + width * width..at + width * width + width];
                    acts.h2.resize(width, 0.0);
                    lanes.dots(w2, &acts.h1, b2, &mut acts.h2);
                    lanes.relu(&mut acts.h2);
                    at += width * width + width;
                    &acts.h2
                } else {
                    &acts.h1
                };
                let wo = &p[at..at + a_count * width];
                let bo = &p[at + a_count * width..at + a_count * width + a_count];
                lanes.dots(wo, last, bo, &mut acts.q);
            }
        }
    }

    /// Q(input, a) of `pass` alone, with the hidden activations left in `acts` for
    /// [`Self::sgd`] (one-hidden-layer MLPs compute only output `a` and leave `acts.q` as it
    /// was; other networks run the whole pass).
    #[inline(always)]
    pub fn forward_one<L: Lanes>(
        &self,
        lanes: L,
        pass: &Pass,
        a: usize,
        p: &[f32],
        acts: &mut Acts,
    ) -> f32 {
        match self.network {
            Network::Mlp { width, depth: 1 } => {
                let offset = pass.offset as usize;
                let p = &p[offset..offset + pass.size as usize];
                let (idx, val) = self.features(pass);
                acts.h1.resize(width, 0.0);
                lanes.mlp1_forward_one(self.mlp1(pass, idx, val), p, &mut acts.h1, a)
            }
            _ => {
                self.forward(lanes, pass, p, acts);
                acts.q[a]
            }
        }
    }

    /// One SGD step on ½(Q(input, a) − y)² for `pass`'s unit at its input, where `delta` =
    /// Q(input, a) − y and `acts` holds the forward pass (whole or one output) of `pass`; the
    /// gradient's norm is clipped to `clip`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn sgd<L: Lanes>(
        &self,
        lanes: L,
        pass: &Pass,
        action: usize,
        delta: f32,
        lr: f32,
        clip: Option<f32>,
        p: &mut [f32],
        acts: &mut Acts,
    ) {
        let (offset, in_dim) = (pass.offset as usize, pass.in_dim as usize);
        let p = &mut p[offset..offset + pass.size as usize];
        let input = pass.input as usize;
        let a_count = self.actions;
        match self.network {
            Network::Tabular => {
                let g = match clip {
                    Some(c) => delta.clamp(-c, c),
                    None => delta,
                };
                self.sub_stored(&mut p[input * a_count + action], lr * g);
            }
            Network::Mlp { width, depth: 1 } if clip.is_none() && self.weights == Weights::F32 => {
                let (idx, val) = self.features(pass);
                let net = self.mlp1(pass, idx, val);
                debug_assert_eq!(acts.h1.len(), width, "the forward pass at this input");
                acts.g1.resize(width, 0.0);
                lanes.mlp1_step(net, p, &acts.h1, &mut acts.g1, action, delta, lr);
            }
            Network::Mlp { width, depth } => {
                let (idx, val) = self.features(pass);
                let out_at = in_dim * width + width + (depth - 1) * (width * width + width);
                let last: &[f32] = if depth == 2 { &acts.h2 } else { &acts.h1 };
                // Back through the output row of `action` into the last hidden layer.
                let wo_row = &p[out_at + action * width..out_at + (action + 1) * width];
                acts.g1.resize(width, 0.0);
                lanes.relu_grad(&mut acts.g1, wo_row, last, delta);
                let clipping = clip.is_some();
                let mut norm_sq = if clipping {
                    delta * delta * (lanes.dot(last, last) + 1.0)
                } else {
                    0.0
                };
                if depth == 2 {
                    // g1 is the gradient at layer 2's pre-activation; take it to layer 1.
                    let w2_at = in_dim * width + width;
                    if clipping {
                        norm_sq +=
                            lanes.dot(&acts.g1, &acts.g1) * (lanes.dot(&acts.h1, &acts.h1) + 1.0);
                    }
                    acts.g2.clear();
                    acts.g2.resize(width, 0.0);
                    for (k, &g) in acts.g1.iter().enumerate() {
                        if g != 0.0 {
                            let row = &p[w2_at + k * width..w2_at + (k + 1) * width];
                            lanes.add_scaled(&mut acts.g2, row, g);
                        }
                    }
                    for (o, &h) in acts.g2.iter_mut().zip(&acts.h1) {
                        if h <= 0.0 {
                            *o = 0.0;
                        }
                    }
                    std::mem::swap(&mut acts.g1, &mut acts.g2);
                    // Now g1 = gradient at layer 1's pre-activation, g2 = at layer 2's.
                }
                let scale = match clip {
                    Some(c) => {
                        let x_sq: f32 = val.iter().map(|v| v * v).sum();
                        norm_sq += lanes.dot(&acts.g1, &acts.g1) * (x_sq + 1.0);
                        if norm_sq.sqrt() > c {
                            c / norm_sq.sqrt()
                        } else {
                            1.0
                        }
                    }
                    None => 1.0,
                };
                let step = lr * scale;
                // Output layer. Every write goes through the parameter storage.
                let row = &mut p[out_at + action * width..out_at + (action + 1) * width];
                lanes.sub_scaled(row, last, step * delta);
                self.stored(row);
                self.sub_stored(&mut p[out_at + a_count * width + action], step * delta);
                if depth == 2 {
                    let w2_at = in_dim * width + width;
                    for (k, &g) in acts.g2.iter().enumerate() {
                        if g != 0.0 {
                            let row = &mut p[w2_at + k * width..w2_at + (k + 1) * width];
                            lanes.sub_scaled(row, &acts.h1, step * g);
                            self.stored(row);
                            self.sub_stored(&mut p[w2_at + width * width + k], step * g);
                        }
                    }
                }
                // First layer: only the active input columns (their indices are distinct, so
                // rounding each after the whole step is rounding it after its own update).
                let (w1, rest) = p.split_at_mut(in_dim * width);
                let b1 = &mut rest[..width];
                lanes.sparse_step(w1, b1, &acts.g1, step, idx, val);
                if self.weights != Weights::F32 {
                    for &j in idx {
                        self.stored(&mut w1[j as usize * width..(j as usize + 1) * width]);
                    }
                    self.stored(b1);
                }
            }
        }
    }
}

/// The index of the largest value (the first on ties).
#[inline]
pub fn argmax(q: &[f32]) -> usize {
    let mut best = 0;
    for (a, &v) in q.iter().enumerate().skip(1) {
        if v > q[best] {
            best = a;
        }
    }
    best
}

/// The largest value.
#[inline]
pub fn max(q: &[f32]) -> f32 {
    q.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::Portable;
    use crate::model::synthetic::Synthetic;

    /// Embedding vectors and initial weights come from streams of their own: with the
    /// embedding seed equal to the run seed, instance 0's first weight column is not a
    /// multiple of unit 0's vector for its first input, as it was when both were drawn
    /// under one tag.
    #[test]
    fn embeddings_and_initial_weights_draw_apart() {
        let model = Synthetic::default().build().unwrap();
        let (d, seed) = (8, 1);
        let layout = NetLayout::new(
            &model.space(),
            model.actions,
            Mode::Icq,
            Network::Mlp { width: d, depth: 1 },
            Encoding::Embed { d, seed },
        );
        let mut params = vec![0.0; layout.params];
        layout.init(seed, 0, &mut params);
        let ratios: Vec<f32> = (0..d).map(|j| params[j] / layout.feat_val[j]).collect();
        let spread = ratios
            .iter()
            .fold(0.0f32, |m, r| m.max((r - ratios[0]).abs()));
        assert!(spread > 0.1, "{ratios:?}");
    }

    /// The AVX2 build of the initial parameters is the portable one, bit for bit.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn init_builds_agree() {
        let Some(wide) = crate::lanes::Avx2::for_test() else {
            return;
        };
        let model = Synthetic::default().build().unwrap();
        let space = model.space();
        for depth in [1, 2] {
            let network = Network::Mlp { width: 24, depth };
            let layout =
                NetLayout::new(&space, model.actions, Mode::Icq, network, Encoding::Onehot);
            for instance in [0, 7] {
                let mut a = vec![f32::NAN; layout.params];
                let mut b = a.clone();
                layout.init_with(Portable, 3, instance, &mut a);
                layout.init_with(wide, 3, instance, &mut b);
                assert!(a.iter().any(|&x| x != 0.0));
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "depth {depth}, instance {instance}");
            }
        }
    }
}
