//! The support of μ, found from the model's zero pattern rather than from the size of the
//! iterated masses: μ = lim ρ₀((I + K_b)/2)^t is positive exactly on the closed communicating
//! classes of the behavior chain that are reachable from the support of ρ₀. A transient state
//! that the chain leaves slowly keeps a visible mass long after one step of the iteration stops
//! changing μ, so no threshold on μ can tell it from a recurrent one.
//!
//! Per option, [`BitMatrix`] holds which local states (x, p_e) the option can end in from each
//! one (the support of K̄ = E[T^τ]): T's pattern is P's ⊗ Π's; a duration that can take every
//! length τ ≥ 1 (geometric or Poisson with mean > 1) reaches the transitive closure of T, a
//! fixed one the pattern of T^steps, a mean of 1 the pattern of T.

use crate::model::{Duration, OptionSpec};

/// A square boolean matrix, rows as bit sets.
#[derive(Clone, Debug, PartialEq)]
pub struct BitMatrix {
    n: usize,
    words: usize,
    bits: Vec<u64>,
}

impl BitMatrix {
    /// The n × n matrix with entry (i, j) set when `f(i, j)`.
    pub fn from_fn(n: usize, f: impl Fn(usize, usize) -> bool) -> Self {
        let words = n.div_ceil(64);
        let mut bits = vec![0u64; n * words];
        for i in 0..n {
            for j in 0..n {
                if f(i, j) {
                    bits[i * words + j / 64] |= 1 << (j % 64);
                }
            }
        }
        Self { n, words, bits }
    }

    /// Size n.
    pub fn size(&self) -> usize {
        self.n
    }

    /// Entry (i, j).
    pub fn get(&self, i: usize, j: usize) -> bool {
        self.bits[i * self.words + j / 64] >> (j % 64) & 1 == 1
    }

    fn row(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }

    /// The first set column of row `i` at or after `from`.
    pub fn next_in_row(&self, i: usize, from: usize) -> Option<usize> {
        if from >= self.n {
            return None;
        }
        let row = self.row(i);
        let mut w = from / 64;
        let mut word = row[w] & (u64::MAX << (from % 64));
        loop {
            if word != 0 {
                return Some(w * 64 + word.trailing_zeros() as usize);
            }
            w += 1;
            if w == self.words {
                return None;
            }
            word = row[w];
        }
    }

    /// The boolean product: (i, j) set when some k has (i, k) in `self` and (k, j) in `other`.
    pub fn mul(&self, other: &Self) -> Self {
        let mut out = vec![0u64; self.bits.len()];
        for i in 0..self.n {
            let dst = &mut out[i * self.words..(i + 1) * self.words];
            let mut k = self.next_in_row(i, 0);
            while let Some(kk) = k {
                dst.iter_mut().zip(other.row(kk)).for_each(|(d, s)| *d |= s);
                k = self.next_in_row(i, kk + 1);
            }
        }
        Self {
            n: self.n,
            words: self.words,
            bits: out,
        }
    }

    /// The pattern of the k-th power (k ≥ 1).
    pub fn pow(&self, k: u32) -> Self {
        let mut result: Option<Self> = None;
        let mut base = self.clone();
        let mut k = k;
        while k > 0 {
            if k & 1 == 1 {
                result = Some(match result {
                    None => base.clone(),
                    Some(r) => r.mul(&base),
                });
            }
            k >>= 1;
            if k > 0 {
                base = base.mul(&base);
            }
        }
        result.unwrap_or_else(|| Self::from_fn(self.n, |i, j| i == j))
    }

    /// The transitive closure: (i, j) set when a path of length ≥ 1 leads from i to j
    /// (Warshall's algorithm on bit rows).
    pub fn closure(&self) -> Self {
        let mut r = self.clone();
        let words = self.words;
        let mut pivot = vec![0u64; words];
        for k in 0..self.n {
            pivot.copy_from_slice(r.row(k));
            for i in 0..self.n {
                if r.get(i, k) {
                    r.bits[i * words..(i + 1) * words]
                        .iter_mut()
                        .zip(&pivot)
                        .for_each(|(d, s)| *d |= s);
                }
            }
        }
        r
    }
}

/// The support of one option's epoch kernel K̄ over its local space c = x·M_e + p_e.
pub fn epoch_reach(opt: &OptionSpec) -> BitMatrix {
    let (s, m) = (opt.artifact_transition.len(), opt.private_transition.len());
    let step = BitMatrix::from_fn(s * m, |c, d| {
        opt.artifact_transition[c / m][d / m] > 0.0 && opt.private_transition[c % m][d % m] > 0.0
    });
    match opt.duration {
        Duration::Fixed { steps } => step.pow(steps),
        Duration::Geometric { mean } | Duration::Poisson { mean } if mean <= 1.0 => step,
        Duration::Geometric { .. } | Duration::Poisson { .. } => step.closure(),
    }
}

/// The closed communicating classes reachable from `roots` in the graph whose successors of
/// `v` are listed by `next(v, cursor)` (one per call, `None` at the end; `cursor` starts at
/// (0, 0) and is the caller's to advance): a flag per vertex, set on those classes.
///
/// Tarjan's algorithm without recursion; a component is closed when none of its vertices has
/// an edge into an earlier finished component.
pub fn closed_classes(
    vertices: usize,
    roots: &[usize],
    mut next: impl FnMut(usize, &mut (usize, usize)) -> Option<usize>,
) -> Vec<bool> {
    const UNSEEN: usize = usize::MAX;
    let mut index = vec![UNSEEN; vertices];
    let mut low = vec![0usize; vertices];
    let mut on_stack = vec![false; vertices];
    let mut leaves = vec![false; vertices];
    let mut closed = vec![false; vertices];
    let mut stack: Vec<usize> = Vec::new();
    let mut frames: Vec<(usize, (usize, usize))> = Vec::new();
    let mut counter = 0;
    for &root in roots {
        // The vertex to open next: a root not yet seen, then each unseen successor.
        let mut unseen = (index[root] == UNSEEN).then_some(root);
        loop {
            if let Some(w) = unseen.take() {
                index[w] = counter;
                low[w] = counter;
                counter += 1;
                stack.push(w);
                on_stack[w] = true;
                frames.push((w, (0, 0)));
            }
            let Some(frame) = frames.last_mut() else {
                break;
            };
            let v = frame.0;
            match next(v, &mut frame.1) {
                Some(w) if index[w] == UNSEEN => unseen = Some(w),
                Some(w) => {
                    if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    } else {
                        leaves[v] = true;
                    }
                }
                None => {
                    frames.pop();
                    if low[v] == index[v] {
                        let start = stack.iter().rposition(|&u| u == v).unwrap_or(0);
                        let is_closed = stack[start..].iter().all(|&u| !leaves[u]);
                        for &u in &stack[start..] {
                            on_stack[u] = false;
                            closed[u] = is_closed;
                        }
                        stack.truncate(start);
                    }
                    if let Some(parent) = frames.last() {
                        let p = parent.0;
                        if on_stack[v] {
                            low[p] = low[p].min(low[v]);
                        } else {
                            leaves[p] = true;
                        }
                    }
                }
            }
        }
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(usize, usize)], n: usize) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); n];
        for &(a, b) in edges {
            adj[a].push(b);
        }
        adj
    }

    fn closed_of(adj: &[Vec<usize>], roots: &[usize]) -> Vec<bool> {
        closed_classes(adj.len(), roots, |v, cur| {
            let out = adj[v].get(cur.0).copied();
            cur.0 += 1;
            out
        })
    }

    #[test]
    fn closed_classes_of_small_graphs() {
        // 0 → 1 ⇄ 2, 2 → 3 ⇄ 4: only {3, 4} is closed; 5 is unreachable.
        let adj = graph(&[(0, 1), (1, 2), (2, 1), (2, 3), (3, 4), (4, 3), (5, 5)], 6);
        assert_eq!(
            closed_of(&adj, &[0]),
            vec![false, false, false, true, true, false]
        );
        // Two closed classes reached from one root, one a self-loop.
        let adj = graph(&[(0, 1), (0, 2), (1, 1), (2, 3), (3, 2)], 4);
        assert_eq!(closed_of(&adj, &[0]), vec![false, true, true, true]);
        // A root inside a cycle that is closed.
        let adj = graph(&[(0, 1), (1, 2), (2, 0)], 3);
        assert_eq!(closed_of(&adj, &[1]), vec![true, true, true]);
    }

    #[test]
    fn bit_matrix_powers_and_closure() {
        // The 70-cycle (more than one word per row): T^70 = I, closure = everything.
        let n = 70;
        let t = BitMatrix::from_fn(n, |i, j| j == (i + 1) % n);
        assert_eq!(t.pow(70), BitMatrix::from_fn(n, |i, j| i == j));
        assert_eq!(t.pow(3), BitMatrix::from_fn(n, |i, j| j == (i + 3) % n));
        assert_eq!(t.closure(), BitMatrix::from_fn(n, |_, _| true));
        // A path 0 → 1 → 2: the closure has no self-loops.
        let p = BitMatrix::from_fn(3, |i, j| j == i + 1);
        assert_eq!(p.closure(), BitMatrix::from_fn(3, |i, j| j > i));
        assert_eq!(p.next_in_row(0, 0), Some(1));
        assert_eq!(p.next_in_row(0, 2), None);
        assert_eq!(p.next_in_row(2, 0), None);
    }
}
