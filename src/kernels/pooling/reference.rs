//! Plain-loop pooling, the oracles the tests compare the kernels with.

use super::PoolShape;

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

/// Max pooling as plain loops: `(out, idx)`, the oracle for [`max_pool2d_forward`](super::max_pool2d_forward).
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

/// Average pooling as plain loops, the oracle for [`avg_pool2d_forward`](super::avg_pool2d_forward).
pub fn avg_pool2d_reference(s: &PoolShape, x: &[f32]) -> Vec<f32> {
    let (oh, ow) = s.out_hw();
    let mut out = vec![0.0f32; s.planes * oh * ow];
    let div = (s.kh * s.kw) as f32;
    for_each_window_tap(s, |p, oy, ox, y, xx| {
        out[(p * oh + oy) * ow + ox] += x[(p * s.h + y) * s.w + xx] / div;
    });
    out
}

/// Average pooling backward as plain loops, the oracle for [`avg_pool2d_backward`](super::avg_pool2d_backward).
pub fn avg_pool2d_backward_reference(s: &PoolShape, dy: &[f32]) -> Vec<f32> {
    let (oh, ow) = s.out_hw();
    let mut dx = vec![0.0f32; s.planes * s.h * s.w];
    let div = (s.kh * s.kw) as f32;
    for_each_window_tap(s, |p, oy, ox, y, xx| {
        dx[(p * s.h + y) * s.w + xx] += dy[(p * oh + oy) * ow + ox] / div;
    });
    dx
}
