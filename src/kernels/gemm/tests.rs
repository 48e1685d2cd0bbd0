use super::*;
use crate::kernels::test_values::values;

#[test]
fn matches_reference_on_awkward_shapes_and_transposes() {
    for &(m, n, k) in &[
        (1, 1, 1),
        (7, 13, 5),
        (33, 17, 65),
        (64, 3, 129),
        (130, 70, 9),
        // Large enough to be split over threads, by rows and by columns, with a last
        // block shorter than the others.
        (301, 200, 50),
        (97, 500, 33),
    ] {
        for ta in [false, true] {
            for tb in [false, true] {
                for acc in [false, true] {
                    let g = Gemm::new(m, n, k).trans_a(ta).trans_b(tb).accumulate(acc);
                    let (a, b) = (values(m * k, 1), values(k * n, 2));
                    let mut c1 = values(m * n, 3);
                    let mut c2 = c1.clone();
                    sgemm(g, &a, &b, &mut c1);
                    sgemm_reference(g, &a, &b, &mut c2);
                    let err = c1
                        .iter()
                        .zip(&c2)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0, f32::max);
                    assert!(err < 1e-4 * k as f32, "{g:?}: max error {err}");
                }
            }
        }
    }
}

#[test]
fn blocks_of_wider_matrices_match_reference_and_leave_the_rest_alone() {
    for &(m, n, k) in &[(5, 7, 3), (40, 33, 17), (128, 128, 32), (301, 200, 50)] {
        for ta in [false, true] {
            for tb in [false, true] {
                let base = Gemm::new(m, n, k).trans_a(ta).trans_b(tb);
                let g = base
                    .lda(base.a_stored().1 + 3)
                    .ldb(base.b_stored().1 + 5)
                    .ldc(n + 2);
                let (na, nb, nc) = g.spans();
                let (a, b) = (values(na, 1), values(nb, 2));
                let mut c1 = values(nc, 3);
                let mut c2 = c1.clone();
                sgemm(g, &a, &b, &mut c1);
                sgemm_reference(g, &a, &b, &mut c2);
                let before = values(nc, 3);
                for (idx, ((x, y), old)) in c1.iter().zip(&c2).zip(&before).enumerate() {
                    if idx % (n + 2) >= n {
                        assert_eq!(x, old, "{g:?}: wrote the gap at {idx}");
                    } else {
                        assert!((x - y).abs() < 1e-4 * k as f32, "{g:?}: error at {idx}");
                    }
                }
                // Through the raw entry as well.
                let mut c3 = before.clone();
                // SAFETY: the buffers hold the spans `g` reaches.
                unsafe { sgemm_on_this_thread(g, a.as_ptr(), b.as_ptr(), c3.as_mut_ptr()) };
                assert!(c3
                    .iter()
                    .zip(&c1)
                    .all(|(x, y)| (x - y).abs() < 1e-4 * k as f32));
            }
        }
    }
}
