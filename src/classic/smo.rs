//! The binary C-SVM solver: LIBSVM's SMO (Fan, Chen and Lin 2005), solving
//!
//! ```text
//! min_a  1/2 a^T Q a - e^T a   subject to  0 <= a_i <= C,  y^T a = 0,
//! Q_ij = y_i y_j K(x_i, x_j)
//! ```
//!
//! two coordinates at a time, chosen by second-order working-set selection (WSS3: `i` the
//! most violating index of the first-order condition, `j` the one whose analytic step
//! decreases the objective most). Shrinking drops bounded variables that are unlikely to
//! move from the active set every `min(l, 1000)` iterations and brings them back (after
//! rebuilding their gradient from `G_bar`) before declaring convergence. Rows of `Q` come
//! from an LRU [`RowCache`]; shrinking swaps indices so that the active set is always the
//! prefix `0..active_size` and cached rows can be prefixes too.

use super::cache::RowCache;
use super::kernel::{dots_with_rows, Kernel};

/// Settings of one binary solve.
#[derive(Debug, Clone, Copy)]
pub struct SmoParams {
    /// The box constraint C.
    pub c: f64,
    /// Stopping tolerance on the maximal violation `m(a) - M(a)` (LIBSVM's `eps`, 1e-3).
    pub tol: f64,
    /// Whether to shrink the active set.
    pub shrinking: bool,
    /// The cache budget, in floats.
    pub cache_floats: usize,
    /// The largest number of iterations (0: LIBSVM's `max(10^7, 100 l)`).
    pub max_iter: usize,
    /// Compute the whole of `Q` up front with the GEMM when it fits in the cache budget.
    pub precompute: bool,
}

/// The solution of one binary problem.
#[derive(Debug, Clone)]
pub struct SmoSolution {
    /// The dual variables, in the order of the problem's samples.
    pub alpha: Vec<f64>,
    /// The threshold: the decision function is `sum_i alpha_i y_i K(x_i, x) - rho`.
    pub rho: f64,
    /// The iterations the solver took.
    pub iterations: usize,
    /// The dual objective `1/2 a^T Q a - e^T a` at the solution.
    pub objective: f64,
}

const TAU: f64 = 1e-12;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    Lower,
    Upper,
    Free,
}

/// `Q` for the samples of one problem, positions permuted by the solver's swaps.
struct QMatrix<'a> {
    x: &'a [f32],
    d: usize,
    kernel: Kernel,
    /// Global row of `x` at each position.
    rows: Vec<usize>,
    /// Squared norm at each position.
    sq: Vec<f32>,
    /// Label (+1 or -1) at each position.
    y: Vec<f32>,
    cache: RowCache,
}

impl QMatrix<'_> {
    /// Row `i` of `Q` over positions `0..len`.
    fn row(&mut self, i: usize, len: usize) -> &[f32] {
        let (row, start) = self.cache.get(i, len);
        if start < len {
            let d = self.d;
            let xi = &self.x[self.rows[i] * d..(self.rows[i] + 1) * d];
            let out = &mut row[start..len];
            dots_with_rows(self.x, d, &self.rows[start..len], xi, out);
            let (sqi, yi) = (self.sq[i], self.y[i]);
            for ((v, &sqj), &yj) in out
                .iter_mut()
                .zip(&self.sq[start..len])
                .zip(&self.y[start..len])
            {
                *v = yi * yj * self.kernel.from_dot(*v, sqi, sqj);
            }
        }
        &row[..len]
    }

    /// Fills the cache with every full row at once, through the GEMM in blocks of rows:
    /// compute-bound, several times faster per entry than the row-at-a-time dot products,
    /// and worth it when most rows would be needed anyway. Call before any swap.
    fn precompute(&mut self) {
        const BLOCK: usize = 128;
        let (l, d) = (self.rows.len(), self.d);
        let mut xs = Vec::with_capacity(l * d); // [l, d], the rows in position order
        for &r in &self.rows {
            xs.extend_from_slice(&self.x[r * d..(r + 1) * d]);
        }
        let mut block = vec![0.0f32; BLOCK * l]; // [BLOCK, l]
        for r0 in (0..l).step_by(BLOCK) {
            let rows = BLOCK.min(l - r0);
            let out = &mut block[..rows * l];
            self.kernel.block(
                &xs[r0 * d..(r0 + rows) * d],
                &self.sq[r0..r0 + rows],
                &xs,
                &self.sq,
                d,
                out,
            );
            for (t, krow) in out.chunks_exact(l).enumerate() {
                let i = r0 + t;
                let yi = self.y[i];
                let (row, _) = self.cache.get(i, l);
                for ((q, &k), &yj) in row.iter_mut().zip(krow).zip(&self.y) {
                    *q = yi * yj * k;
                }
            }
        }
    }

    fn swap_index(&mut self, i: usize, j: usize) {
        self.cache.swap_index(i, j);
        self.rows.swap(i, j);
        self.sq.swap(i, j);
        self.y.swap(i, j);
    }
}

struct Solver<'a> {
    l: usize,
    active_size: usize,
    q: QMatrix<'a>,
    /// Diagonal of Q (by position).
    qd: Vec<f64>,
    y: Vec<f64>,
    alpha: Vec<f64>,
    status: Vec<Bound>,
    /// Gradient `Q a - e` (exact on the active set, rebuilt for the rest when needed).
    g: Vec<f64>,
    /// `G_bar_i = C sum_{j at upper bound} Q_ij`.
    g_bar: Vec<f64>,
    /// Original index at each position.
    active_set: Vec<usize>,
    c: f64,
    eps: f64,
    unshrink: bool,
}

/// Solves the binary problem over rows `index` of `x: [_, d]` with labels `y` (+1/-1),
/// squared norms `sq` of those rows, and the kernel.
pub fn solve(
    x: &[f32],
    d: usize,
    index: &[usize],
    y: &[f32],
    sq: &[f32],
    kernel: Kernel,
    params: SmoParams,
) -> SmoSolution {
    let l = index.len();
    assert!(
        y.len() == l && sq.len() == l && l >= 2,
        "smo::solve: {l} samples, {} labels, {} norms (need at least 2 samples)",
        y.len(),
        sq.len()
    );
    let qd: Vec<f64> = (0..l)
        .map(|i| kernel.from_dot(sq[i], sq[i], sq[i]) as f64)
        .collect();
    let mut s = Solver {
        l,
        active_size: l,
        q: QMatrix {
            x,
            d,
            kernel,
            rows: index.to_vec(),
            sq: sq.to_vec(),
            y: y.to_vec(),
            cache: RowCache::new(l, params.cache_floats),
        },
        qd,
        y: y.iter().map(|&v| v as f64).collect(),
        alpha: vec![0.0; l],
        status: vec![Bound::Lower; l],
        g: vec![-1.0; l],
        g_bar: vec![0.0; l],
        active_set: (0..l).collect(),
        c: params.c,
        eps: params.tol,
        unshrink: false,
    };
    if params.precompute && l * l <= params.cache_floats {
        s.q.precompute();
    }
    let max_iter = if params.max_iter > 0 {
        params.max_iter
    } else {
        10_000_000usize.max(100 * l)
    };
    let iterations = s.run(max_iter, params.shrinking);
    let rho = s.calculate_rho();
    let objective = (0..l).map(|i| s.alpha[i] * (s.g[i] - 1.0)).sum::<f64>() / 2.0;
    let mut alpha = vec![0.0; l];
    for (pos, &orig) in s.active_set.iter().enumerate() {
        alpha[orig] = s.alpha[pos];
    }
    SmoSolution {
        alpha,
        rho,
        iterations,
        objective,
    }
}

impl Solver<'_> {
    fn is_upper(&self, i: usize) -> bool {
        self.status[i] == Bound::Upper
    }

    fn is_lower(&self, i: usize) -> bool {
        self.status[i] == Bound::Lower
    }

    fn update_status(&mut self, i: usize) {
        self.status[i] = if self.alpha[i] >= self.c {
            Bound::Upper
        } else if self.alpha[i] <= 0.0 {
            Bound::Lower
        } else {
            Bound::Free
        };
    }

    /// The main loop; returns the number of iterations.
    fn run(&mut self, max_iter: usize, shrinking: bool) -> usize {
        let l = self.l;
        let mut iter = 0;
        let mut counter = l.min(1000) + 1;
        while iter < max_iter {
            counter -= 1;
            if counter == 0 {
                counter = l.min(1000);
                if shrinking {
                    self.do_shrinking();
                }
            }
            let (i, j) = match self.select_working_set() {
                Some(ij) => ij,
                None => {
                    self.reconstruct_gradient();
                    self.active_size = l;
                    match self.select_working_set() {
                        Some(ij) => {
                            counter = 1; // shrink at the next iteration
                            ij
                        }
                        None => break,
                    }
                }
            };
            iter += 1;
            self.step(i, j);
        }
        if self.active_size < l {
            self.reconstruct_gradient();
            self.active_size = l;
        }
        iter
    }

    /// Optimizes the pair `(i, j)` analytically and updates the gradients.
    fn step(&mut self, i: usize, j: usize) {
        let active = self.active_size;
        let c = self.c;
        let q_ij = self.q.row(i, active)[j] as f64;
        let (old_i, old_j) = (self.alpha[i], self.alpha[j]);
        let (mut ai, mut aj) = (old_i, old_j);
        if self.y[i] != self.y[j] {
            let quad = (self.qd[i] + self.qd[j] + 2.0 * q_ij).max(TAU);
            let delta = (-self.g[i] - self.g[j]) / quad;
            let diff = ai - aj;
            ai += delta;
            aj += delta;
            if diff > 0.0 {
                if aj < 0.0 {
                    aj = 0.0;
                    ai = diff;
                }
            } else if ai < 0.0 {
                ai = 0.0;
                aj = -diff;
            }
            // C_i = C_j = C, so `diff > C_i - C_j` is `diff > 0`.
            if diff > 0.0 {
                if ai > c {
                    ai = c;
                    aj = c - diff;
                }
            } else if aj > c {
                aj = c;
                ai = c + diff;
            }
        } else {
            let quad = (self.qd[i] + self.qd[j] - 2.0 * q_ij).max(TAU);
            let delta = (self.g[i] - self.g[j]) / quad;
            let sum = ai + aj;
            ai -= delta;
            aj += delta;
            if sum > c {
                if ai > c {
                    ai = c;
                    aj = sum - c;
                }
            } else if aj < 0.0 {
                aj = 0.0;
                ai = sum;
            }
            if sum > c {
                if aj > c {
                    aj = c;
                    ai = sum - c;
                }
            } else if ai < 0.0 {
                ai = 0.0;
                aj = sum;
            }
        }
        self.alpha[i] = ai;
        self.alpha[j] = aj;
        let (dai, daj) = (ai - old_i, aj - old_j);
        // Gradient of the active set: one row at a time (the second fetch may evict the first).
        for (idx, da) in [(i, dai), (j, daj)] {
            if da != 0.0 {
                let row = self.q.row(idx, active);
                for (g, &qv) in self.g[..active].iter_mut().zip(row) {
                    *g += qv as f64 * da;
                }
            }
        }
        for idx in [i, j] {
            let was_upper = self.is_upper(idx);
            self.update_status(idx);
            if was_upper != self.is_upper(idx) {
                let sign = if was_upper { -c } else { c };
                let row = self.q.row(idx, self.l);
                for (gb, &qv) in self.g_bar.iter_mut().zip(row) {
                    *gb += sign * qv as f64;
                }
            }
        }
    }

    /// WSS3; `None` when the maximal violation is below `eps` (optimal on the active set).
    fn select_working_set(&mut self) -> Option<(usize, usize)> {
        let active = self.active_size;
        let mut gmax = f64::NEG_INFINITY;
        let mut gmax2 = f64::NEG_INFINITY;
        let mut gmax_idx = None;
        for t in 0..active {
            if self.y[t] > 0.0 {
                if !self.is_upper(t) && -self.g[t] >= gmax {
                    gmax = -self.g[t];
                    gmax_idx = Some(t);
                }
            } else if !self.is_lower(t) && self.g[t] >= gmax {
                gmax = self.g[t];
                gmax_idx = Some(t);
            }
        }
        let i = gmax_idx?;
        let yi = self.y[i];
        let qdi = self.qd[i];
        let row = self.q.row(i, active);
        let mut gmin_idx = None;
        let mut obj_diff_min = f64::INFINITY;
        for (j, &q_ij) in row.iter().enumerate() {
            let gj = self.g[j];
            let (grad_diff, sign) = if self.y[j] > 0.0 {
                if self.status[j] == Bound::Lower {
                    continue;
                }
                gmax2 = gmax2.max(gj);
                (gmax + gj, -1.0)
            } else {
                if self.status[j] == Bound::Upper {
                    continue;
                }
                gmax2 = gmax2.max(-gj);
                (gmax - gj, 1.0)
            };
            if grad_diff > 0.0 {
                let quad = qdi + self.qd[j] + sign * 2.0 * yi * q_ij as f64;
                let obj_diff = -(grad_diff * grad_diff) / if quad > 0.0 { quad } else { TAU };
                if obj_diff <= obj_diff_min {
                    gmin_idx = Some(j);
                    obj_diff_min = obj_diff;
                }
            }
        }
        if gmax + gmax2 < self.eps {
            return None;
        }
        gmin_idx.map(|j| (i, j))
    }

    fn be_shrunk(&self, i: usize, gmax1: f64, gmax2: f64) -> bool {
        let pos = self.y[i] > 0.0;
        match self.status[i] {
            Bound::Upper => -self.g[i] > if pos { gmax1 } else { gmax2 },
            Bound::Lower => self.g[i] > if pos { gmax2 } else { gmax1 },
            Bound::Free => false,
        }
    }

    fn do_shrinking(&mut self) {
        // gmax1 = max { -y_i grad_i : i in I_up }, gmax2 = max { y_i grad_i : i in I_low }.
        let mut gmax1 = f64::NEG_INFINITY;
        let mut gmax2 = f64::NEG_INFINITY;
        for i in 0..self.active_size {
            let g = self.g[i];
            if self.y[i] > 0.0 {
                if !self.is_upper(i) {
                    gmax1 = gmax1.max(-g);
                }
                if !self.is_lower(i) {
                    gmax2 = gmax2.max(g);
                }
            } else {
                if !self.is_upper(i) {
                    gmax2 = gmax2.max(-g);
                }
                if !self.is_lower(i) {
                    gmax1 = gmax1.max(g);
                }
            }
        }
        if !self.unshrink && gmax1 + gmax2 <= self.eps * 10.0 {
            self.unshrink = true;
            self.reconstruct_gradient();
            self.active_size = self.l;
        }
        let mut i = 0;
        while i < self.active_size {
            if self.be_shrunk(i, gmax1, gmax2) {
                self.active_size -= 1;
                while self.active_size > i {
                    if !self.be_shrunk(self.active_size, gmax1, gmax2) {
                        self.swap_index(i, self.active_size);
                        break;
                    }
                    self.active_size -= 1;
                }
            }
            i += 1;
        }
    }

    fn swap_index(&mut self, i: usize, j: usize) {
        self.q.swap_index(i, j);
        self.qd.swap(i, j);
        self.y.swap(i, j);
        self.alpha.swap(i, j);
        self.status.swap(i, j);
        self.g.swap(i, j);
        self.g_bar.swap(i, j);
        self.active_set.swap(i, j);
    }

    /// Rebuilds the gradient of the inactive positions from `G_bar` and the free variables.
    fn reconstruct_gradient(&mut self) {
        let (active, l) = (self.active_size, self.l);
        if active == l {
            return;
        }
        for j in active..l {
            self.g[j] = self.g_bar[j] - 1.0;
        }
        let nr_free = (0..active)
            .filter(|&j| self.status[j] == Bound::Free)
            .count();
        if nr_free * l > 2 * active * (l - active) {
            for i in active..l {
                let row = self.q.row(i, active);
                let acc: f64 = row
                    .iter()
                    .zip(&self.alpha[..active])
                    .zip(&self.status[..active])
                    .filter(|(_, &st)| st == Bound::Free)
                    .map(|((&q, &a), _)| a * q as f64)
                    .sum();
                self.g[i] += acc;
            }
        } else {
            for i in 0..active {
                if self.status[i] == Bound::Free {
                    let ai = self.alpha[i];
                    let row = self.q.row(i, l);
                    for (g, &q) in self.g[active..l].iter_mut().zip(&row[active..l]) {
                        *g += ai * q as f64;
                    }
                }
            }
        }
    }

    fn calculate_rho(&self) -> f64 {
        let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut nr_free, mut sum_free) = (0usize, 0.0);
        for i in 0..self.active_size {
            let yg = self.y[i] * self.g[i];
            match self.status[i] {
                Bound::Upper => {
                    if self.y[i] < 0.0 {
                        ub = ub.min(yg)
                    } else {
                        lb = lb.max(yg)
                    }
                }
                Bound::Lower => {
                    if self.y[i] > 0.0 {
                        ub = ub.min(yg)
                    } else {
                        lb = lb.max(yg)
                    }
                }
                Bound::Free => {
                    nr_free += 1;
                    sum_free += yg;
                }
            }
        }
        if nr_free > 0 {
            sum_free / nr_free as f64
        } else {
            (ub + lb) / 2.0
        }
    }
}
