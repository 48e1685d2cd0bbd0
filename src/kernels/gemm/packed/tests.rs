use super::*;
use crate::kernels::test_values::values;

#[test]
fn packed_products_match_the_reference() {
    // Tails in every direction: rows not a multiple of 6, columns not of 16, k of 1.
    for &(m, n, k) in &[
        (1, 16, 8),
        (7, 33, 5),
        (13, 100, 17),
        (6, 16, 1),
        (128, 384, 128),
        (2, 1, 3),
    ] {
        let a = values(m * k, 1);
        let w = values(n * k, 2);
        let packed = PackedWeight::pack(&w, n, k);
        for (isa, accumulate) in every_tile().flat_map(|i| [(i, false), (i, true)]) {
            let start = values(m * n, 3);
            let mut got = start.clone();
            let store = Epilogue {
                accumulate,
                ..Epilogue::default()
            };
            gemm_packed_on(isa, &a, m, &packed, &mut got, store);
            let mut want = start.clone();
            gemm_packed_reference(&a, m, &w, n, k, &mut want, accumulate);
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "{isa:?} [{m}, {n}, {k}] accumulate {accumulate}, element {i}: {g} vs {e}"
                );
            }
        }
    }
}

#[test]
fn the_store_adds_the_bias_then_applies_the_gelu() {
    let (m, n, k) = (13, 37, 21); // row and column tails
    let (a, w, bias) = (values(m * k, 6), values(n * k, 7), values(n, 8));
    let packed = PackedWeight::pack(&w, n, k);
    for (isa, accumulate) in every_tile().flat_map(|i| [(i, false), (i, true)]) {
        let start = values(m * n, 9);
        let mut got = start.clone();
        let store = Epilogue {
            bias: Some(&bias),
            accumulate,
            gelu: true,
            ..Epilogue::default()
        };
        gemm_packed_on(isa, &a, m, &packed, &mut got, store);
        let mut sums = vec![0.0; m * n];
        gemm_packed_on(isa, &a, m, &packed, &mut sums, Epilogue::default());
        for (i, (g, s)) in got.iter().zip(&sums).enumerate() {
            let v = s + bias[i % n];
            let v = if accumulate { start[i] + v } else { v };
            assert_eq!(*g, crate::kernels::math::gelu(v), "{isa:?} element {i}");
        }
    }
}

/// The portable tile and every SIMD tile this CPU runs.
fn every_tile() -> impl Iterator<Item = Option<Isa>> {
    std::iter::once(None).chain(Isa::available().into_iter().map(Some))
}

#[test]
fn portable_tile_matches_the_simd_tiles() {
    let (k, rows) = (37, 5);
    let a = values(rows * k, 4);
    let b = values(k * NR, 5);
    let plain = tile_sums_portable(&a, (k, 1), k, &b, rows);
    for isa in Isa::available() {
        let simd = tile_sums_on(Some(isa), &a, (k, 1), k, &b, rows);
        for (s, p) in simd.iter().flatten().zip(plain.iter().flatten()) {
            assert!(
                (s - p).abs() <= 1e-5 * (1.0 + p.abs()),
                "{isa:?}: {s} vs {p}"
            );
        }
        // rows past `rows` stay zero
        assert!(simd[5].iter().all(|&v| v == 0.0), "{isa:?}");
    }
}

#[test]
fn both_packings_lay_out_the_same_panels() {
    // k with and without a tail of 8, n with whole and partial panels.
    for &(n, k) in &[(16, 8), (33, 13), (40, 24), (5, 3), (300, 301)] {
        let w = values(n * k, 10); // [n, k]
        let mut w_ld = vec![-9.0; n * (k + 3)]; // [n, k] with rows 3 longer
        let mut wt = vec![0.0; k * n]; // [k, n], and again with rows 7 longer
        let mut wt_ld = vec![-9.0; k * (n + 7)];
        for j in 0..n {
            for kk in 0..k {
                w_ld[j * (k + 3) + kk] = w[j * k + kk];
                wt[kk * n + j] = w[j * k + kk];
                wt_ld[kk * (n + 7) + j] = w[j * k + kk];
            }
        }
        let packed = PackedWeight::pack(&w, n, k);
        for other in [
            PackedWeight::pack_ld(&w_ld, n, k, k + 3),
            PackedWeight::pack_rows(&wt, k, n, n),
            PackedWeight::pack_rows(&wt_ld, k, n, n + 7),
        ] {
            assert_eq!(packed.data, other.data, "[{n}, {k}]");
        }
        // Panel layout: B[kk, j] = w[j, kk] at p·k·16 + kk·16 + j % 16, zero past n.
        for p in 0..packed.panels() {
            for kk in 0..k {
                for j in 0..NR {
                    let col = p * NR + j;
                    let want = if col < n { w[col * k + kk] } else { 0.0 };
                    assert_eq!(packed.panel(p)[kk * NR + j], want);
                }
            }
        }
    }
}

#[test]
fn a_tile_reads_rows_lda_apart_and_the_first_k_rows_of_the_panel() {
    let (lda, k, rows) = (40, 29, 6);
    let a = values(rows * lda, 13);
    let b = values(50 * NR, 14); // a panel longer than k
    let tile = tile_sums(&a, lda, k, &b, rows);
    for r in 0..rows {
        for j in 0..NR {
            let want: f64 = (0..k)
                .map(|kk| a[r * lda + kk] as f64 * b[kk * NR + j] as f64)
                .sum();
            assert!((tile[r][j] as f64 - want).abs() < 1e-5, "({r}, {j})");
        }
    }
    assert_eq!(tile_sums(&a, lda, k, &b, 0), [[0.0; NR]; MR]);
}
