//! Philox4x32-10, the one random number generator of icq, and the conversions from its raw
//! `u32` outputs to the draws every backend makes.
//!
//! Streams are keyed by `(seed, instance)` and counted by `(epoch, draw)` (DESIGN §5): the
//! `i`-th draw of epoch `k` of instance `b` is word `i % 4` of
//! `philox([i / 4, k, tag, seed_hi], [b, seed_lo])`. Nothing depends on how many draws were
//! made before, so any backend can reproduce any draw.
//!
//! Discrete events never depend on floating point: a categorical draw compares the raw `u32`
//! with a cumulative `u32` table ([`CdfTable`]), a geometric duration stops after a step when
//! the raw `u32` falls below `⌊q·2³²⌋`. Each raw word first passes [`clamp_u32`], so a
//! threshold saturated at `u32::MAX` is never crossed and a zero-probability outcome can never
//! be drawn.

use std::convert::Infallible;

use rand::{SeedableRng, TryRng};

use crate::lanes::{Lanes, Portable};

/// Philox4x32's round multipliers.
pub const PHILOX_M: [u32; 2] = [0xD251_1F53, 0xCD9E_8D57];
/// Philox4x32's key increments (Weyl constants).
pub const PHILOX_W: [u32; 2] = [0x9E37_79B9, 0xBB67_AE85];
const M0: u32 = PHILOX_M[0];
const M1: u32 = PHILOX_M[1];
const W0: u32 = PHILOX_W[0];
const W1: u32 = PHILOX_W[1];

/// Stream tag of the learner's per-epoch draws.
pub const TAG_EPOCH: u32 = 0;
/// Stream tag of the draw of each instance's initial joint state.
pub const TAG_INIT: u32 = 1;
/// Stream tag of host-side uses (model builders, Monte-Carlo checks).
pub const TAG_HOST: u32 = 0xFFFF_FFFF;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32-10 block: 4 counter words and 2 key words in, 4 random words out.
#[inline(always)]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The largest raw value a discrete draw may use: `u32::MAX − 1`.
///
/// Thresholds live in `[0, 2³² − 1]`; a cumulative probability of one saturates at
/// `u32::MAX`, and a clamped draw is always below it.
#[inline(always)]
pub fn clamp_u32(u: u32) -> u32 {
    u.min(u32::MAX - 1)
}

/// A uniform `f32` in `[0, 1)` from the top 24 bits of a raw word (exact in f32).
#[inline(always)]
pub fn uniform_f32(u: u32) -> f32 {
    (u >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A uniform `f64` in `[0, 1)` from two raw words (53 bits).
#[inline(always)]
pub fn uniform_f64(lo: u32, hi: u32) -> f64 {
    let bits = (u64::from(hi) << 21) ^ u64::from(lo >> 11);
    (bits & ((1u64 << 53) - 1)) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// `⌊p·2³²⌋`, saturated to `[0, u32::MAX]`: the threshold of an event of probability `p`.
pub fn probability_threshold(p: f64) -> u32 {
    let t = (p * 4_294_967_296.0).floor();
    if t <= 0.0 {
        0
    } else if t >= 4_294_967_295.0 {
        u32::MAX
    } else {
        t as u32
    }
}

/// A categorical law as a cumulative `u32` table.
///
/// Entry `j` holds `⌊F_j·2³²⌋` where `F_j` is the probability of the outcomes `0..=j`; the draw
/// for a raw word `u` is the number of entries `j < n − 1` with `clamp_u32(u) ≥ table[j]`.
/// An outcome of probability zero has an empty interval and is never drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdfTable {
    /// Cumulative thresholds, one per outcome (the last is always `u32::MAX`).
    pub thresholds: Vec<u32>,
}

impl CdfTable {
    /// The table of the probabilities `p` (non-negative, summing to one within rounding).
    pub fn new(p: &[f64]) -> Self {
        let mut acc = 0.0;
        let mut thresholds = Vec::with_capacity(p.len());
        let last_positive = p.iter().rposition(|&w| w > 0.0).unwrap_or(0);
        for (j, &w) in p.iter().enumerate() {
            acc += w;
            thresholds.push(if j >= last_positive {
                u32::MAX
            } else {
                probability_threshold(acc)
            });
        }
        Self { thresholds }
    }

    /// The outcome selected by the raw word `u`.
    #[inline]
    pub fn sample(&self, u: u32) -> usize {
        sample_cdf(&self.thresholds, u)
    }
}

/// The outcome of a cumulative `u32` row for the raw word `u` (see [`CdfTable`]): the number
/// of thresholds at or below the clamped word. The last threshold is `u32::MAX`, which a
/// clamped word never reaches, so whole rows are counted in chunks of eight.
#[inline(always)]
pub fn sample_cdf(row: &[u32], u: u32) -> usize {
    Portable.count_at_most(row, clamp_u32(u))
}

/// The per-step stop threshold `⌊q·2³²⌋` of a geometric duration of mean `1/q`.
///
/// After each primitive step the option stops when `clamp_u32(u) < threshold`; `q = 1`
/// saturates to `u32::MAX` and always stops.
pub fn geometric_stop_threshold(mean: f64) -> u32 {
    probability_threshold(1.0 / mean)
}

/// The draws of one instance in one epoch: a counter-based cursor over its Philox stream.
///
/// Blocks are made four at a time by `L` (whose builds all give the same words).
#[derive(Clone, Debug)]
pub struct Stream<L: Lanes = Portable> {
    lanes: L,
    key: [u32; 2],
    ctr: [u32; 4],
    block: [u32; 16],
    lane: u32,
}

impl Stream {
    /// The stream of draws `(tag, epoch)` of `instance` under `seed`, starting at draw 0.
    pub fn new(seed: u64, instance: u32, epoch: u32, tag: u32) -> Self {
        Self::with_lanes(Portable, seed, instance, epoch, tag)
    }
}

impl<L: Lanes> Stream<L> {
    /// [`Stream::new`] whose blocks `lanes` makes.
    #[inline(always)]
    pub fn with_lanes(lanes: L, seed: u64, instance: u32, epoch: u32, tag: u32) -> Self {
        Self {
            lanes,
            key: [instance, seed as u32],
            ctr: [0, epoch, tag, (seed >> 32) as u32],
            block: [0; 16],
            lane: 16,
        }
    }

    /// The next raw `u32`.
    #[inline(always)]
    pub fn next_raw(&mut self) -> u32 {
        if self.lane == 16 {
            self.block = self.lanes.philox_quad(self.ctr, self.key);
            self.ctr[0] = self.ctr[0].wrapping_add(4);
            self.lane = 0;
        }
        let u = self.block[self.lane as usize];
        self.lane += 1;
        u
    }

    /// [`sample_cdf`] of `row` with the next raw word, counted with this stream's lanes.
    #[inline(always)]
    pub fn pick(&mut self, row: &[u32]) -> usize {
        let u = clamp_u32(self.next_raw());
        self.lanes.count_at_most(row, u)
    }

    /// The next three raw words, in order (one check of the block when they are all in it).
    #[inline(always)]
    pub fn next3(&mut self) -> [u32; 3] {
        if self.lane <= 13 {
            let i = self.lane as usize;
            self.lane += 3;
            [self.block[i], self.block[i + 1], self.block[i + 2]]
        } else {
            [self.next_raw(), self.next_raw(), self.next_raw()]
        }
    }

    /// The vector loops this stream counts with.
    #[inline(always)]
    pub fn lanes(&self) -> L {
        self.lanes
    }

    /// How many draws this stream has handed out.
    pub fn draws(&self) -> u64 {
        u64::from(self.ctr[0]) * 4 - u64::from(16 - self.lane)
    }
}

/// A host-side generator for model builders and Monte-Carlo checks: Philox keyed by a seed,
/// usable with every `rand` distribution.
#[derive(Clone, Debug)]
pub struct HostRng {
    stream: Stream,
}

impl HostRng {
    /// A generator for `seed`; `purpose` separates independent uses of the same seed.
    pub fn new(seed: u64, purpose: u32) -> Self {
        Self {
            stream: Stream::new(seed, purpose, 0, TAG_HOST),
        }
    }
}

impl TryRng for HostRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.stream.next_raw())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let lo = u64::from(self.stream.next_raw());
        let hi = u64::from(self.stream.next_raw());
        Ok((hi << 32) | lo)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(4) {
            let w = self.stream.next_raw().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        Ok(())
    }
}

impl SeedableRng for HostRng {
    type Seed = [u8; 8];

    fn from_seed(seed: [u8; 8]) -> Self {
        Self::new(u64::from_le_bytes(seed), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's `kat_vectors`, the three `philox4x32 10` lines (counter, key → output).
    const KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        (
            [0, 0, 0, 0],
            [0, 0],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];

    #[test]
    fn philox_matches_random123_known_answers() {
        for (ctr, key, want) in KAT {
            assert_eq!(philox4x32_10(ctr, key), want, "ctr {ctr:x?} key {key:x?}");
        }
    }

    #[test]
    fn stream_layout_is_pinned() {
        // Draw i of epoch k of instance b is word i % 4 of philox([i/4, k, tag, seed_hi], [b, seed_lo]).
        let seed = 0x0123_4567_89ab_cdef_u64;
        let mut s = Stream::new(seed, 5, 9, TAG_EPOCH);
        let draws: Vec<u32> = (0..9).map(|_| s.next_raw()).collect();
        for (i, d) in draws.iter().enumerate() {
            let block = philox4x32_10(
                [(i / 4) as u32, 9, TAG_EPOCH, 0x0123_4567],
                [5, 0x89ab_cdef],
            );
            assert_eq!(*d, block[i % 4], "draw {i}");
        }
        assert_eq!(s.draws(), 9);
    }

    #[test]
    fn three_words_at_once_are_the_next_three() {
        // Every offset within four blocks, including the ones that cross into the next four.
        for skip in 0..20 {
            let (mut one, mut three) = (
                Stream::new(3, 1, 2, TAG_EPOCH),
                Stream::new(3, 1, 2, TAG_EPOCH),
            );
            for _ in 0..skip {
                one.next_raw();
                three.next_raw();
            }
            for _ in 0..5 {
                let want = [one.next_raw(), one.next_raw(), one.next_raw()];
                assert_eq!(three.next3(), want, "after {skip} words");
                assert_eq!(three.draws(), one.draws());
            }
        }
    }

    #[test]
    fn cdf_table_never_draws_zero_probability() {
        let t = CdfTable::new(&[0.0, 0.5, 0.0, 0.5, 0.0]);
        assert_eq!(t.sample(0), 1);
        assert_eq!(t.sample(u32::MAX), 3);
        assert_eq!(t.sample(1 << 31), 3);
        assert_eq!(t.sample((1 << 31) - 1), 1);
        let one = CdfTable::new(&[1.0]);
        assert_eq!(one.sample(u32::MAX), 0);
        let last = CdfTable::new(&[0.0, 0.0, 1.0]);
        assert_eq!(last.sample(0), 2);
        assert_eq!(last.sample(u32::MAX), 2);
    }

    #[test]
    fn cdf_table_frequencies_match_probabilities() {
        let p = [0.1, 0.2, 0.3, 0.4];
        let t = CdfTable::new(&p);
        let mut s = Stream::new(42, 0, 0, TAG_HOST);
        let n = 200_000;
        let mut counts = [0usize; 4];
        for _ in 0..n {
            counts[t.sample(s.next_raw())] += 1;
        }
        for (j, &c) in counts.iter().enumerate() {
            let f = c as f64 / n as f64;
            // 5 standard errors of a binomial proportion at n = 2e5.
            let se = (p[j] * (1.0 - p[j]) / n as f64).sqrt();
            assert!((f - p[j]).abs() < 5.0 * se, "outcome {j}: {f} vs {}", p[j]);
        }
    }

    #[test]
    fn geometric_threshold_saturates_at_mean_one() {
        assert_eq!(geometric_stop_threshold(1.0), u32::MAX);
        assert!(clamp_u32(u32::MAX) < geometric_stop_threshold(1.0));
        assert_eq!(geometric_stop_threshold(4.0), 1 << 30);
    }

    #[test]
    fn uniform_conversions_stay_in_unit_interval() {
        assert_eq!(uniform_f32(0), 0.0);
        assert!(uniform_f32(u32::MAX) < 1.0);
        assert!(uniform_f64(u32::MAX, u32::MAX) < 1.0);
    }
}
