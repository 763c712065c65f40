//! The dense linear algebra the oracle needs: row-major matrices, products (through
//! `matrixmultiply`), inverses by LU with partial pivoting, and the eigenvalues of a small
//! upper-Hessenberg matrix by the shifted complex QR algorithm.

use num_complex::Complex64;

/// A dense row-major matrix of `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mat {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Entries, row-major.
    pub data: Vec<f64>,
}

impl Mat {
    /// The zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// The identity of size `n`.
    pub fn identity(n: usize) -> Self {
        let mut m = Self::zeros(n, n);
        for i in 0..n {
            m.data[i * n + i] = 1.0;
        }
        m
    }

    /// Entry (i, j).
    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The Kronecker product `self ⊗ other`: entry ((i, k), (j, l)) = self(i, j) · other(k, l).
    pub fn kron(&self, other: &Mat) -> Mat {
        let (r, c) = (self.rows * other.rows, self.cols * other.cols);
        let mut out = Mat::zeros(r, c);
        for i in 0..self.rows {
            for j in 0..self.cols {
                let a = self.at(i, j);
                if a == 0.0 {
                    continue;
                }
                for k in 0..other.rows {
                    for l in 0..other.cols {
                        out.data[(i * other.rows + k) * c + j * other.cols + l] =
                            a * other.at(k, l);
                    }
                }
            }
        }
        out
    }

    /// `self · other`.
    pub fn mul(&self, other: &Mat) -> Mat {
        assert_eq!(self.cols, other.rows, "inner dimensions");
        let mut out = Mat::zeros(self.rows, other.cols);
        gemm(
            self.rows,
            self.cols,
            other.cols,
            &self.data,
            &other.data,
            &mut out.data,
            0.0,
        );
        out
    }

    /// `self · v`.
    pub fn mul_vec(&self, v: &[f64]) -> Vec<f64> {
        (0..self.rows)
            .map(|i| self.row(i).iter().zip(v).map(|(a, b)| a * b).sum())
            .collect()
    }

    /// `self · s`.
    pub fn scaled(mut self, s: f64) -> Mat {
        self.data.iter_mut().for_each(|x| *x *= s);
        self
    }

    /// `self += s · other`.
    pub fn add_scaled(&mut self, s: f64, other: &Mat) {
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += s * b;
        }
    }

    /// `I − s · self` (square matrices).
    pub fn identity_minus(&self, s: f64) -> Mat {
        let mut out = self.clone().scaled(-s);
        for i in 0..self.rows {
            out.data[i * self.cols + i] += 1.0;
        }
        out
    }

    /// `self^k` by repeated squaring (square matrices).
    pub fn pow(&self, mut k: u32) -> Mat {
        let mut result = Mat::identity(self.rows);
        let mut base = self.clone();
        while k > 0 {
            if k & 1 == 1 {
                result = result.mul(&base);
            }
            k >>= 1;
            if k > 0 {
                base = base.mul(&base);
            }
        }
        result
    }

    /// The inverse, by LU with partial pivoting; `None` when the matrix is singular to working
    /// precision.
    pub fn inverse(&self) -> Option<Mat> {
        let n = self.rows;
        assert_eq!(n, self.cols, "inverse of a non-square matrix");
        let mut a = self.data.clone();
        let mut inv = Mat::identity(n).data;
        let scale = a
            .iter()
            .fold(0.0f64, |m, x| m.max(x.abs()))
            .max(f64::MIN_POSITIVE);
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
                .expect("non-empty range");
            if a[pivot * n + col].abs() <= scale * 1e-14 {
                return None;
            }
            if pivot != col {
                for j in 0..n {
                    a.swap(pivot * n + j, col * n + j);
                    inv.swap(pivot * n + j, col * n + j);
                }
            }
            let d = 1.0 / a[col * n + col];
            for j in 0..n {
                a[col * n + j] *= d;
                inv[col * n + j] *= d;
            }
            for i in 0..n {
                if i == col {
                    continue;
                }
                let f = a[i * n + col];
                if f == 0.0 {
                    continue;
                }
                for j in 0..n {
                    a[i * n + j] -= f * a[col * n + j];
                    inv[i * n + j] -= f * inv[col * n + j];
                }
            }
        }
        Some(Mat {
            rows: n,
            cols: n,
            data: inv,
        })
    }
}

/// `c = a · b + beta · c` for row-major `a` (m×k), `b` (k×n), `c` (m×n).
pub fn gemm(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], c: &mut [f64], beta: f64) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "gemm shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assertion above guarantees that every element addressed by the shapes and
    // the row-major strides below lies inside the three slices, and `c` is borrowed mutably
    // so it aliases neither input.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The eigenvalues of the upper-Hessenberg matrix `h` (row-major, n×n; entries below the
/// subdiagonal are ignored), by the QR algorithm with Wilkinson shifts in complex arithmetic.
pub fn hessenberg_eigenvalues(h: &[f64], n: usize) -> Vec<Complex64> {
    let mut a: Vec<Complex64> = (0..n * n)
        .map(|idx| {
            let (i, j) = (idx / n, idx % n);
            if i > j + 1 {
                Complex64::new(0.0, 0.0)
            } else {
                Complex64::new(h[idx], 0.0)
            }
        })
        .collect();
    let mut eig = Vec::with_capacity(n);
    let mut hi = n;
    let mut iter = 0;
    while hi > 0 {
        // Find the start of the active unreduced block ending at hi − 1.
        let mut lo = hi - 1;
        while lo > 0 {
            let sub = a[lo * n + lo - 1].norm();
            let diag = a[lo * n + lo].norm() + a[(lo - 1) * n + lo - 1].norm();
            if sub <= f64::EPSILON * diag.max(f64::MIN_POSITIVE) {
                a[lo * n + lo - 1] = Complex64::new(0.0, 0.0);
                break;
            }
            lo -= 1;
        }
        if lo == hi - 1 {
            eig.push(a[lo * n + lo]);
            hi -= 1;
            iter = 0;
            continue;
        }
        iter += 1;
        if iter > 300 {
            // Give up on this block: its diagonal is the best estimate we have.
            for i in lo..hi {
                eig.push(a[i * n + i]);
            }
            hi = lo;
            iter = 0;
            continue;
        }
        let shift = if iter % 11 == 10 {
            // Exceptional shift to break cycles.
            a[(hi - 1) * n + hi - 1] + Complex64::new(a[(hi - 1) * n + hi - 2].norm(), 0.0)
        } else {
            wilkinson_shift(
                a[(hi - 2) * n + hi - 2],
                a[(hi - 2) * n + hi - 1],
                a[(hi - 1) * n + hi - 2],
                a[(hi - 1) * n + hi - 1],
            )
        };
        qr_step(&mut a, n, lo, hi, shift);
    }
    eig
}

fn wilkinson_shift(a: Complex64, b: Complex64, c: Complex64, d: Complex64) -> Complex64 {
    let tr = a + d;
    let det = a * d - b * c;
    let disc = (tr * tr / 4.0 - det).sqrt();
    let (l1, l2) = (tr / 2.0 + disc, tr / 2.0 - disc);
    if (l1 - d).norm() < (l2 - d).norm() {
        l1
    } else {
        l2
    }
}

/// One shifted QR step on the block `lo..hi` of `a`, by Givens rotations.
fn qr_step(a: &mut [Complex64], n: usize, lo: usize, hi: usize, shift: Complex64) {
    for i in lo..hi {
        a[i * n + i] -= shift;
    }
    let mut rots = Vec::with_capacity(hi - lo);
    for k in lo..hi - 1 {
        let (x, y) = (a[k * n + k], a[(k + 1) * n + k]);
        let r = (x.norm_sqr() + y.norm_sqr()).sqrt();
        let (c, s) = if r == 0.0 {
            (Complex64::new(1.0, 0.0), Complex64::new(0.0, 0.0))
        } else {
            (x / r, y / r)
        };
        // Rows k, k+1 ← G^H rows, with G = [[c, −s̄], [s, c̄]] so that G^H (x, y) = (r, 0).
        for j in k..hi {
            let (u, v) = (a[k * n + j], a[(k + 1) * n + j]);
            a[k * n + j] = c.conj() * u + s.conj() * v;
            a[(k + 1) * n + j] = -s * u + c * v;
        }
        rots.push((c, s));
    }
    for (idx, &(c, s)) in rots.iter().enumerate() {
        let k = lo + idx;
        // Columns k, k+1 ← columns · G.
        for i in lo..(k + 2).min(hi) {
            let (u, v) = (a[i * n + k], a[i * n + k + 1]);
            a[i * n + k] = u * c + v * s;
            a[i * n + k + 1] = -u * s.conj() + v * c.conj();
        }
    }
    for i in lo..hi {
        a[i * n + i] += shift;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_a_known_matrix() {
        let m = Mat {
            rows: 2,
            cols: 2,
            data: vec![4.0, 7.0, 2.0, 6.0],
        };
        let inv = m.inverse().expect("invertible");
        let want = [0.6, -0.7, -0.2, 0.4];
        for (a, b) in inv.data.iter().zip(want) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
        let singular = Mat {
            rows: 2,
            cols: 2,
            data: vec![1.0, 2.0, 2.0, 4.0],
        };
        assert!(singular.inverse().is_none());
    }

    #[test]
    fn pow_matches_repeated_products() {
        let m = Mat {
            rows: 2,
            cols: 2,
            data: vec![0.5, 0.5, 0.25, 0.75],
        };
        let p5 = m.pow(5);
        let mut q = Mat::identity(2);
        for _ in 0..5 {
            q = q.mul(&m);
        }
        for (a, b) in p5.data.iter().zip(&q.data) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn eigenvalues_of_a_rotation_and_a_triangle() {
        // [[0, −1], [1, 0]] has eigenvalues ±i.
        let mut e = hessenberg_eigenvalues(&[0.0, -1.0, 1.0, 0.0], 2);
        e.sort_by(|a, b| a.im.total_cmp(&b.im));
        assert!((e[0] - Complex64::new(0.0, -1.0)).norm() < 1e-12);
        assert!((e[1] - Complex64::new(0.0, 1.0)).norm() < 1e-12);
        // A Hessenberg matrix with known eigenvalues 1, 2, 3: companion of (λ−1)(λ−2)(λ−3).
        let c = [6.0, -11.0, 6.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let mut e: Vec<f64> = hessenberg_eigenvalues(&c, 3).iter().map(|z| z.re).collect();
        e.sort_by(f64::total_cmp);
        for (a, b) in e.iter().zip([1.0, 2.0, 3.0]) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }
}
