use super::*;

#[test]
fn exp_in_place_sum_gives_the_8_lane_values_bit_for_bit() {
    // Every length's tails, values across exp's whole range, its limits and NaN.
    let special = [
        -1e30,
        -88.0,
        -87.3,
        0.0,
        -0.0,
        88.7,
        88.8,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    for len in 0..40 {
        let x: Vec<f32> = (0..len)
            .map(|i| match i % 11 {
                9 | 10 => special[i % special.len()],
                _ => ((i * 37 % 101) as f32 - 50.0) * 1.9,
            })
            .collect();
        for (shift, scale) in [(0.0, 1.0), (3.5, 0.125)] {
            let (mut got, mut want) = (x.clone(), x.clone());
            let total = exp_in_place_sum(&mut got, shift, scale);
            let want_total = exp_in_place_sum_8(&mut want, shift, scale);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "length {len}, element {i} ({}): {g} vs {w}",
                    x[i]
                );
            }
            assert!(
                total.to_bits() == want_total.to_bits() || (total.is_nan() && want_total.is_nan()),
                "length {len}: sum {total} vs {want_total}"
            );
        }
    }
}

#[test]
fn sums_and_dots_match_plain_loops() {
    let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
    let y: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
    let plain_sum: f32 = x.iter().sum();
    let plain_dot: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
    assert!((sum(&x) - plain_sum).abs() < 1e-5);
    assert!((dot(&x, &y) - plain_dot).abs() < 1e-5);
    let plain_sq: f64 = x.iter().map(|&v| (v as f64 - 0.3).powi(2)).sum();
    let plain_dd: f64 = x
        .iter()
        .zip(&y)
        .map(|(&a, &v)| a as f64 * (v as f64 - 0.3))
        .sum();
    assert!((sum_sq_dev(&x, 0.3) as f64 - plain_sq).abs() < 1e-4);
    assert!((dot_dev(&x, &y, 0.3) as f64 - plain_dd).abs() < 1e-4);
    assert_eq!(max_index(&[1.0, 3.0, 3.0, -1.0]), (3.0, 1));
    let plain_max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(max(&x), plain_max);
    let mut with_nan = x.clone();
    with_nan[3] = f32::NAN;
    with_nan[30] = f32::NAN;
    assert_eq!(max(&with_nan), plain_max);
    assert_eq!(max(&[]), f32::NEG_INFINITY);
    assert_eq!(max(&[f32::NAN; 9]), f32::NEG_INFINITY);
    for len in [0, 5, 8, 19] {
        let mut e = x[..len].to_vec();
        let total = exp_in_place_sum(&mut e, 0.4, 1.7);
        for (got, &v) in e.iter().zip(&x) {
            assert_eq!(*got, crate::kernels::math::exp((v - 0.4) * 1.7));
        }
        let plain: f32 = e.iter().sum();
        assert!((total - plain).abs() < 1e-5, "{len}: {total} vs {plain}");
    }
}
