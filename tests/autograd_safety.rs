//! Autograd that refuses to be wrong: version counters on what backward reads, errors
//! instead of panics for misuse, `retain_graph`, and gradient accumulation.

use neurite::nn::{BatchNorm, Module, ModuleExt};
use neurite::optim::{Optimizer, Sgd, SgdConfig};
use neurite::{BackwardOptions, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape)
}

#[test]
fn an_input_changed_in_place_after_the_forward_pass_is_an_error_naming_the_op() {
    // y = w * x: dy/dw = x = 2. Changing x to 200 after the forward pass used to give 200.
    let w = t(&[1.0], &[1]).requires_grad_();
    let x = t(&[2.0], &[1]);
    let y = w.mul(&x).sum_all();
    x.with_slice_mut(|v| v[0] = 200.0);
    let err = y.backward().unwrap_err().to_string();
    assert!(
        err.contains("modified by an inplace operation"),
        "PyTorch's words: {err}"
    );
    assert!(
        err.contains("input 1 of `mul`"),
        "names the op and input: {err}"
    );
    assert!(
        err.contains("is at version 1; expected version 0 instead"),
        "{err}"
    );
    // Nothing was changed: no gradient accumulated, the graph still there.
    assert!(w.grad().is_none());
    assert_eq!(y.op_name(), Some("sum"));
    // Recomputing the forward pass after the change gives the new values' gradient.
    w.mul(&x).sum_all().backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec(), vec![200.0]);
}

#[test]
fn without_a_change_the_same_graph_gives_the_right_gradient() {
    let w = t(&[1.0], &[1]).requires_grad_();
    let x = t(&[2.0], &[1]);
    let y = w.mul(&x).sum_all();
    x.with_slice(|v| assert_eq!(v, [2.0])); // reading is no change
    y.backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec(), vec![2.0]);
}

#[test]
fn writes_count_versions_shared_by_views_and_copy_from() {
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let view = x.reshape(&[4]);
    assert_eq!((x.version(), view.version()), (0, 0));
    view.with_slice_mut(|v| v[0] = 5.0);
    assert_eq!(x.version(), 1);
    x.copy_from(&t(&[0.0; 4], &[2, 2]));
    assert_eq!(view.version(), 2);
    // A fresh result and a detached copy of the values start again at 0.
    assert_eq!(x.add_scalar(1.0).version(), 0);
}

#[test]
fn a_change_through_a_view_is_caught_too() {
    let w = t(&[1.0, 1.0], &[2]).requires_grad_();
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let y = x.narrow(0, 1, 1).reshape(&[2]).mul(&w).sum_all();
    x.with_slice_mut(|v| v[3] = 40.0);
    let err = y.backward().unwrap_err().to_string();
    assert!(err.contains("input 0 of `mul`"), "{err}");
}

#[test]
fn an_output_that_backward_reads_changed_in_place_is_an_error() {
    // exp's backward reads its output: dy/dx = exp(x).
    let x = t(&[0.0, 1.0], &[2]).requires_grad_();
    let y = x.exp();
    let loss = y.sum_all();
    y.with_slice_mut(|v| v[0] = 7.0);
    let err = loss.backward().unwrap_err().to_string();
    assert!(err.contains("the output of `exp`"), "{err}");
    assert!(err.contains("version 1; expected version 0"), "{err}");
}

#[test]
fn an_optimizer_step_between_forward_and_backward_is_caught_and_after_backward_is_fine() {
    let w = t(&[1.0, -1.0], &[2]).requires_grad_();
    let x = t(&[3.0, 4.0], &[2]);
    let mut opt = Sgd::new(
        neurite::optim::numbered(std::slice::from_ref(&w)),
        SgdConfig {
            lr: 0.5,
            ..Default::default()
        },
    );
    // The usual order: forward, backward, step.
    let loss = w.mul(&x).sum_all();
    loss.backward().unwrap();
    opt.step();
    assert_eq!(w.to_vec(), vec![-0.5, -3.0]);
    // Stepping before backward changed the weight the product's backward reads.
    w.zero_grad();
    let loss = w.mul(&x).sum_all();
    w.set_grad(Some(t(&[1.0, 1.0], &[2])));
    opt.step();
    let err = loss.backward().unwrap_err().to_string();
    assert!(err.contains("input 0 of `mul`"), "{err}");
}

#[test]
fn batch_norm_updating_its_running_stats_in_the_forward_is_no_false_alarm() {
    let mut bn = BatchNorm::new(2);
    bn.set_training(true);
    let x = Tensor::from_vec(
        (0..16).map(|i| (i as f32 * 0.7).sin()).collect(),
        &[4, 2, 2, 1],
    )
    .requires_grad_();
    // Two forwards through the same layer (its running stats written twice) and one loss.
    let loss = bn.forward(&x).mul(&bn.forward(&x)).mean_all();
    assert_eq!(bn.running_mean.version(), 2);
    loss.backward().unwrap();
    assert!(bn.weight.grad().is_some() && x.grad().is_some());
}

#[test]
fn retain_graph_keeps_the_graph_and_a_second_backward_adds_exactly_the_same_again() {
    let x = t(&[0.5, -1.5, 2.0], &[3]).requires_grad_();
    // y = sum(exp(x) * x^2), through an op that reads its output and one that reads inputs.
    let y = x.exp().mul(&x.mul(&x)).sum_all();
    let keep = BackwardOptions {
        retain_graph: true,
        ..Default::default()
    };
    y.backward_with(keep.clone()).unwrap();
    let once = x.grad().unwrap().to_vec();
    y.backward_with(keep).unwrap();
    let twice = x.grad().unwrap().to_vec();
    for (a, b) in once.iter().zip(&twice) {
        assert_eq!(2.0 * a, *b, "exactly twice the gradient");
    }
    // A plain backward still works (the graph was kept) and frees it; then it is gone.
    y.backward().unwrap();
    let err = y.backward().unwrap_err().to_string();
    assert!(err.contains("already freed"), "{err}");
    let thrice = x.grad().unwrap().to_vec();
    for (a, b) in once.iter().zip(&thrice) {
        assert_eq!(3.0 * a, *b);
    }
}

#[test]
fn a_gradient_can_be_given_for_a_non_scalar_output() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = x.mul_scalar(3.0);
    let err = y
        .backward_with_grad(t(&[1.0], &[1]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("the gradient has shape [1]"), "{err}");
    y.backward_with(BackwardOptions {
        gradient: Some(t(&[1.0, 10.0], &[2])),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![3.0, 30.0]);
}

#[test]
fn backward_of_something_that_needs_no_gradient_is_an_error() {
    let x = t(&[1.0], &[1]);
    let err = x
        .mul_scalar(2.0)
        .sum_all()
        .backward()
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not require a gradient"), "{err}");
}

#[test]
fn gradients_of_two_passes_before_a_step_add_up_and_zero_grad_resets_them() {
    // loss_k = sum(w * x_k): d/dw = x_k, so two passes accumulate x_1 + x_2.
    let w = t(&[1.0, 2.0], &[2]).requires_grad_();
    let (x1, x2) = (t(&[3.0, 4.0], &[2]), t(&[5.0, 6.0], &[2]));
    w.mul(&x1).sum_all().backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec(), vec![3.0, 4.0]);
    w.mul(&x2).sum_all().backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec(), vec![8.0, 10.0]);
    // The step sees the sum: w - 0.5 * (x1 + x2).
    let mut opt = Sgd::new(
        neurite::optim::numbered(std::slice::from_ref(&w)),
        SgdConfig {
            lr: 0.5,
            ..Default::default()
        },
    );
    opt.step();
    assert_eq!(w.to_vec(), vec![1.0 - 4.0, 2.0 - 5.0]);
    w.zero_grad();
    assert!(w.grad().is_none());
    w.mul(&x1).sum_all().backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec(), vec![3.0, 4.0], "a fresh start");
}
