use super::*;
use crate::kernels::test_values::values;

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

fn pool(planes: usize, hw: (usize, usize), k: (usize, usize), st: usize, pad: usize) -> PoolShape {
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
