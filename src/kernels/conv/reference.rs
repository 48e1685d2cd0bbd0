//! Convolution as plain loops, forward and backward: the oracles the tests compare with.

use super::ConvShape;

/// Calls `f([n, o, oy, ox, ci, c, ky, kx, iy, ix])` for every in-bounds tap of the
/// convolution (`ci` the input channel, `c` its index within the group): the seven nested
/// loops both references share.
fn for_each_tap(s: &ConvShape, mut f: impl FnMut([usize; 10])) {
    let (oh, ow) = s.out_hw();
    let (cg, og) = (s.cg(), s.og());
    for n in 0..s.n {
        for o in 0..s.o {
            let gi = o / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    for c in 0..cg {
                        for ky in 0..s.kh {
                            for kx in 0..s.kw {
                                let iy = (oy * s.stride.0 + ky * s.dilation.0) as isize
                                    - s.padding.0 as isize;
                                let ix = (ox * s.stride.1 + kx * s.dilation.1) as isize
                                    - s.padding.1 as isize;
                                if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                    continue;
                                }
                                let ci = gi * cg + c;
                                f([n, o, oy, ox, ci, c, ky, kx, iy as usize, ix as usize]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Index helpers for the references.
struct Idx<'a>(&'a ConvShape);

impl Idx<'_> {
    fn x(&self, n: usize, c: usize, y: usize, x: usize) -> usize {
        ((n * self.0.c + c) * self.0.h + y) * self.0.w + x
    }
    fn w(&self, o: usize, c: usize, ky: usize, kx: usize) -> usize {
        ((o * self.0.cg() + c) * self.0.kh + ky) * self.0.kw + kx
    }
    fn y(&self, n: usize, o: usize, y: usize, x: usize) -> usize {
        let (oh, ow) = self.0.out_hw();
        ((n * self.0.o + o) * oh + y) * ow + x
    }
}

/// The convolution as plain nested loops (f64 sums), the oracle for [`conv2d_forward`](super::conv2d_forward).
pub fn conv2d_reference(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let ix = Idx(s);
    let mut acc = vec![0.0f64; s.out_len()];
    for_each_tap(s, |[n, o, oy, ox, ci, c, ky, kx, iy, ixx]| {
        acc[ix.y(n, o, oy, ox)] += x[ix.x(n, ci, iy, ixx)] as f64 * w[ix.w(o, c, ky, kx)] as f64;
    });
    let (oh, ow) = s.out_hw();
    acc.iter()
        .enumerate()
        .map(|(i, &v)| {
            let o = (i / (oh * ow)) % s.o;
            (v + bias.map_or(0.0, |b| b[o] as f64)) as f32
        })
        .collect()
}

/// Backward as plain nested loops: `(dx, dw, db)`, the oracle for [`conv2d_backward`](super::conv2d_backward).
pub fn conv2d_backward_reference(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let ix = Idx(s);
    let mut dx = vec![0.0f64; x.len()];
    let mut dw = vec![0.0f64; w.len()];
    for_each_tap(s, |[n, o, oy, ox, ci, c, ky, kx, iy, ixx]| {
        let g = dy[ix.y(n, o, oy, ox)] as f64;
        dx[ix.x(n, ci, iy, ixx)] += g * w[ix.w(o, c, ky, kx)] as f64;
        dw[ix.w(o, c, ky, kx)] += g * x[ix.x(n, ci, iy, ixx)] as f64;
    });
    let p = s.p();
    let mut db = vec![0.0f64; s.o];
    for (i, &g) in dy.iter().enumerate() {
        db[(i / p) % s.o] += g as f64;
    }
    let f = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect();
    (f(dx), f(dw), f(db))
}
