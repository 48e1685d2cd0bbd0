//! 2-D pooling over `[N, C, H, W]`, each `(n, c)` plane independent: max pooling (arg-max
//! indices kept for backward), average pooling (padding counted in the divisor, PyTorch's
//! `count_include_pad=True`) and global average pooling. The fast kernels run in parallel over
//! planes; plain references sit beside them.

use rayon::prelude::*;

/// Sizes of one pooling: `planes = N * C` planes of `h x w`, window `kh x kw`. Pairs are
/// `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
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
    let simd = super::isa::available();
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
                simd::max_2x2_four(
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
    let simd = super::isa::available() && ow >= 4;
    for (oy, o_row) in o.chunks_exact_mut(ow).enumerate() {
        let r0 = &plane[2 * oy * w..2 * oy * w + 2 * ow];
        let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * ow];
        #[cfg(target_arch = "x86_64")]
        if simd {
            for ox in groups_of_four(ow) {
                // SAFETY: `available` checked the CPU; windows `ox..ox + 4 <= ow` read
                // columns `2 ox..2 ox + 8` of both rows and write four outputs.
                unsafe {
                    simd::max_2x2_four_values(
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
    let simd = super::isa::available();
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
                simd::scatter_2x2_four(
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

/// SSE forms of the 2x2 windows, four at a time (branch-free: on real activations the
/// comparisons go either way at random, and the scalar loop paid for its mispredictions).
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// The cells of four 2x2 windows in the order the maximum visits them: top-left,
    /// top-right, bottom-left, bottom-right (the even and odd columns of rows `r0` and
    /// `r1`, 8 floats each).
    ///
    /// # Safety
    /// AVX2 present; 8 floats readable at `r0` and `r1`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn cells(r0: *const f32, r1: *const f32) -> [__m128; 4] {
        let (t0, t1) = (_mm_loadu_ps(r0), _mm_loadu_ps(r0.add(4)));
        let (b0, b1) = (_mm_loadu_ps(r1), _mm_loadu_ps(r1.add(4)));
        [
            _mm_shuffle_ps::<0b10_00_10_00>(t0, t1),
            _mm_shuffle_ps::<0b11_01_11_01>(t0, t1),
            _mm_shuffle_ps::<0b10_00_10_00>(b0, b1),
            _mm_shuffle_ps::<0b11_01_11_01>(b0, b1),
        ]
    }

    /// Four 2x2 windows: rows `r0` and `r1` (8 floats each), the first window's top-left
    /// index `base` in its plane, row width `w`; writes four maxima and arg-maxima with the
    /// scalar loop's rule (first maximum in the order top-left, top-right, bottom-left,
    /// bottom-right; a NaN wins).
    ///
    /// # Safety
    /// AVX2 present; 8 floats readable at `r0` and `r1`, 4 writable at `o` and `id`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn max_2x2_four(
        r0: *const f32,
        r1: *const f32,
        base: u32,
        w: u32,
        o: *mut f32,
        id: *mut u32,
    ) {
        let [first, candidates @ ..] = cells(r0, r1);
        let left = _mm_setr_epi32(
            base as i32,
            base as i32 + 2,
            base as i32 + 4,
            base as i32 + 6,
        );
        let offsets = [1, w as i32, w as i32 + 1];
        let mut best = first;
        let mut at = left;
        for (v, off) in candidates.into_iter().zip(offsets) {
            let take = _mm_or_ps(_mm_cmpgt_ps(v, best), _mm_cmpunord_ps(v, v));
            best = _mm_blendv_ps(best, v, take);
            let pos = _mm_add_epi32(left, _mm_set1_epi32(off));
            at = _mm_castps_si128(_mm_blendv_ps(
                _mm_castsi128_ps(at),
                _mm_castsi128_ps(pos),
                take,
            ));
        }
        _mm_storeu_ps(o, best);
        _mm_storeu_si128(id as *mut __m128i, at);
    }

    /// [`max_2x2_four`] without the arg-maxima: the same four maxima (the same order of
    /// candidates and the same rule, so ties between `-0.0` and `0.0` resolve alike).
    ///
    /// # Safety
    /// AVX2 present; 8 floats readable at `r0` and `r1`, 4 writable at `o`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn max_2x2_four_values(r0: *const f32, r1: *const f32, o: *mut f32) {
        let [mut best, candidates @ ..] = cells(r0, r1);
        for v in candidates {
            // `v > best ? v : best` (a NaN `best` stays), then a NaN `v` wins.
            best = _mm_blendv_ps(_mm_max_ps(v, best), v, _mm_cmpunord_ps(v, v));
        }
        _mm_storeu_ps(o, best);
    }

    /// The backward of [`max_2x2_four`]: each of four gradients `g` goes to its window's
    /// cell `id` (plane index), zeros to the other three; writes 8 floats of each row.
    ///
    /// # Safety
    /// AVX2 present; 4 values readable at `g` and `id`, 8 writable at `r0` and `r1`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn scatter_2x2_four(
        g: *const f32,
        id: *const u32,
        base: u32,
        w: u32,
        r0: *mut f32,
        r1: *mut f32,
    ) {
        let gv = _mm_loadu_ps(g);
        let left = _mm_setr_epi32(
            base as i32,
            base as i32 + 2,
            base as i32 + 4,
            base as i32 + 6,
        );
        let k = _mm_sub_epi32(_mm_loadu_si128(id as *const __m128i), left);
        let cell = |off: i32| {
            _mm_and_ps(
                gv,
                _mm_castsi128_ps(_mm_cmpeq_epi32(k, _mm_set1_epi32(off))),
            )
        };
        let (tl, tr) = (cell(0), cell(1));
        let (bl, br) = (cell(w as i32), cell(w as i32 + 1));
        _mm_storeu_ps(r0, _mm_unpacklo_ps(tl, tr));
        _mm_storeu_ps(r0.add(4), _mm_unpackhi_ps(tl, tr));
        _mm_storeu_ps(r1, _mm_unpacklo_ps(bl, br));
        _mm_storeu_ps(r1.add(4), _mm_unpackhi_ps(bl, br));
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

/// Calls `f(plane, oy, ox, y, x)` for every output and every input position of its window
/// that is inside the plane: the loops the references share.
fn for_each_window_tap(s: &PoolShape, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
    let (oh, ow) = s.out_hw();
    for p in 0..s.planes {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..s.kh {
                    for kx in 0..s.kw {
                        let y = (oy * s.stride.0 + ky) as isize - s.padding.0 as isize;
                        let x = (ox * s.stride.1 + kx) as isize - s.padding.1 as isize;
                        if y >= 0 && x >= 0 && y < s.h as isize && x < s.w as isize {
                            f(p, oy, ox, y as usize, x as usize);
                        }
                    }
                }
            }
        }
    }
}

/// Max pooling as plain loops: `(out, idx)`, the oracle for [`max_pool2d_forward`].
pub fn max_pool2d_reference(s: &PoolShape, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let (oh, ow) = s.out_hw();
    let mut out = vec![f32::NEG_INFINITY; s.planes * oh * ow];
    let mut idx = vec![u32::MAX; out.len()];
    for_each_window_tap(s, |p, oy, ox, y, xx| {
        let o = (p * oh + oy) * ow + ox;
        let v = x[(p * s.h + y) * s.w + xx];
        if idx[o] == u32::MAX || v > out[o] {
            out[o] = v;
            idx[o] = (y * s.w + xx) as u32;
        }
    });
    (out, idx)
}

/// Average pooling as plain loops, the oracle for [`avg_pool2d_forward`].
pub fn avg_pool2d_reference(s: &PoolShape, x: &[f32]) -> Vec<f32> {
    let (oh, ow) = s.out_hw();
    let mut out = vec![0.0f32; s.planes * oh * ow];
    let div = (s.kh * s.kw) as f32;
    for_each_window_tap(s, |p, oy, ox, y, xx| {
        out[(p * oh + oy) * ow + ox] += x[(p * s.h + y) * s.w + xx] / div;
    });
    out
}

/// Average pooling backward as plain loops, the oracle for [`avg_pool2d_backward`].
pub fn avg_pool2d_backward_reference(s: &PoolShape, dy: &[f32]) -> Vec<f32> {
    let (oh, ow) = s.out_hw();
    let mut dx = vec![0.0f32; s.planes * s.h * s.w];
    let div = (s.kh * s.kw) as f32;
    for_each_window_tap(s, |p, oy, ox, y, xx| {
        dx[(p * s.h + y) * s.w + xx] += dy[(p * oh + oy) * ow + ox] / div;
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_values::values;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    fn pool(
        planes: usize,
        hw: (usize, usize),
        k: (usize, usize),
        st: usize,
        pad: usize,
    ) -> PoolShape {
        PoolShape {
            planes,
            h: hw.0,
            w: hw.1,
            kh: k.0,
            kw: k.1,
            stride: (st, st),
            padding: (pad, pad),
        }
    }

    fn awkward() -> Vec<PoolShape> {
        vec![
            pool(6, (8, 8), (2, 2), 2, 0),
            pool(5, (7, 9), (2, 2), 2, 0),
            pool(3, (9, 6), (2, 2), 2, 0),
            pool(2, (2, 3), (2, 2), 2, 0),
            // Groups of four windows in SSE registers, with tails: lenet5's 28 x 28, an odd
            // width.
            pool(2, (28, 28), (2, 2), 2, 0),
            pool(3, (10, 11), (2, 2), 2, 0),
            pool(3, (7, 7), (3, 3), 2, 1),
            pool(1, (5, 6), (3, 2), 1, 1),
            pool(700, (6, 5), (3, 3), 3, 1),
            pool(2, (9, 4), (4, 4), 2, 2),
        ]
    }

    /// [`max_pool2d_forward`] into fresh buffers: the maxima and their arg-maxima.
    fn forward_with_indices(s: &PoolShape, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
        let (oh, ow) = s.out_hw();
        let mut out = vec![0.0; s.planes * oh * ow];
        let mut idx = vec![0; out.len()];
        max_pool2d_forward(s, x, &mut out, &mut idx);
        (out, idx)
    }

    #[test]
    fn max_pool_matches_reference() {
        for s in awkward() {
            assert_eq!(s.problem(), None);
            let (oh, ow) = s.out_hw();
            let x = values(s.planes * s.h * s.w, 1);
            let (out, idx) = forward_with_indices(&s, &x);
            let (r, ri) = max_pool2d_reference(&s, &x);
            assert_eq!(out, r, "{s:?}");
            assert_eq!(idx, ri, "{s:?}");
            let mut maxima = vec![f32::NAN; out.len()];
            max_pool2d_values(&s, &x, &mut maxima);
            assert_eq!(maxima, out, "{s:?}: values only");
            // Backward: each gradient lands on its arg-max, summed where windows share one.
            let dy = values(out.len(), 2);
            let mut dx = vec![f32::NAN; x.len()];
            max_pool2d_backward(&s, &dy, &idx, &mut dx);
            let mut rdx = vec![0.0; x.len()];
            for (o, (&g, &i)) in dy.iter().zip(&ri).enumerate() {
                rdx[o / (oh * ow) * s.h * s.w + i as usize] += g;
            }
            assert!(close(&dx, &rdx), "{s:?}");
        }
    }

    #[test]
    fn max_pool_ties_pick_the_first_maximum() {
        // Coarse values make ties in most windows; the 2x2 path must agree with the oracle.
        for s in [
            pool(4, (6, 8), (2, 2), 2, 0),
            pool(2, (6, 20), (2, 2), 2, 0),
            pool(4, (6, 8), (3, 3), 2, 1),
        ] {
            let x: Vec<f32> = values(s.planes * s.h * s.w, 7)
                .iter()
                .map(|v| (v * 2.0).round())
                .collect();
            assert_eq!(
                forward_with_indices(&s, &x),
                max_pool2d_reference(&s, &x),
                "{s:?}"
            );
        }
    }

    #[test]
    fn values_only_keeps_the_signed_zero_and_the_nan_of_the_full_kernel() {
        // Windows of signed zeros, NaNs with different payloads and negative values, on
        // widths that take the SSE groups (with an overlapping last group) and the scalar
        // loop: the maxima must be the full kernel's bit for bit.
        let specials = [
            0.0,
            -0.0,
            -0.0,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7fc0_0001),
            -1.0,
            f32::NEG_INFINITY,
        ];
        let (mut nan, mut negative_zero) = (false, false);
        for s in [
            pool(3, (6, 28), (2, 2), 2, 0),
            pool(3, (4, 10), (2, 2), 2, 0),
            pool(5, (8, 6), (2, 2), 2, 0),
            pool(2, (5, 7), (3, 3), 2, 1),
        ] {
            let x: Vec<f32> = values(s.planes * s.h * s.w, 9)
                .iter()
                .map(|v| specials[((v + 1.0) * 500.0).round() as usize % specials.len()])
                .collect();
            let (out, _) = forward_with_indices(&s, &x);
            let mut maxima = vec![0.0; out.len()];
            max_pool2d_values(&s, &x, &mut maxima);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&maxima), bits(&out), "{s:?}");
            nan |= out.iter().any(|v| v.is_nan());
            negative_zero |= bits(&out).contains(&(-0.0f32).to_bits());
        }
        assert!(
            nan && negative_zero,
            "the inputs must make both kinds of maxima"
        );
    }

    #[test]
    fn avg_pool_matches_reference() {
        for s in awkward() {
            let (oh, ow) = s.out_hw();
            let x = values(s.planes * s.h * s.w, 3);
            let mut out = vec![0.0; s.planes * oh * ow];
            avg_pool2d_forward(&s, &x, &mut out);
            assert!(close(&out, &avg_pool2d_reference(&s, &x)), "{s:?}");
            let dy = values(out.len(), 4);
            let mut dx = vec![f32::NAN; x.len()];
            avg_pool2d_backward(&s, &dy, &mut dx);
            assert!(close(&dx, &avg_pool2d_backward_reference(&s, &dy)), "{s:?}");
        }
    }

    #[test]
    fn padded_average_counts_the_padding() {
        // 2x2 plane, 3x3 window, padding 1: the single output sums all four over nine.
        let s = pool(1, (2, 2), (3, 3), 1, 1);
        let mut out = vec![0.0; 4];
        avg_pool2d_forward(&s, &[1.0, 2.0, 3.0, 4.0], &mut out);
        assert_eq!(s.out_hw(), (2, 2));
        assert!((out[0] - 10.0 / 9.0).abs() < 1e-6);
    }

    #[test]
    fn global_average_by_hand() {
        let x = [1.0, 2.0, 3.0, 6.0, 10.0, 20.0];
        let mut out = [0.0; 2];
        global_avg_pool2d_forward(&x, 3, &mut out);
        assert_eq!(out, [2.0, 12.0]);
        let mut dx = [0.0; 6];
        global_avg_pool2d_backward(&[3.0, 6.0], 3, &mut dx);
        assert_eq!(dx, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn bad_pooling_is_named() {
        assert!(pool(1, (4, 4), (2, 2), 2, 2)
            .problem()
            .unwrap()
            .contains("at most half"));
        assert!(pool(1, (2, 2), (5, 5), 1, 1)
            .problem()
            .unwrap()
            .contains("larger than"));
    }
}
