//! Finite-difference gradient checks of every op (the cases live beside each op in
//! `src/ops/*`; `neurite gradcheck` runs the same ones).

use neurite::gradcheck::{cases, check, REQUIRED_OPS};

fn assert_op_passes(op: &str) {
    let all = cases();
    let mine: Vec<_> = all.iter().filter(|c| c.op == op).collect();
    assert!(
        !mine.is_empty(),
        "no gradient check is registered for op '{op}'"
    );
    for case in mine {
        let r = check(case);
        assert!(
            r.passed,
            "gradient check failed for {} on {}: max abs err {:.3e}, max rel err {:.3e}",
            r.op, r.shapes, r.max_abs_err, r.max_rel_err
        );
        assert!(r.probes > 0, "{op}: the check probed no element");
    }
}

macro_rules! gradcheck_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                assert_op_passes(stringify!($name));
            }
        )*
    };
}

gradcheck_tests!(
    add,
    sub,
    mul,
    div,
    neg,
    exp,
    log,
    sqrt,
    pow,
    add_scalar,
    mul_scalar,
    transpose,
    narrow,
    expand,
    reshape,
    sum,
    mean,
    max,
    matmul,
    linear,
    conv2d,
    max_pool2d,
    avg_pool2d,
    global_avg_pool2d,
    batch_norm,
    layer_norm,
    relu,
    sigmoid,
    tanh,
    gelu,
    softmax,
    log_softmax,
    cross_entropy,
    dropout,
    embedding,
    cat,
    split,
    index_select,
    scaled_dot_product_attention,
);

#[test]
fn every_required_op_has_a_check() {
    let all = cases();
    for op in REQUIRED_OPS {
        assert!(
            all.iter().any(|c| c.op == *op),
            "op '{op}' has no gradient check"
        );
    }
}

#[test]
fn a_wrong_gradient_is_caught() {
    use neurite::gradcheck::Case;
    use neurite::Tensor;
    // An op whose backward claims d/dx = 1 while the forward is x^2.
    let wrong = Case::new(
        "square_with_bad_grad",
        vec![Tensor::from_vec(vec![1.0, 2.0, -3.0], &[3])],
        |x| {
            let v: Vec<f32> = x[0].to_vec().iter().map(|a| a * a).collect();
            Tensor::from_op(v, x[0].shape(), "bad", &[&x[0]], |g| vec![Some(g.clone())])
        },
    );
    let r = check(&wrong);
    assert!(!r.passed);
    assert!(r.max_abs_err > 1.0);
}
