use super::*;

/// Values in [-2, 2).
fn values(n: usize, seed: u32) -> Vec<f32> {
    crate::kernels::test_values::values(n, seed)
        .into_iter()
        .map(|v| 2.0 * v)
        .collect()
}

#[test]
fn fused_forward_matches_reference() {
    for &(heads, tq, tk, dk, dv, causal) in &[
        (1, 1, 1, 1, 1, false),
        (1, 1, 1, 3, 2, true),
        (3, 7, 7, 5, 5, true),
        (2, 5, 9, 4, 3, false),
        (4, 33, 33, 16, 16, true),
        // Causal row blocks of 32: two whole ones and a partial one.
        (2, 70, 70, 8, 8, true),
        (5, 17, 3, 8, 1, false),
    ] {
        let d = AttentionDims {
            heads,
            tq,
            tk,
            dk,
            dv,
            causal,
        };
        let (q, k, v) = (
            values(heads * tq * dk, 1),
            values(heads * tk * dk, 2),
            values(heads * tk * dv, 3),
        );
        let (mut o1, mut p1) = (vec![0.0; heads * tq * dv], vec![0.0; heads * tq * tk]);
        let (mut o2, mut p2) = (o1.clone(), p1.clone());
        attention_forward(d, &q, &k, &v, &mut o1, &mut p1);
        attention_reference(d, &q, &k, &v, &mut o2, &mut p2);
        let err = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        };
        assert!(
            err(&o1, &o2) < 1e-5,
            "{d:?}: output error {}",
            err(&o1, &o2)
        );
        assert!(err(&p1, &p2) < 1e-6, "{d:?}: probs error {}", err(&p1, &p2));
        for (r, row) in p1.chunks(tk).enumerate() {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{d:?}: row {r} sums to {sum}");
            if causal {
                let i = r % tq;
                assert!(
                    row[i + 1..].iter().all(|&x| x == 0.0),
                    "{d:?}: row {r} sees the future"
                );
            }
        }
    }
}

#[test]
fn large_scores_do_not_overflow() {
    let d = AttentionDims {
        heads: 1,
        tq: 2,
        tk: 2,
        dk: 1,
        dv: 1,
        causal: false,
    };
    let (mut o, mut p) = (vec![0.0; 2], vec![0.0; 4]);
    attention_forward(
        d,
        &[100.0, -100.0],
        &[100.0, 99.0],
        &[1.0, 2.0],
        &mut o,
        &mut p,
    );
    assert!(p.iter().all(|x| x.is_finite()), "{p:?}");
    assert!((o[0] - 1.0).abs() < 1e-6, "{o:?}");
    assert!((o[1] - 2.0).abs() < 1e-3, "{o:?}");
}

/// Head `hh` of item `b` of a `[B, T, width]` buffer, columns from `start`, as a dense
/// `[T, dh]` block.
fn gather_head(
    x: &[f32],
    b: usize,
    hh: usize,
    t: usize,
    dh: usize,
    width: usize,
    start: usize,
) -> Vec<f32> {
    (0..t)
        .flat_map(|i| {
            let o = (b * t + i) * width + start + hh * dh;
            x[o..o + dh].to_vec()
        })
        .collect()
}

#[test]
fn packed_layout_matches_dense_heads_forward_and_backward() {
    for &(b, n_head, t, dh, causal) in &[
        (2, 3, 7, 5, true),
        (1, 4, 50, 16, false),
        (3, 2, 9, 1, true),
        (2, 2, 70, 8, true),
    ] {
        let c = n_head * dh;
        let heads = b * n_head;
        let d = AttentionDims {
            heads,
            tq: t,
            tk: t,
            dk: dh,
            dv: dh,
            causal,
        };
        let qkv = values(b * t * 3 * c, 7);
        let dy = values(b * t * c, 8);
        // Dense copies of the heads, in (item, head) order.
        let dense = |start: usize| -> Vec<f32> {
            (0..heads)
                .flat_map(|h| gather_head(&qkv, h / n_head, h % n_head, t, dh, 3 * c, start))
                .collect()
        };
        let (q, k, v) = (dense(0), dense(c), dense(2 * c));
        let dy_dense: Vec<f32> = (0..heads)
            .flat_map(|h| gather_head(&dy, h / n_head, h % n_head, t, dh, c, 0))
            .collect();
        let (mut o1, mut p1) = (vec![0.0; heads * t * dh], vec![0.0; heads * t * t]);
        attention_forward(d, &q, &k, &v, &mut o1, &mut p1);
        let (mut o2, mut p2) = (vec![f32::NAN; b * t * c], vec![0.0; heads * t * t]);
        attention_forward_packed(d, n_head, &qkv, &mut o2, &mut p2);
        let err = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        };
        assert!(err(&p1, &p2) < 1e-6, "probabilities");
        for h in 0..heads {
            let got = gather_head(&o2, h / n_head, h % n_head, t, dh, c, 0);
            let e = err(&got, &o1[h * t * dh..(h + 1) * t * dh]);
            assert!(e < 1e-5, "output of head {h}: error {e}");
        }
        let mut g = [
            vec![0.0; heads * t * dh],
            vec![0.0; heads * t * dh],
            vec![0.0; heads * t * dh],
        ];
        let [dq, dk, dv] = &mut g;
        attention_backward(d, &q, &k, &v, &p1, &dy_dense, dq, dk, dv);
        let mut dqkv = vec![f32::NAN; b * t * 3 * c];
        attention_backward_packed(d, n_head, &qkv, &p2, &dy, &mut dqkv);
        for (part, dense_grad) in g.iter().enumerate() {
            for h in 0..heads {
                let got = gather_head(&dqkv, h / n_head, h % n_head, t, dh, 3 * c, part * c);
                let want = &dense_grad[h * t * dh..(h + 1) * t * dh];
                let err = got
                    .iter()
                    .zip(want)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max);
                assert!(err < 1e-5, "gradient {part} of head {h}: error {err}");
            }
        }
        assert!(dqkv.iter().all(|x| x.is_finite()), "dqkv not fully written");
    }
}
