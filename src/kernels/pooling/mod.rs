//! 2-D pooling over `[N, C, H, W]`, each `(n, c)` plane independent: max pooling (arg-max
//! indices kept for backward), average pooling (padding counted in the divisor, PyTorch's
//! `count_include_pad=True`) and global average pooling. The fast kernels run in parallel over
//! planes; plain references sit beside them.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod reference;
#[cfg(test)]
mod tests;

pub use reference::{avg_pool2d_backward_reference, avg_pool2d_reference, max_pool2d_reference};

use rayon::prelude::*;

/// Sizes of one pooling: `planes = N * C` planes of `h x w`, window `kh x kw`. Pairs are
/// `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    /// Independent planes (batch times channels).
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Step between windows, `(height, width)`.
    pub stride: (usize, usize),
    /// Padding on each side, `(height, width)`.
    pub padding: (usize, usize),
}

impl PoolShape {
    /// Output height and width (floor mode, as PyTorch's default).
    pub fn out_hw(&self) -> (usize, usize) {
        (
            (self.h + 2 * self.padding.0 - self.kh) / self.stride.0 + 1,
            (self.w + 2 * self.padding.1 - self.kw) / self.stride.1 + 1,
        )
    }

    /// Why these sizes are not a valid pooling, if they are not.
    pub fn problem(&self) -> Option<String> {
        if self.kh == 0 || self.kw == 0 || self.stride.0 == 0 || self.stride.1 == 0 {
            return Some("kernel size and stride must be positive".into());
        }
        if 2 * self.padding.0 > self.kh || 2 * self.padding.1 > self.kw {
            return Some(format!(
                "padding {:?} must be at most half the kernel {}x{}",
                self.padding, self.kh, self.kw
            ));
        }
        if self.kh > self.h + 2 * self.padding.0 || self.kw > self.w + 2 * self.padding.1 {
            return Some(format!(
                "kernel {}x{} is larger than the padded input {}x{}",
                self.kh,
                self.kw,
                self.h + 2 * self.padding.0,
                self.w + 2 * self.padding.1
            ));
        }
        None
    }

    /// In-bounds input rows `[lo, hi)` of window row `oy` (and likewise columns).
    #[inline]
    fn window(&self, oy: usize, ox: usize) -> (usize, usize, usize, usize) {
        let y0 = (oy * self.stride.0) as isize - self.padding.0 as isize;
        let x0 = (ox * self.stride.1) as isize - self.padding.1 as isize;
        let clip = |v: isize, n: usize| v.clamp(0, n as isize) as usize;
        (
            clip(y0, self.h),
            clip(y0 + self.kh as isize, self.h),
            clip(x0, self.w),
            clip(x0 + self.kw as isize, self.w),
        )
    }

    /// Planes per parallel task: enough work per task to pay for scheduling it.
    fn min_planes(&self) -> usize {
        (4096 / (self.h * self.w).max(1)).max(1)
    }

    /// The common 2x2, stride-2, unpadded window (windows tile the plane without overlap).
    fn is_2x2(&self) -> bool {
        self.kh == 2 && self.kw == 2 && self.stride == (2, 2) && self.padding == (0, 0)
    }
}

/// Max pooling's rule for a window's next cell `v` against the maximum so far: a larger
/// value or any NaN takes over (ties keep the first maximum; a NaN wins, as in PyTorch).
#[inline]
fn takes_over(v: f32, best: f32) -> bool {
    v > best || v.is_nan()
}

/// The first windows of the groups of four that cover a row of `ow >= 4` windows (none
/// for `ow == 0`): every fourth, then, when four does not divide `ow`, a last group
/// overlapping the one before. A window done twice gets the same values again (its maximum
/// and arg-max forward, its cells backward), and no window is left to a scalar loop whose
/// comparisons go either way at random.
fn groups_of_four(ow: usize) -> impl Iterator<Item = usize> {
    let last = (ow >= 4 && !ow.is_multiple_of(4)).then(|| ow - 4);
    (0..ow.saturating_sub(3)).step_by(4).chain(last)
}

/// One plane of 2x2 stride-2 max pooling: `plane: [h, w]`, `o` and `id`: `[oh, ow]`. Same
/// scan order and tie rule as the general loop (first maximum; a NaN wins).
fn max_pool_2x2_plane(w: usize, plane: &[f32], o: &mut [f32], id: &mut [u32]) {
    let ow = w / 2;
    let simd = crate::runtime::cpu::available();
    for (oy, (o_row, id_row)) in o
        .chunks_exact_mut(ow)
        .zip(id.chunks_exact_mut(ow))
        .enumerate()
    {
        let r0 = &plane[2 * oy * w..2 * oy * w + 2 * ow];
        let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * ow];
        let row_base = (2 * oy * w) as u32;
        // Groups of four windows in SSE registers ([`groups_of_four`]); rows of fewer than
        // four windows one at a time.
        let done = if simd && ow >= 4 { ow } else { 0 };
        #[cfg(target_arch = "x86_64")]
        for ox in groups_of_four(done) {
            // SAFETY: `available` checked the CPU; windows `ox..ox + 4` read columns
            // `2 ox..2 ox + 8` of both rows and write four outputs.
            unsafe {
                avx2::max_2x2_four(
                    r0[2 * ox..].as_ptr(),
                    r1[2 * ox..].as_ptr(),
                    row_base + 2 * ox as u32,
                    w as u32,
                    o_row[ox..].as_mut_ptr(),
                    id_row[ox..].as_mut_ptr(),
                )
            };
        }
        for (ox, ((out, arg), (a, b))) in o_row
            .iter_mut()
            .zip(id_row.iter_mut())
            .zip(r0.chunks_exact(2).zip(r1.chunks_exact(2)))
            .enumerate()
            .skip(done)
        {
            let base = row_base + 2 * ox as u32;
            let (mut best, mut at) = (a[0], base);
            for (v, pos) in [
                (a[1], base + 1),
                (b[0], base + w as u32),
                (b[1], base + w as u32 + 1),
            ] {
                if takes_over(v, best) {
                    best = v;
                    at = pos;
                }
            }
            *out = best;
            *arg = at;
        }
    }
}

/// [`max_pool_2x2_plane`] without the arg-maxima (inference): the same maxima, bit for bit,
/// four windows at a time ([`groups_of_four`]) on rows of at least four.
fn max_pool_2x2_values_plane(w: usize, plane: &[f32], o: &mut [f32]) {
    let ow = w / 2;
    let simd = crate::runtime::cpu::available() && ow >= 4;
    for (oy, o_row) in o.chunks_exact_mut(ow).enumerate() {
        let r0 = &plane[2 * oy * w..2 * oy * w + 2 * ow];
        let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * ow];
        #[cfg(target_arch = "x86_64")]
        if simd {
            for ox in groups_of_four(ow) {
                // SAFETY: `available` checked the CPU; windows `ox..ox + 4 <= ow` read
                // columns `2 ox..2 ox + 8` of both rows and write four outputs.
                unsafe {
                    avx2::max_2x2_four_values(
                        r0[2 * ox..].as_ptr(),
                        r1[2 * ox..].as_ptr(),
                        o_row[ox..].as_mut_ptr(),
                    )
                };
            }
            continue;
        }
        for (out, (a, b)) in o_row
            .iter_mut()
            .zip(r0.chunks_exact(2).zip(r1.chunks_exact(2)))
        {
            let mut best = a[0];
            for v in [a[1], b[0], b[1]] {
                if takes_over(v, best) {
                    best = v;
                }
            }
            *out = best;
        }
    }
}

/// One plane of 2x2 stride-2 max pooling backward: every input cell is written once (the
/// window's gradient on its arg-max, zero elsewhere), so `d` needs no clearing first except
/// for a last odd row or column that no window covers.
fn max_pool_2x2_backward_plane(h: usize, w: usize, g: &[f32], id: &[u32], d: &mut [f32]) {
    let (oh, ow) = (h / 2, w / 2);
    let simd = crate::runtime::cpu::available();
    if h % 2 == 1 {
        d[2 * oh * w..].fill(0.0);
    }
    for oy in 0..oh {
        let (r0, r1) = d[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
        if w % 2 == 1 {
            r0[w - 1] = 0.0;
            r1[w - 1] = 0.0;
        }
        let row_base = (2 * oy * w) as u32;
        let gi = &g[oy * ow..(oy + 1) * ow];
        let ii = &id[oy * ow..(oy + 1) * ow];
        let done = if simd && ow >= 4 { ow } else { 0 };
        #[cfg(target_arch = "x86_64")]
        for ox in groups_of_four(done) {
            // SAFETY: `available` checked the CPU; windows `ox..ox + 4` read four gradients
            // and indices and write columns `2 ox..2 ox + 8` of both rows.
            unsafe {
                avx2::scatter_2x2_four(
                    gi[ox..].as_ptr(),
                    ii[ox..].as_ptr(),
                    row_base + 2 * ox as u32,
                    w as u32,
                    r0[2 * ox..].as_mut_ptr(),
                    r1[2 * ox..].as_mut_ptr(),
                )
            };
        }
        for (ox, ((a, b), (&gv, &i))) in r0
            .chunks_exact_mut(2)
            .zip(r1.chunks_exact_mut(2))
            .zip(gi.iter().zip(ii))
            .enumerate()
            .skip(done)
        {
            let k = i.wrapping_sub(row_base + 2 * ox as u32) as usize;
            a[0] = if k == 0 { gv } else { 0.0 };
            a[1] = if k == 1 { gv } else { 0.0 };
            b[0] = if k == w { gv } else { 0.0 };
            b[1] = if k == w + 1 { gv } else { 0.0 };
        }
    }
}

/// Max pooling: `out: [planes, OH, OW]` and `idx`, the arg-max of each window as an index
/// into its `h * w` input plane (the first maximum on ties).
pub fn max_pool2d_forward(s: &PoolShape, x: &[f32], out: &mut [f32], idx: &mut [u32]) {
    let (oh, ow) = s.out_hw();
    let hw = s.h * s.w;
    out.par_chunks_mut(oh * ow)
        .zip(idx.par_chunks_mut(oh * ow))
        .zip(x.par_chunks(hw))
        .with_min_len(s.min_planes())
        .for_each(|((o, id), plane)| {
            if s.is_2x2() {
                return max_pool_2x2_plane(s.w, plane, o, id);
            }
            for oy in 0..oh {
                for ox in 0..ow {
                    let (y0, y1, x0, x1) = s.window(oy, ox);
                    let mut best = f32::NEG_INFINITY;
                    let mut arg = y0 * s.w + x0;
                    for y in y0..y1 {
                        for (xx, &v) in plane[y * s.w + x0..y * s.w + x1].iter().enumerate() {
                            if takes_over(v, best) {
                                best = v;
                                arg = y * s.w + x0 + xx;
                            }
                        }
                    }
                    o[oy * ow + ox] = best;
                    id[oy * ow + ox] = arg as u32;
                }
            }
        });
}

/// The maxima of [`max_pool2d_forward`] without the arg-maxima, for inference: the same
/// values, bit for bit, and no index buffer to fill.
pub fn max_pool2d_values(s: &PoolShape, x: &[f32], out: &mut [f32]) {
    let (oh, ow) = s.out_hw();
    let hw = s.h * s.w;
    out.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(hw))
        .with_min_len(s.min_planes())
        .for_each(|(o, plane)| {
            if s.is_2x2() {
                return max_pool_2x2_values_plane(s.w, plane, o);
            }
            for oy in 0..oh {
                for ox in 0..ow {
                    let (y0, y1, x0, x1) = s.window(oy, ox);
                    let mut best = f32::NEG_INFINITY;
                    for y in y0..y1 {
                        for &v in &plane[y * s.w + x0..y * s.w + x1] {
                            if takes_over(v, best) {
                                best = v;
                            }
                        }
                    }
                    o[oy * ow + ox] = best;
                }
            }
        });
}

/// Max pooling backward: each output gradient goes to its window's arg-max; `dx` is
/// overwritten.
pub fn max_pool2d_backward(s: &PoolShape, dy: &[f32], idx: &[u32], dx: &mut [f32]) {
    let (oh, ow) = s.out_hw();
    dx.par_chunks_mut(s.h * s.w)
        .zip(dy.par_chunks(oh * ow))
        .zip(idx.par_chunks(oh * ow))
        .with_min_len(s.min_planes())
        .for_each(|((d, g), id)| {
            if s.is_2x2() {
                return max_pool_2x2_backward_plane(s.h, s.w, g, id, d);
            }
            d.fill(0.0);
            for (&gv, &i) in g.iter().zip(id) {
                d[i as usize] += gv;
            }
        });
}

/// Average pooling; the divisor is always `kh * kw` (padding counts as zeros).
pub fn avg_pool2d_forward(s: &PoolShape, x: &[f32], out: &mut [f32]) {
    let (oh, ow) = s.out_hw();
    let scale = 1.0 / (s.kh * s.kw) as f32;
    out.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(s.h * s.w))
        .with_min_len(s.min_planes())
        .for_each(|(o, plane)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (y0, y1, x0, x1) = s.window(oy, ox);
                    let mut acc = 0.0f32;
                    for y in y0..y1 {
                        acc += plane[y * s.w + x0..y * s.w + x1].iter().sum::<f32>();
                    }
                    o[oy * ow + ox] = acc * scale;
                }
            }
        });
}

/// Average pooling backward: each output gradient spread evenly over its window; `dx` is
/// overwritten.
pub fn avg_pool2d_backward(s: &PoolShape, dy: &[f32], dx: &mut [f32]) {
    let (oh, ow) = s.out_hw();
    let scale = 1.0 / (s.kh * s.kw) as f32;
    dx.par_chunks_mut(s.h * s.w)
        .zip(dy.par_chunks(oh * ow))
        .with_min_len(s.min_planes())
        .for_each(|(d, g)| {
            d.fill(0.0);
            for oy in 0..oh {
                for ox in 0..ow {
                    let (y0, y1, x0, x1) = s.window(oy, ox);
                    let gv = g[oy * ow + ox] * scale;
                    for y in y0..y1 {
                        for v in &mut d[y * s.w + x0..y * s.w + x1] {
                            *v += gv;
                        }
                    }
                }
            }
        });
}

/// Mean of each `hw`-element plane of `x` into `out: [planes]`.
pub fn global_avg_pool2d_forward(x: &[f32], hw: usize, out: &mut [f32]) {
    let scale = 1.0 / hw as f32;
    out.par_iter_mut()
        .zip(x.par_chunks(hw))
        .with_min_len((4096 / hw.max(1)).max(1))
        .for_each(|(o, plane)| *o = super::vector::sum(plane) * scale);
}

/// Global average pooling backward: `dx` plane `p` filled with `dy[p] / hw`.
pub fn global_avg_pool2d_backward(dy: &[f32], hw: usize, dx: &mut [f32]) {
    let scale = 1.0 / hw as f32;
    dx.par_chunks_mut(hw)
        .zip(dy.par_iter())
        .with_min_len((4096 / hw.max(1)).max(1))
        .for_each(|(d, &g)| d.fill(g * scale));
}
