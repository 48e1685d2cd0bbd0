use super::backward::input_grad_as_conv;
use super::*;
use crate::kernels::test_values::values;

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[allow(clippy::too_many_arguments)]
fn shape(
    n: usize,
    c: usize,
    hw: (usize, usize),
    o: usize,
    k: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
) -> ConvShape {
    ConvShape {
        n,
        c,
        h: hw.0,
        w: hw.1,
        o,
        kh: k.0,
        kw: k.1,
        stride,
        padding,
        dilation,
        groups,
    }
}

fn awkward_shapes() -> Vec<ConvShape> {
    vec![
        shape(2, 3, (7, 9), 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),
        shape(1, 3, (7, 9), 4, (3, 3), (1, 1), (0, 0), (1, 1), 1),
        shape(3, 2, (9, 8), 3, (3, 3), (2, 2), (1, 1), (1, 1), 1),
        shape(2, 2, (11, 10), 3, (3, 2), (2, 1), (2, 1), (2, 2), 1),
        shape(2, 4, (6, 7), 6, (3, 3), (1, 2), (1, 0), (1, 1), 2),
        shape(5, 4, (5, 5), 4, (1, 1), (1, 1), (0, 0), (1, 1), 2),
        shape(1, 3, (5, 6), 2, (1, 1), (1, 1), (0, 0), (1, 1), 1),
        shape(4, 3, (7, 7), 5, (1, 1), (2, 2), (0, 0), (1, 1), 1),
        shape(3, 1, (4, 5), 2, (5, 5), (1, 1), (2, 2), (1, 1), 1),
        shape(2, 6, (8, 5), 3, (2, 3), (3, 2), (1, 2), (1, 1), 3),
        shape(17, 2, (5, 4), 3, (3, 3), (1, 1), (1, 1), (1, 1), 1),
        // Input gradient as a flipped convolution: groups, non-square kernel and padding.
        shape(3, 4, (6, 5), 6, (3, 2), (1, 1), (1, 0), (1, 1), 2),
    ]
}

/// Runs `f` in pools of 1 and 3 threads: one thread takes the direct kernels for every
/// stride-1 convolution, three threads the column path for batches smaller than three.
fn with_thread_counts(f: impl Fn() + Sync) {
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(&f);
    }
}

#[test]
fn forward_matches_reference_on_awkward_shapes() {
    with_thread_counts(forward_matches_reference);
}

fn forward_matches_reference() {
    for s in awkward_shapes() {
        assert_eq!(s.problem(), None);
        let x = values(s.n * s.c * s.h * s.w, 1);
        let w = values(s.weight_len(), 2);
        let b = values(s.o, 3);
        for bias in [None, Some(&b[..])] {
            let mut out = vec![f32::NAN; s.out_len()];
            conv2d_forward(&s, &x, &w, bias, &mut out);
            let r = conv2d_reference(&s, &x, &w, bias);
            assert!(max_err(&out, &r) < 1e-4, "{s:?}: {}", max_err(&out, &r));
        }
    }
}

#[test]
fn epilogue_matches_the_separate_passes_on_awkward_shapes() {
    with_thread_counts(epilogue_matches_the_separate_passes);
}

/// Bias, batch-norm affine and ReLU as the output is stored: the same values as the
/// plain convolution followed by `Epilogue::apply`, bit for bit, on both engines.
fn epilogue_matches_the_separate_passes() {
    for s in awkward_shapes() {
        let x = values(s.n * s.c * s.h * s.w, 7);
        let w = values(s.weight_len(), 8);
        let (b, scale, shift) = (values(s.o, 9), values(s.o, 10), values(s.o, 11));
        for (bias, affine, relu) in [
            (None, None, true),
            (Some(&b[..]), None, true),
            (None, Some((&scale[..], &shift[..])), false),
            (Some(&b[..]), Some((&scale[..], &shift[..])), true),
        ] {
            let epilogue = Epilogue {
                bias,
                affine,
                relu,
                ..Epilogue::default()
            };
            let mut got = vec![f32::NAN; s.out_len()];
            conv2d_forward_then(&s, &x, &w, epilogue, &mut got);
            let mut want = vec![f32::NAN; s.out_len()];
            conv2d_forward(&s, &x, &w, None, &mut want);
            for (i, row) in want.chunks_exact_mut(s.p()).enumerate() {
                epilogue.apply(i % s.o, row);
            }
            assert_eq!(got, want, "{s:?} {epilogue:?}");
            if relu {
                assert!(got.contains(&0.0) && got.iter().any(|&v| v > 0.0));
            }
        }
    }
}

#[test]
fn backward_matches_reference_on_awkward_shapes() {
    with_thread_counts(backward_matches_reference);
}

fn backward_matches_reference() {
    for s in awkward_shapes() {
        let x = values(s.n * s.c * s.h * s.w, 4);
        let w = values(s.weight_len(), 5);
        let dy = values(s.out_len(), 6);
        let (rdx, rdw, rdb) = conv2d_backward_reference(&s, &x, &w, &dy);
        let mut dx = vec![f32::NAN; x.len()];
        let mut dw = vec![f32::NAN; w.len()];
        let mut db = vec![f32::NAN; s.o];
        conv2d_backward(&s, &x, &w, &dy, Some(&mut dx), Some(&mut dw), Some(&mut db));
        assert!(max_err(&dx, &rdx) < 1e-4, "{s:?} dx");
        assert!(max_err(&dw, &rdw) < 1e-3, "{s:?} dw");
        assert!(max_err(&db, &rdb) < 1e-3, "{s:?} db");
        // Only some gradients asked for.
        let mut dx2 = vec![f32::NAN; x.len()];
        conv2d_backward(&s, &x, &w, &dy, Some(&mut dx2), None, None);
        assert_eq!(dx, dx2);
        let mut dw2 = vec![f32::NAN; w.len()];
        conv2d_backward(&s, &x, &w, &dy, None, Some(&mut dw2), None);
        assert_eq!(dw, dw2);
    }
}

#[test]
fn input_gradient_is_a_convolution_only_where_it_applies() {
    let s = shape(2, 16, (28, 28), 16, (3, 3), (1, 1), (1, 1), (1, 1), 1);
    let t = input_grad_as_conv(&s).unwrap();
    assert_eq!((t.c, t.o, t.out_hw()), (16, 16, (28, 28)));
    assert!(input_grad_as_conv(&ConvShape {
        stride: (2, 2),
        ..s
    })
    .is_none());
    assert!(input_grad_as_conv(&ConvShape {
        dilation: (2, 1),
        ..s
    })
    .is_none());
}

#[test]
fn problems_are_named() {
    let ok = shape(1, 4, (5, 5), 6, (3, 3), (1, 1), (0, 0), (1, 1), 2);
    assert_eq!(ok.problem(), None);
    assert_eq!(ok.out_hw(), (3, 3));
    let s = ConvShape { groups: 3, ..ok };
    assert!(s.problem().unwrap().contains("groups 3 must divide"));
    let s = ConvShape { kh: 6, ..ok };
    assert!(s
        .problem()
        .unwrap()
        .contains("larger than the padded input"));
    let s = ConvShape {
        dilation: (3, 1),
        ..ok
    };
    assert!(s.problem().unwrap().contains("dilated 7x3"));
}
