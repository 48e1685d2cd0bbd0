use super::weight_grad::{transpose_into_panels, weight_grad_group_on};
use super::*;
use crate::kernels::im2col::im2col;
use crate::kernels::test_values::values;

fn shape(
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: (usize, usize),
    pad: (usize, usize),
) -> ConvShape {
    ConvShape {
        n: 1,
        c,
        h,
        w,
        o,
        kh: k.0,
        kw: k.1,
        stride: (1, 1),
        padding: pad,
        dilation: (1, 1),
        groups: 1,
    }
}

#[test]
fn transposes_into_panels_with_tails() {
    // Whole 8 x 8 blocks, a pixel tail (49 = 6 * 8 + 1), channel tails inside a panel
    // (21 = 16 + 5) and a panel of fewer than 8 channels.
    for (og, p) in [(16, 64), (64, 49), (21, 13), (3, 9), (32, 196)] {
        let dy = values(og * p, 6);
        let mut dyt = vec![f32::NAN; og.div_ceil(NR) * p * NR];
        transpose_into_panels(&dy, og, p, &mut dyt);
        for c in 0..og {
            for px in 0..p {
                let got = dyt[(c / NR) * p * NR + px * NR + c % NR];
                assert_eq!(
                    got,
                    dy[c * p + px],
                    "og={og} p={p}: channel {c}, pixel {px}"
                );
            }
        }
    }
}

#[test]
fn matches_im2col_then_product() {
    for isa in Isa::available() {
        matches_im2col_then_product_on(isa);
    }
}

fn matches_im2col_then_product_on(isa: Isa) {
    let mut scratch = ConvScratch::default();
    // resnet20's three stages, lenet5's 5x5 layers, a non-square kernel, a padding
    // wider than the kernel's reach and a 1-pixel-wide image; one scratch for all (its
    // border must be rebuilt when the geometry changes).
    for s in [
        shape(16, 28, 28, 16, (3, 3), (1, 1)),
        shape(32, 14, 14, 32, (3, 3), (1, 1)),
        shape(64, 7, 7, 64, (3, 3), (1, 1)),
        shape(1, 28, 28, 6, (5, 5), (2, 2)),
        shape(6, 14, 14, 16, (5, 5), (0, 0)),
        shape(3, 9, 5, 7, (2, 3), (2, 1)),
        shape(2, 4, 1, 3, (3, 1), (1, 0)),
        shape(16, 28, 28, 16, (3, 3), (1, 1)),
    ] {
        let (oh, ow) = s.out_hw();
        let k = s.c * s.kh * s.kw;
        let x = values(s.c * s.h * s.w, 1);
        let w = values(s.o * k, 2);
        let mut cols = vec![0.0; k * oh * ow];
        im2col(&s, &x, &mut cols);
        for acc in [false, true] {
            let mut want = values(s.o * oh * ow, 3);
            let mut got = want.clone();
            let g = crate::kernels::gemm::Gemm::new(s.o, oh * ow, k).accumulate(acc);
            crate::kernels::gemm::sgemm_reference(g, &w, &cols, &mut want);
            let packed = pack_weight_for(&s, &w, isa);
            conv_group(
                &s,
                &packed[0],
                &x,
                &mut got,
                acc,
                Epilogue::default(),
                &mut scratch,
            );
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                err < 1e-4 * k as f32,
                "{isa:?} {s:?} acc={acc}: max error {err}"
            );
        }
        // Weight gradient: dWᵀ [K, O] += cols · dyᵀ, against the reference product.
        let dy = values(s.o * oh * ow, 4);
        let mut want = values(k * s.o, 5);
        let mut got = want.clone();
        let g = crate::kernels::gemm::Gemm::new(k, s.o, oh * ow)
            .trans_b(true)
            .accumulate(true);
        crate::kernels::gemm::sgemm_reference(g, &cols, &dy, &mut want);
        weight_grad_group_on(isa, &s, &x, &dy, &mut got, &mut scratch);
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            err < 1e-4 * (oh * ow) as f32,
            "{isa:?} {s:?} weight grad: max error {err}"
        );
    }
}
