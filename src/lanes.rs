//! The vector loops of the CPU learner (and its Philox blocks), in two builds that perform the same IEEE operations
//! in the same order: [`Portable`] (plain Rust) and, on x86-64 CPUs that have it, [`Avx2`]
//! (intrinsics). Rust never contracts a multiply and an add into one fused operation, so
//! results are bit-identical whichever build runs.
//!
//! Every loop works on chunks of eight `f32` lanes; a dot product keeps eight partial sums
//! (lane j sums the products at i ≡ j mod 8) and adds them as ((a₀+a₄)+(a₂+a₆)) +
//! ((a₁+a₅)+(a₃+a₇)).
//!
//! "Bit-identical" covers every non-NaN result: where a NaN arises, the two builds may give it a
//! different sign or payload, which Rust leaves unspecified.

use crate::rng::philox4x32_10;

/// The vector loops of the forward pass and the SGD step.
pub trait Lanes: Copy + Send + Sync {
    /// Σ a·b (over the shorter length).
    fn dot(self, a: &[f32], b: &[f32]) -> f32;
    /// `out[r] = bias[r] + dot(rows[r·n .. (r+1)·n], x)` for every output `r`, with
    /// `n = x.len()` and the dot product of [`Lanes::dot`].
    fn dots(self, rows: &[f32], x: &[f32], bias: &[f32], out: &mut [f32]) {
        let n = x.len();
        for ((o, &b), row) in out.iter_mut().zip(bias).zip(rows.chunks_exact(n.max(1))) {
            *o = b + self.dot(row, x);
        }
    }
    /// `out ← relu(bias + Σ_f val[f]·w[idx[f]·n .. (idx[f]+1)·n])` with `n = out.len()`: a
    /// hidden layer over sparse features, the terms added in feature order.
    fn sparse_relu(self, out: &mut [f32], bias: &[f32], w: &[f32], idx: &[u32], val: &[f32]) {
        let n = out.len();
        out.copy_from_slice(&bias[..n]);
        for (&j, &v) in idx.iter().zip(val) {
            self.add_scaled(out, &w[j as usize * n..(j as usize + 1) * n], v);
        }
        self.relu(out);
    }
    /// The SGD step of [`Lanes::sparse_relu`]'s weights for the gradient `g` at its output:
    /// `w[idx[f]·n ..] ← w[idx[f]·n ..] − (s·g)·val[f]` for every feature in order, then
    /// `bias ← bias − s·g`, with `n = g.len()`.
    fn sparse_step(
        self,
        w: &mut [f32],
        bias: &mut [f32],
        g: &[f32],
        s: f32,
        idx: &[u32],
        val: &[f32],
    ) {
        let n = g.len();
        for (&j, &v) in idx.iter().zip(val) {
            self.sub_scaled_by(&mut w[j as usize * n..(j as usize + 1) * n], g, s, v);
        }
        self.sub_scaled(&mut bias[..n], g, s);
    }
    /// The forward pass of a one-hidden-layer MLP whose unit block is `p` (laid out as
    /// [`Mlp1`] says), with `n = h.len()` hidden units and `q.len()` outputs:
    /// `h ← sparse_relu(b1, W1, features)`, then `q ← dots(Wo, h, bo)`.
    fn mlp1_forward(self, net: Mlp1<'_>, p: &[f32], h: &mut [f32], q: &mut [f32]) {
        forward_in_parts(self, net, p, h, q);
    }
    /// [`Lanes::mlp1_forward`] for output `a` alone: `h` as there, and `q[a]` returned (the
    /// same bits as that pass's `q[a]`).
    fn mlp1_forward_one(self, net: Mlp1<'_>, p: &[f32], h: &mut [f32], a: usize) -> f32 {
        forward_one_in_parts(self, net, p, h, a)
    }
    /// The SGD step of [`Lanes::mlp1_forward`]'s network on ½(Q(·, a) − y)² without clipping,
    /// for `delta` = Q(·, a) − y and step size `lr`, with `h` the forward pass: with the
    /// gradient `g = relu_grad(Wo[a], h, delta)`, `Wo[a] ← Wo[a] − (lr·delta)·h`,
    /// `bo[a] ← bo[a] − lr·delta`, then `sparse_step(W1, b1, g, lr, features)`. `g` is scratch
    /// of at least `h`'s length (what it holds afterwards is unspecified).
    #[allow(clippy::too_many_arguments)]
    fn mlp1_step(
        self,
        net: Mlp1<'_>,
        p: &mut [f32],
        h: &[f32],
        g: &mut [f32],
        a: usize,
        delta: f32,
        lr: f32,
    ) {
        step_in_parts(self, net, p, h, g, a, delta, lr);
    }
    /// y ← y + s·x.
    fn add_scaled(self, y: &mut [f32], x: &[f32], s: f32);
    /// y ← y − s·x.
    fn sub_scaled(self, y: &mut [f32], x: &[f32], s: f32);
    /// y ← y − (s·g)·v.
    fn sub_scaled_by(self, y: &mut [f32], g: &[f32], s: f32, v: f32);
    /// y ← y if y > 0 else 0 (NaN and −0 become +0).
    fn relu(self, y: &mut [f32]);
    /// g ← d·w where h > 0, else 0.
    fn relu_grad(self, g: &mut [f32], w: &[f32], h: &[f32], d: f32);
    /// How many entries of `row` are at most `u`.
    fn count_at_most(self, row: &[u32], u: u32) -> usize;
    /// [`Lanes::count_at_most`] of a row of `CH` whole chunks.
    fn count_chunks<const CH: usize>(self, row: &[[u32; 8]; CH], u: u32) -> usize {
        self.count_at_most(row.as_flattened(), u)
    }
    /// The Philox4x32-10 blocks of counters `ctr` to `ctr` + 3 (first word, wrapping), in that
    /// order.
    fn philox_quad(self, ctr: [u32; 4], key: [u32; 2]) -> [u32; 16];
}

/// The shape of a one-hidden-layer MLP unit and the sparse input of one pass.
///
/// Its parameter block holds W1 as `in_dim` columns of `n` (column j contiguous), b1 (`n`),
/// Wo as `actions` rows of `n`, then bo (`actions`); `n` is the hidden width.
#[derive(Clone, Copy, Debug)]
pub struct Mlp1<'a> {
    /// Input columns of W1.
    pub in_dim: usize,
    /// Outputs A.
    pub actions: usize,
    /// The input's feature columns, each below `in_dim`.
    pub idx: &'a [u32],
    /// The input's feature values.
    pub val: &'a [f32],
}

/// [`Lanes::mlp1_forward`] as [`Lanes::sparse_relu`], then [`Lanes::dots`].
#[inline(always)]
fn forward_in_parts<L: Lanes>(lanes: L, net: Mlp1<'_>, p: &[f32], h: &mut [f32], q: &mut [f32]) {
    let n = h.len();
    let (w1, rest) = p.split_at(net.in_dim * n);
    let (b1, rest) = rest.split_at(n);
    let (wo, rest) = rest.split_at(net.actions * n);
    lanes.sparse_relu(h, b1, w1, net.idx, net.val);
    lanes.dots(wo, h, &rest[..net.actions], q);
}

/// [`Lanes::mlp1_forward_one`] as [`Lanes::sparse_relu`], then row `a` of [`Lanes::dots`].
#[inline(always)]
fn forward_one_in_parts<L: Lanes>(
    lanes: L,
    net: Mlp1<'_>,
    p: &[f32],
    h: &mut [f32],
    a: usize,
) -> f32 {
    let n = h.len();
    let (w1, rest) = p.split_at(net.in_dim * n);
    let (b1, rest) = rest.split_at(n);
    let (wo, bo) = rest.split_at(net.actions * n);
    lanes.sparse_relu(h, b1, w1, net.idx, net.val);
    let mut q = [0.0];
    lanes.dots(&wo[a * n..(a + 1) * n], h, &bo[a..=a], &mut q);
    q[0]
}

/// [`Lanes::mlp1_step`] as [`Lanes::relu_grad`], [`Lanes::sub_scaled`], the bias, then
/// [`Lanes::sparse_step`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step_in_parts<L: Lanes>(
    lanes: L,
    net: Mlp1<'_>,
    p: &mut [f32],
    h: &[f32],
    g: &mut [f32],
    a: usize,
    delta: f32,
    lr: f32,
) {
    let n = h.len();
    let g = &mut g[..n];
    let (w1, rest) = p.split_at_mut(net.in_dim * n);
    let (b1, rest) = rest.split_at_mut(n);
    let (wo, bo) = rest.split_at_mut(net.actions * n);
    let row = &mut wo[a * n..(a + 1) * n];
    lanes.relu_grad(g, row, h, delta);
    lanes.sub_scaled(row, h, lr * delta);
    bo[a] -= lr * delta;
    lanes.sparse_step(w1, b1, g, lr, net.idx, net.val);
}

/// The build that runs on any CPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

#[inline(always)]
fn reduce8(acc: [f32; 8]) -> f32 {
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

impl Lanes for Portable {
    #[inline(always)]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0.0f32; 8];
        let (ac, at) = a.as_chunks::<8>();
        let (bc, bt) = b.as_chunks::<8>();
        for (x, y) in ac.iter().zip(bc) {
            for j in 0..8 {
                acc[j] += x[j] * y[j];
            }
        }
        for (j, (x, y)) in at.iter().zip(bt).enumerate() {
            acc[j] += x * y;
        }
        reduce8(acc)
    }

    #[inline(always)]
    fn add_scaled(self, y: &mut [f32], x: &[f32], s: f32) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += s * x;
        }
    }

    #[inline(always)]
    fn sub_scaled(self, y: &mut [f32], x: &[f32], s: f32) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y -= s * x;
        }
    }

    #[inline(always)]
    fn sub_scaled_by(self, y: &mut [f32], g: &[f32], s: f32, v: f32) {
        for (y, &g) in y.iter_mut().zip(g) {
            *y -= s * g * v;
        }
    }

    #[inline(always)]
    fn relu(self, y: &mut [f32]) {
        for y in y {
            *y = if *y > 0.0 { *y } else { 0.0 };
        }
    }

    #[inline(always)]
    fn relu_grad(self, g: &mut [f32], w: &[f32], h: &[f32], d: f32) {
        for ((g, &w), &h) in g.iter_mut().zip(w).zip(h) {
            *g = if h > 0.0 { d * w } else { 0.0 };
        }
    }

    #[inline(always)]
    fn count_at_most(self, row: &[u32], u: u32) -> usize {
        let (chunks, tail) = row.as_chunks::<8>();
        let mut count = [0u32; 8];
        for chunk in chunks {
            for j in 0..8 {
                count[j] += u32::from(u >= chunk[j]);
            }
        }
        let mut n: u32 = count.iter().sum();
        for &t in tail {
            n += u32::from(u >= t);
        }
        n as usize
    }

    #[inline(always)]
    fn philox_quad(self, ctr: [u32; 4], key: [u32; 2]) -> [u32; 16] {
        let mut out = [0; 16];
        for (i, block) in out.chunks_exact_mut(4).enumerate() {
            let c = [ctr[0].wrapping_add(i as u32), ctr[1], ctr[2], ctr[3]];
            block.copy_from_slice(&philox4x32_10(c, key));
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
pub use avx2::Avx2;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{
        forward_in_parts, forward_one_in_parts, reduce8, step_in_parts, Lanes, Mlp1, Portable,
    };
    use crate::rng::{PHILOX_M, PHILOX_W};

    /// The AVX2 build; a value exists only on a CPU that has AVX2 (and `popcnt`, which every
    /// AVX2 CPU has).
    #[derive(Clone, Copy, Debug)]
    pub struct Avx2(());

    impl Avx2 {
        /// The AVX2 build, if this CPU has it.
        pub fn detect() -> Option<Self> {
            let found =
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt");
            found.then_some(Self(()))
        }

        /// The AVX2 build for a test that compares it with the portable one: on a CPU
        /// without AVX2, `None` after one line saying the comparison is skipped, or a panic
        /// where `ICQ_REQUIRE_AVX2=1` (set by CI on x86-64), so that a comparison of the
        /// portable build with itself never passes for one of the two.
        pub fn for_test() -> Option<Self> {
            let found = Self::detect();
            if found.is_none() {
                let required = std::env::var("ICQ_REQUIRE_AVX2").is_ok_and(|v| v == "1");
                assert!(!required, "ICQ_REQUIRE_AVX2=1, but this CPU has no AVX2");
                eprintln!("skipped: this CPU has no AVX2");
            }
            found
        }
    }

    // The loops run over whole chunks with intrinsics and hand the tail (fewer than eight
    // lanes) to the portable loop, which does the same per-lane operation.

    #[target_feature(enable = "avx2")]
    #[inline]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (ac, at) = a[..n].as_chunks::<8>();
        let (bc, bt) = b[..n].as_chunks::<8>();
        let mut acc = _mm256_setzero_ps();
        for (x, y) in ac.iter().zip(bc) {
            // SAFETY: each chunk is eight readable f32s.
            let (x, y) = unsafe { (_mm256_loadu_ps(x.as_ptr()), _mm256_loadu_ps(y.as_ptr())) };
            acc = _mm256_add_ps(acc, _mm256_mul_ps(x, y));
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds eight f32s.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        for (j, (x, y)) in at.iter().zip(bt).enumerate() {
            lanes[j] += x * y;
        }
        reduce8(lanes)
    }

    /// The lane sums of four accumulators, each in the order of `reduce8`: halves added, then
    /// (0+2, 1+3) within each half, then those two.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn reduce_four(acc: [__m256; 4]) -> __m128 {
        let half = |a: __m256| _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let (h0, h1, h2, h3) = (half(acc[0]), half(acc[1]), half(acc[2]), half(acc[3]));
        let t01 = _mm_add_ps(_mm_movelh_ps(h0, h1), _mm_movehl_ps(h1, h0));
        let t23 = _mm_add_ps(_mm_movelh_ps(h2, h3), _mm_movehl_ps(h3, h2));
        _mm_hadd_ps(t01, t23)
    }

    /// Rows `r .. r + G` (G ≤ 4) of [`dots`]: each chunk of `x` loaded once for the G rows,
    /// then the G accumulators reduced together in the order of `reduce8`: halves added, then
    /// (0+2, 1+3) within each half, then those two.
    ///
    /// # Safety
    /// AVX2; `n = x.len()` is a multiple of 8, rows `r .. r + G` lie in `rows`, and
    /// `r + G ≤ bias.len(), out.len()`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn dots_block<const G: usize>(
        r: usize,
        rows: &[f32],
        x: &[f32],
        bias: &[f32],
        out: &mut [f32],
    ) {
        let n = x.len();
        // SAFETY: every load reads eight f32s of `x` or of rows r .. r + G (the contract).
        unsafe {
            let mut acc = [_mm256_setzero_ps(); 4];
            for c in (0..n).step_by(8) {
                let xv = _mm256_loadu_ps(x.as_ptr().add(c));
                for (k, a) in acc.iter_mut().enumerate().take(G) {
                    let w = _mm256_loadu_ps(rows.as_ptr().add((r + k) * n + c));
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(w, xv));
                }
            }
            let sums = reduce_four(acc);
            let mut b = [0.0f32; 4];
            b[..G].copy_from_slice(&bias[r..r + G]);
            let mut o = [0.0f32; 4];
            _mm_storeu_ps(o.as_mut_ptr(), _mm_add_ps(_mm_loadu_ps(b.as_ptr()), sums));
            out[r..r + G].copy_from_slice(&o[..G]);
        }
    }

    /// Four rows at a time sharing each chunk of `x`; rows of whole chunks only (else the
    /// portable loop).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn dots(rows: &[f32], x: &[f32], bias: &[f32], out: &mut [f32]) {
        let n = x.len();
        if n == 0 || !n.is_multiple_of(8) {
            for ((o, &b), row) in out.iter_mut().zip(bias).zip(rows.chunks_exact(n.max(1))) {
                *o = b + dot(row, x);
            }
            return;
        }
        let mut count = out.len().min(bias.len());
        if count.checked_mul(n).is_none_or(|len| len > rows.len()) {
            count = rows.len() / n;
        }
        let mut r = 0;
        // SAFETY: each block's rows end at or before `count`, which fits rows, bias and out.
        unsafe {
            while r + 4 <= count {
                dots_block::<4>(r, rows, x, bias, out);
                r += 4;
            }
            match count - r {
                3 => dots_block::<3>(r, rows, x, bias, out),
                2 => dots_block::<2>(r, rows, x, bias, out),
                1 => dots_block::<1>(r, rows, x, bias, out),
                _ => {}
            }
        }
    }

    /// Whether `sparse_relu`/`sparse_step` can take the vector path: whole chunks, and every
    /// column `idx[f]` of `n` values inside `w` (of `len` values).
    fn sparse_fits(idx: &[u32], n: usize, bias: usize, len: usize) -> bool {
        if n == 0 || !n.is_multiple_of(8) || bias < n {
            return false;
        }
        idx.iter().all(|&j| {
            (j as usize)
                .checked_mul(n)
                .and_then(|start| start.checked_add(n))
                .is_some_and(|end| end <= len)
        })
    }

    /// `C` chunks of [`sparse_relu`] starting at value `o` of every column, in registers.
    ///
    /// # Safety
    /// AVX2, and [`sparse_fits`] holds with `o + 8·C ≤ n`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn sparse_relu_block<const C: usize>(
        o: usize,
        out: &mut [f32],
        bias: &[f32],
        w: &[f32],
        feats: (&[u32], &[f32]),
    ) {
        let n = out.len();
        // SAFETY: o + 8·C ≤ n ≤ bias.len() and idx[f]·n + n ≤ w.len() (the caller's
        // contract), so every load and store below stays inside its slice.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); C];
            for (c, a) in acc.iter_mut().enumerate() {
                *a = _mm256_loadu_ps(bias.as_ptr().add(o + 8 * c));
            }
            for (&j, &v) in feats.0.iter().zip(feats.1) {
                let col = w.as_ptr().add(j as usize * n + o);
                let v = _mm256_set1_ps(v);
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(v, _mm256_loadu_ps(col.add(8 * c))));
                }
            }
            let zero = _mm256_setzero_ps();
            for (c, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add(o + 8 * c), _mm256_max_ps(*a, zero));
            }
        }
    }

    /// Blocks of four chunks kept in registers across the features, then single chunks.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn sparse_relu(out: &mut [f32], bias: &[f32], w: &[f32], idx: &[u32], val: &[f32]) {
        let n = out.len();
        if !sparse_fits(idx, n, bias.len(), w.len()) {
            return Portable.sparse_relu(out, bias, w, idx, val);
        }
        let mut o = 0;
        // SAFETY: `sparse_fits` holds, and each block ends at or before n.
        unsafe {
            while o + 32 <= n {
                sparse_relu_block::<4>(o, out, bias, w, (idx, val));
                o += 32;
            }
            while o < n {
                sparse_relu_block::<1>(o, out, bias, w, (idx, val));
                o += 8;
            }
        }
    }

    /// `C` chunks of [`sparse_step`] starting at value `o` of every column.
    ///
    /// # Safety
    /// AVX2, and [`sparse_fits`] holds with `o + 8·C ≤ n = g.len()`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn sparse_step_block<const C: usize>(
        o: usize,
        w: &mut [f32],
        bias: &mut [f32],
        g: &[f32],
        s: f32,
        feats: (&[u32], &[f32]),
    ) {
        let n = g.len();
        // SAFETY: as in `sparse_relu_block`.
        unsafe {
            let sv = _mm256_set1_ps(s);
            let mut sg = [_mm256_setzero_ps(); C];
            for (c, x) in sg.iter_mut().enumerate() {
                *x = _mm256_mul_ps(sv, _mm256_loadu_ps(g.as_ptr().add(o + 8 * c)));
            }
            for (&j, &v) in feats.0.iter().zip(feats.1) {
                let col = w.as_mut_ptr().add(j as usize * n + o);
                let v = _mm256_set1_ps(v);
                for (c, x) in sg.iter().enumerate() {
                    let y = col.add(8 * c);
                    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_loadu_ps(y), _mm256_mul_ps(*x, v)));
                }
            }
            for (c, x) in sg.iter().enumerate() {
                let b = bias.as_mut_ptr().add(o + 8 * c);
                _mm256_storeu_ps(b, _mm256_sub_ps(_mm256_loadu_ps(b), *x));
            }
        }
    }

    /// Blocks of four chunks, then single chunks, as [`sparse_relu`].
    #[target_feature(enable = "avx2")]
    #[inline]
    fn sparse_step(w: &mut [f32], bias: &mut [f32], g: &[f32], s: f32, idx: &[u32], val: &[f32]) {
        let n = g.len();
        if !sparse_fits(idx, n, bias.len(), w.len()) {
            return Portable.sparse_step(w, bias, g, s, idx, val);
        }
        let mut o = 0;
        // SAFETY: `sparse_fits` holds, and each block ends at or before n.
        unsafe {
            while o + 32 <= n {
                sparse_step_block::<4>(o, w, bias, g, s, (idx, val));
                o += 32;
            }
            while o < n {
                sparse_step_block::<1>(o, w, bias, g, s, (idx, val));
                o += 8;
            }
        }
    }

    /// Whether a unit block of `len` values holds the layout of [`Mlp1`] with width `n` and `a`
    /// is one of its outputs. (The kernels check each feature column as they reach it: a column
    /// outside the `in_dim` panics, as the portable loops' slicing does.)
    fn mlp1_fits(net: &Mlp1<'_>, n: usize, len: usize, a: usize) -> bool {
        let need = (net.in_dim.checked_add(1))
            .and_then(|rows| rows.checked_add(net.actions))
            .and_then(|rows| rows.checked_mul(n))
            .and_then(|values| values.checked_add(net.actions));
        need.is_some_and(|need| need <= len) && a < net.actions
    }

    /// [`Lanes::mlp1_forward`] at width `n = 8·C`: the hidden layer, as `C` vectors from
    /// [`mlp1_hidden_c`], feeds every output row without a round trip through `h`.
    ///
    /// # Safety
    /// AVX2, `h.len() = 8·C`, and [`mlp1_fits`] holds for `p.len()` (with `a = 0`).
    /// (Each feature column is checked here.)
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn mlp1_forward_c<const C: usize>(
        net: Mlp1<'_>,
        p: &[f32],
        h: &mut [f32],
        q: &mut [f32],
    ) {
        // SAFETY: passed on (the same contract).
        let x = unsafe { mlp1_hidden_c::<C>(&net, p, h) };
        let n = 8 * C;
        let a_count = net.actions;
        // SAFETY: the block holds A rows of n after b1, then A biases (the contract).
        unsafe {
            let wo = p.as_ptr().add(net.in_dim * n + n);
            let bo = wo.add(a_count * n);
            let rows = a_count.min(q.len());
            let mut r = 0;
            while r + 4 <= rows {
                mlp1_rows::<C, 4>(&x, wo.add(r * n), bo.add(r), q.as_mut_ptr().add(r));
                r += 4;
            }
            match rows - r {
                3 => mlp1_rows::<C, 3>(&x, wo.add(r * n), bo.add(r), q.as_mut_ptr().add(r)),
                2 => mlp1_rows::<C, 2>(&x, wo.add(r * n), bo.add(r), q.as_mut_ptr().add(r)),
                1 => mlp1_rows::<C, 1>(&x, wo.add(r * n), bo.add(r), q.as_mut_ptr().add(r)),
                _ => {}
            }
        }
    }

    /// [`Lanes::mlp1_forward_one`] at width `n = 8·C`.
    ///
    /// # Safety
    /// AVX2, `h.len() = 8·C`, and [`mlp1_fits`] holds for `p.len()` and `a`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn mlp1_forward_one_c<const C: usize>(
        net: Mlp1<'_>,
        p: &[f32],
        h: &mut [f32],
        a: usize,
    ) -> f32 {
        // SAFETY: passed on (the same contract).
        let x = unsafe { mlp1_hidden_c::<C>(&net, p, h) };
        let n = 8 * C;
        let mut q = [0.0f32];
        // SAFETY: row a and bias a lie in the block (a < A, the contract).
        unsafe {
            let wo = p.as_ptr().add(net.in_dim * n + n);
            let bo = wo.add(net.actions * n);
            mlp1_rows::<C, 1>(&x, wo.add(a * n), bo.add(a), q.as_mut_ptr());
        }
        q[0]
    }

    /// The hidden layer of [`mlp1_forward_c`], stored to `h` and returned in registers.
    ///
    /// # Safety
    /// As [`mlp1_forward_c`].
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn mlp1_hidden_c<const C: usize>(
        net: &Mlp1<'_>,
        p: &[f32],
        h: &mut [f32],
    ) -> [__m256; C] {
        let n = 8 * C;
        // SAFETY: the block holds (in_dim + 1 + A)·n + A values and h holds n (the contract),
        // and each feature column is asserted below in_dim before its use, so every access
        // below is inside.
        unsafe {
            let w1 = p.as_ptr();
            let b1 = w1.add(net.in_dim * n);
            let mut x = [_mm256_setzero_ps(); C];
            for (c, x) in x.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(b1.add(8 * c));
            }
            for (&j, &v) in net.idx.iter().zip(net.val) {
                assert!(
                    (j as usize) < net.in_dim,
                    "feature column {j} of {}",
                    net.in_dim
                );
                let col = w1.add(j as usize * n);
                let v = _mm256_set1_ps(v);
                for (c, x) in x.iter_mut().enumerate() {
                    *x = _mm256_add_ps(*x, _mm256_mul_ps(v, _mm256_loadu_ps(col.add(8 * c))));
                }
            }
            let zero = _mm256_setzero_ps();
            for (c, x) in x.iter_mut().enumerate() {
                *x = _mm256_max_ps(*x, zero);
                _mm256_storeu_ps(h.as_mut_ptr().add(8 * c), *x);
            }
            x
        }
    }

    /// `G` (≤ 4) output rows of [`mlp1_forward_c`]: `q[k] = bias[k] + dot(rows[k], x)`,
    /// reduced as [`dots_block`] does.
    ///
    /// # Safety
    /// AVX2; `rows` holds `G` rows of `8·C` values, `bias` and `q` hold `G` values.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn mlp1_rows<const C: usize, const G: usize>(
        x: &[__m256; C],
        rows: *const f32,
        bias: *const f32,
        q: *mut f32,
    ) {
        // SAFETY: the contract.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); 4];
            for (c, &xc) in x.iter().enumerate() {
                for (k, acc) in acc.iter_mut().enumerate().take(G) {
                    let w = _mm256_loadu_ps(rows.add(k * 8 * C + 8 * c));
                    *acc = _mm256_add_ps(*acc, _mm256_mul_ps(w, xc));
                }
            }
            let mut b = [0.0f32; 4];
            std::ptr::copy_nonoverlapping(bias, b.as_mut_ptr(), G);
            let mut o = [0.0f32; 4];
            _mm_storeu_ps(
                o.as_mut_ptr(),
                _mm_add_ps(_mm_loadu_ps(b.as_ptr()), reduce_four(acc)),
            );
            std::ptr::copy_nonoverlapping(o.as_ptr(), q, G);
        }
    }

    /// [`Lanes::mlp1_step`] at width `n = 8·C`: the gradient stays in registers.
    ///
    /// # Safety
    /// AVX2, `h.len() = 8·C`, and [`mlp1_fits`] holds for `p.len()` and `a`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn mlp1_step_c<const C: usize>(
        net: Mlp1<'_>,
        p: &mut [f32],
        h: &[f32],
        a: usize,
        delta: f32,
        lr: f32,
    ) {
        let n = 8 * C;
        // SAFETY: as in `mlp1_forward_c`, with a < A.
        unsafe {
            let w1 = p.as_mut_ptr();
            let b1 = w1.add(net.in_dim * n);
            let row = b1.add(n + a * n);
            let bias = b1.add(n + net.actions * n + a);
            let (dv, sv, lv) = (
                _mm256_set1_ps(delta),
                _mm256_set1_ps(lr * delta),
                _mm256_set1_ps(lr),
            );
            let zero = _mm256_setzero_ps();
            let mut sg = [zero; C];
            for (c, sg) in sg.iter_mut().enumerate() {
                let hv = _mm256_loadu_ps(h.as_ptr().add(8 * c));
                let w = _mm256_loadu_ps(row.add(8 * c));
                let g = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(hv, zero), _mm256_mul_ps(dv, w));
                _mm256_storeu_ps(row.add(8 * c), _mm256_sub_ps(w, _mm256_mul_ps(sv, hv)));
                *sg = _mm256_mul_ps(lv, g);
            }
            *bias -= lr * delta;
            for (&j, &v) in net.idx.iter().zip(net.val) {
                assert!(
                    (j as usize) < net.in_dim,
                    "feature column {j} of {}",
                    net.in_dim
                );
                let col = w1.add(j as usize * n);
                let v = _mm256_set1_ps(v);
                for (c, sg) in sg.iter().enumerate() {
                    let y = col.add(8 * c);
                    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_loadu_ps(y), _mm256_mul_ps(*sg, v)));
                }
            }
            for (c, sg) in sg.iter().enumerate() {
                let y = b1.add(8 * c);
                _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_loadu_ps(y), *sg));
            }
        }
    }

    /// y ← y + s·x, y ← y − s·x or y ← y − (s·x)·v, chunk by chunk.
    #[derive(Clone, Copy)]
    enum Axpy {
        Add(f32),
        Sub(f32),
        SubBy(f32, f32),
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn axpy(y: &mut [f32], x: &[f32], op: Axpy) {
        let n = y.len().min(x.len());
        let (yc, yt) = y[..n].as_chunks_mut::<8>();
        let (xc, xt) = x[..n].as_chunks::<8>();
        let (s, v) = match op {
            Axpy::Add(s) | Axpy::Sub(s) => (s, 1.0),
            Axpy::SubBy(s, v) => (s, v),
        };
        let (sv, vv) = (_mm256_set1_ps(s), _mm256_set1_ps(v));
        for (y, x) in yc.iter_mut().zip(xc) {
            // SAFETY: each chunk is eight f32s.
            let (yv, xv) = unsafe { (_mm256_loadu_ps(y.as_ptr()), _mm256_loadu_ps(x.as_ptr())) };
            let out = match op {
                Axpy::Add(_) => _mm256_add_ps(yv, _mm256_mul_ps(sv, xv)),
                Axpy::Sub(_) => _mm256_sub_ps(yv, _mm256_mul_ps(sv, xv)),
                Axpy::SubBy(..) => _mm256_sub_ps(yv, _mm256_mul_ps(_mm256_mul_ps(sv, xv), vv)),
            };
            // SAFETY: as above.
            unsafe { _mm256_storeu_ps(y.as_mut_ptr(), out) };
        }
        match op {
            Axpy::Add(s) => Portable.add_scaled(yt, xt, s),
            Axpy::Sub(s) => Portable.sub_scaled(yt, xt, s),
            Axpy::SubBy(s, v) => Portable.sub_scaled_by(yt, xt, s, v),
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn relu(y: &mut [f32]) {
        let zero = _mm256_setzero_ps();
        let (yc, yt) = y.as_chunks_mut::<8>();
        for y in yc {
            // SAFETY: each chunk is eight f32s; max_ps(y, 0) is y > 0 ? y : 0.
            unsafe {
                let v = _mm256_max_ps(_mm256_loadu_ps(y.as_ptr()), zero);
                _mm256_storeu_ps(y.as_mut_ptr(), v);
            }
        }
        Portable.relu(yt);
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn relu_grad(g: &mut [f32], w: &[f32], h: &[f32], d: f32) {
        let n = g.len().min(w.len()).min(h.len());
        let (gc, gt) = g[..n].as_chunks_mut::<8>();
        let (wc, wt) = w[..n].as_chunks::<8>();
        let (hc, ht) = h[..n].as_chunks::<8>();
        let dv = _mm256_set1_ps(d);
        let zero = _mm256_setzero_ps();
        for ((g, w), h) in gc.iter_mut().zip(wc).zip(hc) {
            // SAFETY: each chunk is eight f32s.
            unsafe {
                let live = _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(h.as_ptr()), zero);
                let v = _mm256_mul_ps(dv, _mm256_loadu_ps(w.as_ptr()));
                _mm256_storeu_ps(g.as_mut_ptr(), _mm256_and_ps(live, v));
            }
        }
        Portable.relu_grad(gt, wt, ht, d);
    }

    /// Eight entries at a time: `max(u, t) = u` marks t ≤ u (as −1, subtracted from the count).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn count_at_most(row: &[u32], u: u32) -> usize {
        let (chunks, tail) = row.as_chunks::<8>();
        let mut n = 0u32;
        if !chunks.is_empty() {
            let uv = _mm256_set1_epi32(u as i32);
            let mut acc = _mm256_setzero_si256();
            for chunk in chunks {
                // SAFETY: each chunk is eight readable u32s.
                let t = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
                let le = _mm256_cmpeq_epi32(_mm256_max_epu32(uv, t), uv);
                acc = _mm256_sub_epi32(acc, le);
            }
            let s = _mm_add_epi32(
                _mm256_castsi256_si128(acc),
                _mm256_extracti128_si256::<1>(acc),
            );
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0x4E>(s));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0xB1>(s));
            n = _mm_cvtsi128_si32(s) as u32;
        }
        for &t in tail {
            n += u32::from(u >= t);
        }
        n as usize
    }

    /// [`count_at_most`] of `CH` whole chunks, unrolled: the comparison masks of four chunks
    /// are packed to one bit per threshold (which threshold lands on which bit does not
    /// matter to a count) and counted with `popcnt`, so x's next value is a few cycles after
    /// its word.
    #[target_feature(enable = "avx2,popcnt")]
    #[inline]
    fn count_chunks<const CH: usize>(row: &[[u32; 8]; CH], u: u32) -> usize {
        let uv = _mm256_set1_epi32(u as i32);
        // SAFETY: each chunk is eight readable u32s.
        let le = |c: &[u32; 8]| unsafe {
            let t = _mm256_loadu_si256(c.as_ptr().cast());
            _mm256_cmpeq_epi32(_mm256_max_epu32(uv, t), uv)
        };
        let mut n = 0;
        let mut rest = row.as_slice();
        while let [a, b, c, d, tail @ ..] = rest {
            let (ab, cd) = (
                _mm256_packs_epi32(le(a), le(b)),
                _mm256_packs_epi32(le(c), le(d)),
            );
            n += (_mm256_movemask_epi8(_mm256_packs_epi16(ab, cd)) as u32).count_ones();
            rest = tail;
        }
        if let [a, b, tail @ ..] = rest {
            // Two bits per threshold.
            n += (_mm256_movemask_epi8(_mm256_packs_epi32(le(a), le(b))) as u32).count_ones() / 2;
            rest = tail;
        }
        if let [a] = rest {
            n += (_mm256_movemask_ps(_mm256_castsi256_ps(le(a))) as u32).count_ones();
        }
        n as usize
    }

    /// Four Philox blocks in two registers, one block per 128-bit half; the two registers'
    /// rounds are independent, so they overlap. Each round multiplies words 0 and 2 of every
    /// block at once (`mul_epu32` takes the even lanes), then lays out
    /// [hi₁ ⊕ c₁ ⊕ k₀, lo₁, hi₀ ⊕ c₃ ⊕ k₁, lo₀] with an in-lane shuffle and a shift.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn philox_quad(ctr: [u32; 4], key: [u32; 2]) -> [u32; 16] {
        let word = |x: u32| x as i32;
        // SAFETY: `ctr` is four u32s and `key` two.
        let (c4, k2) = unsafe {
            (
                _mm_loadu_si128(ctr.as_ptr().cast()),
                _mm_loadl_epi64(key.as_ptr().cast()),
            )
        };
        // [ctr, ctr + 1] and [ctr + 2, ctr + 3] in word 0 (wrapping, as the callers count).
        let c4 = _mm256_broadcastsi128_si256(c4);
        let mut lo = _mm256_add_epi32(c4, _mm256_setr_epi32(0, 0, 0, 0, 1, 0, 0, 0));
        let mut hi = _mm256_add_epi32(c4, _mm256_setr_epi32(2, 0, 0, 0, 3, 0, 0, 0));
        let even =
            |a: u32, b: u32| _mm256_setr_epi32(word(a), 0, word(b), 0, word(a), 0, word(b), 0);
        // [k₀, 0, k₁, 0] in both halves.
        let mut k = _mm256_broadcastsi128_si256(_mm_unpacklo_epi32(k2, _mm_setzero_si128()));
        let m = even(PHILOX_M[0], PHILOX_M[1]);
        let w = even(PHILOX_W[0], PHILOX_W[1]);
        let round = |c: __m256i, k: __m256i| {
            // [hi₁, lo₁, hi₀, lo₀] of the products; [c₁, 0, c₃, 0].
            let products = _mm256_shuffle_epi32::<0x1B>(_mm256_mul_epu32(c, m));
            _mm256_xor_si256(products, _mm256_xor_si256(_mm256_srli_epi64::<32>(c), k))
        };
        for r in 0..10 {
            if r > 0 {
                k = _mm256_add_epi32(k, w);
            }
            (lo, hi) = (round(lo, k), round(hi, k));
        }
        let mut out = [0u32; 16];
        // SAFETY: `out` holds sixteen u32s.
        unsafe {
            _mm256_storeu_si256(out.as_mut_ptr().cast(), lo);
            _mm256_storeu_si256(out.as_mut_ptr().add(8).cast(), hi);
        }
        out
    }

    /// `$kernel::<C>(args…)` for a hidden width `$n = 8·C` with C from 1 to 8, else
    /// `$otherwise`: the one place the fused kernels' widths are listed.
    macro_rules! by_width {
        ($n:expr, $kernel:ident($($arg:expr),*), $otherwise:expr) => {
            match $n {
                8 => $kernel::<1>($($arg),*),
                16 => $kernel::<2>($($arg),*),
                24 => $kernel::<3>($($arg),*),
                32 => $kernel::<4>($($arg),*),
                40 => $kernel::<5>($($arg),*),
                48 => $kernel::<6>($($arg),*),
                56 => $kernel::<7>($($arg),*),
                64 => $kernel::<8>($($arg),*),
                _ => $otherwise,
            }
        };
    }

    impl Lanes for Avx2 {
        #[inline(always)]
        fn dot(self, a: &[f32], b: &[f32]) -> f32 {
            // SAFETY: an `Avx2` exists only where AVX2 was detected.
            unsafe { dot(a, b) }
        }

        #[inline(always)]
        fn dots(self, rows: &[f32], x: &[f32], bias: &[f32], out: &mut [f32]) {
            // SAFETY: as above.
            unsafe { dots(rows, x, bias, out) }
        }

        #[inline(always)]
        fn sparse_relu(self, out: &mut [f32], bias: &[f32], w: &[f32], idx: &[u32], val: &[f32]) {
            // SAFETY: as above.
            unsafe { sparse_relu(out, bias, w, idx, val) }
        }

        #[inline(always)]
        fn sparse_step(
            self,
            w: &mut [f32],
            bias: &mut [f32],
            g: &[f32],
            s: f32,
            idx: &[u32],
            val: &[f32],
        ) {
            // SAFETY: as above.
            unsafe { sparse_step(w, bias, g, s, idx, val) }
        }

        #[inline(always)]
        fn mlp1_forward(self, net: Mlp1<'_>, p: &[f32], h: &mut [f32], q: &mut [f32]) {
            if !mlp1_fits(&net, h.len(), p.len(), 0) {
                return forward_in_parts(self, net, p, h, q);
            }
            // SAFETY: AVX2 was detected, `mlp1_fits` holds, and each arm's C is h.len() / 8.
            unsafe {
                by_width!(
                    h.len(),
                    mlp1_forward_c(net, p, h, q),
                    forward_in_parts(self, net, p, h, q)
                )
            }
        }

        #[inline(always)]
        fn mlp1_forward_one(self, net: Mlp1<'_>, p: &[f32], h: &mut [f32], a: usize) -> f32 {
            if !mlp1_fits(&net, h.len(), p.len(), a) {
                return forward_one_in_parts(self, net, p, h, a);
            }
            // SAFETY: AVX2 was detected, `mlp1_fits` holds, and each arm's C is h.len() / 8.
            unsafe {
                by_width!(
                    h.len(),
                    mlp1_forward_one_c(net, p, h, a),
                    forward_one_in_parts(self, net, p, h, a)
                )
            }
        }

        #[inline(always)]
        fn mlp1_step(
            self,
            net: Mlp1<'_>,
            p: &mut [f32],
            h: &[f32],
            g: &mut [f32],
            a: usize,
            delta: f32,
            lr: f32,
        ) {
            if !mlp1_fits(&net, h.len(), p.len(), a) || g.len() < h.len() {
                return step_in_parts(self, net, p, h, g, a, delta, lr);
            }
            // SAFETY: as in `mlp1_forward`.
            unsafe {
                by_width!(
                    h.len(),
                    mlp1_step_c(net, p, h, a, delta, lr),
                    step_in_parts(self, net, p, h, g, a, delta, lr)
                )
            }
        }

        #[inline(always)]
        fn add_scaled(self, y: &mut [f32], x: &[f32], s: f32) {
            // SAFETY: as above.
            unsafe { axpy(y, x, Axpy::Add(s)) }
        }

        #[inline(always)]
        fn sub_scaled(self, y: &mut [f32], x: &[f32], s: f32) {
            // SAFETY: as above.
            unsafe { axpy(y, x, Axpy::Sub(s)) }
        }

        #[inline(always)]
        fn sub_scaled_by(self, y: &mut [f32], g: &[f32], s: f32, v: f32) {
            // SAFETY: as above.
            unsafe { axpy(y, g, Axpy::SubBy(s, v)) }
        }

        #[inline(always)]
        fn relu(self, y: &mut [f32]) {
            // SAFETY: as above.
            unsafe { relu(y) }
        }

        #[inline(always)]
        fn relu_grad(self, g: &mut [f32], w: &[f32], h: &[f32], d: f32) {
            // SAFETY: as above.
            unsafe { relu_grad(g, w, h, d) }
        }

        #[inline(always)]
        fn count_at_most(self, row: &[u32], u: u32) -> usize {
            // SAFETY: as above.
            unsafe { count_at_most(row, u) }
        }

        #[inline(always)]
        fn count_chunks<const CH: usize>(self, row: &[[u32; 8]; CH], u: u32) -> usize {
            // SAFETY: as above.
            unsafe { count_chunks(row, u) }
        }

        #[inline(always)]
        fn philox_quad(self, ctr: [u32; 4], key: [u32; 2]) -> [u32; 16] {
            // SAFETY: as above.
            unsafe { philox_quad(ctr, key) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_dot_adds_in_the_stated_order() {
        // Lane sums 1e8, -1e8, 1, 1 and zeros: the stated tree gives (1e8 + 1) + (-1e8 + 1)
        // = 0 in f32, a left-to-right sum would give 1 or 2.
        let mut a = vec![0.0f32; 8];
        a[0] = 1e8;
        a[4] = 1.0;
        a[1] = -1e8;
        a[5] = 1.0;
        let b = vec![1.0f32; 8];
        let expect = ((1e8f32 + 1.0) + 0.0) + ((-1e8f32 + 1.0) + 0.0);
        assert_eq!(Portable.dot(&a, &b), expect);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_matches_portable_bit_for_bit() {
        let Some(wide) = Avx2::for_test() else {
            return;
        };
        let mut stream = crate::rng::Stream::new(7, 0, 0, crate::rng::TAG_HOST);
        let mut draw = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| crate::rng::uniform_f32(stream.next_raw()) * 4.0 - 2.0)
                .collect()
        };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for n in [1, 7, 8, 9, 16, 31, 32, 33, 100] {
            let (a, b, h) = (draw(n), draw(n), draw(n));
            assert_eq!(Portable.dot(&a, &b).to_bits(), wide.dot(&a, &b).to_bits());
            for op in 0..5 {
                let (mut p, mut w) = (a.clone(), a.clone());
                apply(Portable, op, &mut p, &b, &h);
                apply(wide, op, &mut w, &b, &h);
                assert_eq!(bits(&p), bits(&w), "n = {n}, op {op}");
            }
        }
        for (rows, n) in [(1, 8), (3, 16), (5, 32), (8, 32), (9, 24), (4, 12), (7, 1)] {
            let (w, x, bias) = (draw(rows * n), draw(n), draw(rows));
            let (mut p, mut v) = (vec![0.0; rows], vec![0.0; rows]);
            Portable.dots(&w, &x, &bias, &mut p);
            wide.dots(&w, &x, &bias, &mut v);
            assert_eq!(bits(&p), bits(&v), "{rows} rows of {n}");
        }
        // Sparse layers: widths of whole blocks, single chunks, both, and a ragged width (the
        // portable fallback); one to three features; weights over five columns.
        for (n, idx) in [
            (32, vec![3u32]),
            (8, vec![0, 4]),
            (40, vec![4, 1, 2]),
            (12, vec![2]),
        ] {
            let val = draw(idx.len());
            let (w, bias, g) = (draw(5 * n), draw(n), draw(n));
            let (mut p, mut v) = (vec![0.0; n], vec![0.0; n]);
            Portable.sparse_relu(&mut p, &bias, &w, &idx, &val);
            wide.sparse_relu(&mut v, &bias, &w, &idx, &val);
            assert_eq!(bits(&p), bits(&v), "sparse_relu, width {n}");
            assert!(p.iter().all(|&x| x >= 0.0) && p.iter().any(|&x| x > 0.0));
            let (mut pw, mut pb, mut vw, mut vb) =
                (w.clone(), bias.clone(), w.clone(), bias.clone());
            Portable.sparse_step(&mut pw, &mut pb, &g, 0.3, &idx, &val);
            wide.sparse_step(&mut vw, &mut vb, &g, 0.3, &idx, &val);
            assert_eq!(bits(&pw), bits(&vw), "sparse_step weights, width {n}");
            assert_eq!(bits(&pb), bits(&vb), "sparse_step bias, width {n}");
            let touched = (0..5).filter(|&j| pw[j * n..(j + 1) * n] != w[j * n..(j + 1) * n]);
            assert_eq!(touched.count(), idx.len(), "only the active columns");
        }
        // One-hidden-layer networks: every register width (8 to 64), a ragged one (the parts
        // path), and output counts that leave each remainder block; five input columns.
        for (n, actions, idx) in [
            (8, 1, vec![0u32]),
            (16, 3, vec![1, 4]),
            (24, 4, vec![2]),
            (32, 8, vec![0, 3]),
            (40, 5, vec![1, 2, 4]),
            (48, 2, vec![3]),
            (56, 9, vec![0, 2, 3]),
            (64, 6, vec![4]),
            (12, 7, vec![0, 1]),
        ] {
            let net = Mlp1 {
                in_dim: 5,
                actions,
                idx: &idx,
                val: &draw(idx.len()),
            };
            let block = draw((5 + 1 + actions) * n + actions);
            let (mut ph, mut pq, mut vh, mut vq) = (
                vec![0.0; n],
                vec![0.0; actions],
                vec![0.0; n],
                vec![0.0; actions],
            );
            Portable.mlp1_forward(net, &block, &mut ph, &mut pq);
            wide.mlp1_forward(net, &block, &mut vh, &mut vq);
            assert_eq!(bits(&ph), bits(&vh), "mlp1 hidden, width {n}");
            assert_eq!(bits(&pq), bits(&vq), "mlp1 outputs, width {n}");
            for (a, qa) in pq.iter().enumerate() {
                let (mut h1, mut h2) = (vec![0.0; n], vec![0.0; n]);
                let one = Portable.mlp1_forward_one(net, &block, &mut h1, a);
                assert_eq!(one.to_bits(), qa.to_bits(), "mlp1 output {a}, width {n}");
                let one = wide.mlp1_forward_one(net, &block, &mut h2, a);
                assert_eq!(one.to_bits(), qa.to_bits(), "mlp1 output {a}, width {n}");
                assert_eq!(bits(&h1), bits(&ph));
                assert_eq!(bits(&h2), bits(&ph));
            }
            assert!(ph.contains(&0.0) && ph.iter().any(|&x| x > 0.0));
            let (mut pp, mut vp) = (block.clone(), block.clone());
            let mut g = vec![0.0; n];
            let a = actions - 1;
            Portable.mlp1_step(net, &mut pp, &ph, &mut g, a, 0.7, 0.05);
            wide.mlp1_step(net, &mut vp, &vh, &mut g, a, 0.7, 0.05);
            assert_eq!(bits(&pp), bits(&vp), "mlp1 step, width {n}");
            let changed = (0..block.len()).filter(|&i| pp[i] != block[i]).count();
            let live = ph.iter().filter(|&&h| h > 0.0).count();
            // Wo[a] where h > 0, bo[a], and b1 plus each active column where the gradient lives.
            assert_eq!(changed, live + 1 + live * (1 + idx.len()), "width {n}");
        }
        let mut words = crate::rng::Stream::new(8, 0, 0, crate::rng::TAG_HOST);
        for n in [0, 1, 7, 8, 9, 32, 33] {
            let mut row: Vec<u32> = (0..n).map(|_| words.next_raw()).collect();
            row.sort_unstable();
            for u in [0, 1, u32::MAX - 1, u32::MAX, words.next_raw()]
                .into_iter()
                .chain(row.iter().copied())
            {
                let want = row.iter().filter(|&&t| t <= u).count();
                assert_eq!(
                    Portable.count_at_most(&row, u),
                    want,
                    "{n} entries, u = {u}"
                );
                assert_eq!(wide.count_at_most(&row, u), want, "{n} entries, u = {u}");
            }
        }
        // Rows of whole chunks: every remainder of the four-chunk groups.
        fn chunks<L: Lanes>(lanes: L, row: &[u32], u: u32) -> usize {
            let c = row.as_chunks::<8>().0;
            match c.len() {
                1 => lanes.count_chunks::<1>(c.try_into().expect("1"), u),
                2 => lanes.count_chunks::<2>(c.try_into().expect("2"), u),
                3 => lanes.count_chunks::<3>(c.try_into().expect("3"), u),
                4 => lanes.count_chunks::<4>(c.try_into().expect("4"), u),
                7 => lanes.count_chunks::<7>(c.try_into().expect("7"), u),
                _ => lanes.count_chunks::<8>(c.try_into().expect("8"), u),
            }
        }
        for n in [8, 16, 24, 32, 56, 64] {
            let mut row: Vec<u32> = (0..n).map(|_| words.next_raw()).collect();
            row.sort_unstable();
            for u in [0, u32::MAX - 1, words.next_raw()]
                .into_iter()
                .chain(row.iter().copied())
            {
                let want = row.iter().filter(|&&t| t <= u).count();
                assert_eq!(chunks(Portable, &row, u), want, "{n} entries, u = {u}");
                assert_eq!(chunks(wide, &row, u), want, "{n} entries, u = {u}");
            }
        }
        let (ctr, key) = ([u32::MAX, 3, 0, 9], [5, 0xDEAD_BEEF]);
        assert_eq!(Portable.philox_quad(ctr, key), wide.philox_quad(ctr, key));
    }

    /// A feature column outside the unit's inputs panics (as the portable loops' slicing does)
    /// rather than reading past the first layer (the block here is long enough that such a
    /// read would go unnoticed).
    #[test]
    fn mlp1_rejects_a_column_outside_its_inputs() {
        let net = Mlp1 {
            in_dim: 5,
            actions: 2,
            idx: &[1, 5],
            val: &[1.0, 1.0],
        };
        let block = vec![0.5f32; (5 + 1 + 2) * 8 + 2 + 64];
        fn forward<L: Lanes>(lanes: L, net: Mlp1<'_>, block: &[f32]) -> Option<String> {
            let run = std::panic::AssertUnwindSafe(|| {
                let (mut h, mut q) = (vec![0.0; 8], vec![0.0; 2]);
                lanes.mlp1_forward(net, block, &mut h, &mut q);
            });
            let err = std::panic::catch_unwind(run).err()?;
            Some(err.downcast_ref::<String>().cloned().unwrap_or_default())
        }
        assert!(forward(Portable, net, &block).is_some());
        #[cfg(target_arch = "x86_64")]
        if let Some(wide) = Avx2::for_test() {
            let message = forward(wide, net, &block);
            assert_eq!(message.as_deref(), Some("feature column 5 of 5"));
        }
    }

    /// A block too short for its layout, or an output outside it, takes the portable loops
    /// (which panic on the slice) instead of the vector kernels.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn mlp1_short_blocks_take_the_portable_loops() {
        let Some(wide) = Avx2::for_test() else {
            return;
        };
        let net = Mlp1 {
            in_dim: 3,
            actions: 2,
            idx: &[2],
            val: &[1.0],
        };
        let need = (3 + 1 + 2) * 8 + 2;
        let short = vec![0.25f32; need - 1];
        let forward = std::panic::catch_unwind(|| {
            let (mut h, mut q) = (vec![0.0; 8], vec![0.0; 2]);
            wide.mlp1_forward(net, &short, &mut h, &mut q);
        });
        assert!(forward.is_err(), "a short block must not reach the kernel");
        let step = std::panic::catch_unwind(|| {
            let mut p = vec![0.25f32; need];
            let (h, mut g) = (vec![1.0; 8], vec![0.0; 8]);
            wide.mlp1_step(net, &mut p, &h, &mut g, 2, 0.5, 0.1);
        });
        assert!(
            step.is_err(),
            "an output outside the block must not reach the kernel"
        );
    }

    /// Vector operation `op` of the table the test above runs.
    fn apply<L: Lanes>(lanes: L, op: usize, y: &mut [f32], b: &[f32], h: &[f32]) {
        match op {
            0 => lanes.add_scaled(y, b, 0.3),
            1 => lanes.sub_scaled(y, b, -1.7),
            2 => lanes.sub_scaled_by(y, b, 0.05, 0.7),
            3 => lanes.relu(y),
            _ => lanes.relu_grad(y, b, h, 1.3),
        }
    }
}
