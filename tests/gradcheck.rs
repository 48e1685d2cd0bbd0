//! Finite-difference gradient checks of every op: the cases registered by each op family in
//! `neurite::ops::FAMILIES` (the same ones `neurite gradcheck` runs).

use neurite::gradcheck::{cases, check, op_names, table_problems, Case};
use neurite::Tensor;

#[test]
fn every_registered_case_passes() {
    let all = cases();
    let mut failures = Vec::new();
    for case in &all {
        let r = check(case);
        if !r.passed {
            failures.push(format!(
                "{} on {}: max abs err {:.3e}, max rel err {:.3e}",
                r.op, r.shapes, r.max_abs_err, r.max_rel_err
            ));
        } else if r.probes == 0 {
            failures.push(format!(
                "{} on {}: the check probed no element",
                r.op, r.shapes
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} gradient checks failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn every_op_has_a_case_and_every_case_a_listed_op() {
    let problems = table_problems(&cases());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_table_holds_the_engine_s_ops() {
    let ops = op_names();
    // A sample from each family: the table is the real one, not an empty list that passes.
    for op in [
        "add",
        "sum",
        "matmul",
        "conv2d",
        "max_pool2d",
        "batch_norm_relu",
        "silu",
        "log_softmax",
        "dropout",
        "embedding",
        "permute",
        "self_attention_packed",
    ] {
        assert!(ops.contains(&op), "op '{op}' is missing from the table");
    }
}

#[test]
fn a_broken_table_is_reported() {
    let mut all = cases();
    all.retain(|c| c.op != "silu");
    all.push(Case::new("not_an_op", vec![Tensor::zeros(&[2])], |x| {
        x[0].exp()
    }));
    let problems = table_problems(&all);
    assert_eq!(
        problems,
        vec![
            "op 'silu' has no gradient check".to_string(),
            "a case checks 'not_an_op', which no family lists".to_string(),
        ]
    );
}

#[test]
fn a_wrong_gradient_is_caught() {
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
