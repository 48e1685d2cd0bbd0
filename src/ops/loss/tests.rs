//! Values and gradients of the losses against numbers computed by hand (and checked with
//! PyTorch: the calls are in the comments), and the messages of their misuse.

use super::*;
use crate::kernels::test_values::assert_close;
use std::f32::consts::LN_2;

fn t(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape)
}

#[test]
fn regression_losses_match_known_values() {
    let x = t(&[0.5, -1.0, 3.0], &[3]);
    let zero = Tensor::zeros(&[3]);
    assert_eq!(x.mse_loss(&zero, Reduction::None).to_vec(), vec![0.25, 1.0, 9.0]);
    assert_eq!(x.mse_loss(&zero, Reduction::Sum).item(), 10.25);
    assert_close(&[x.mse_loss(&zero, Reduction::Mean).item()], &[10.25 / 3.0], 1e-6);
    assert_eq!(x.l1_loss(&zero, Reduction::Sum).item(), 4.5);
    // F.smooth_l1_loss(x, 0, beta=1, reduction='none') = [0.125, 0.5, 2.5]
    assert_eq!(
        x.smooth_l1_loss(&zero, 1.0, Reduction::None).to_vec(),
        vec![0.125, 0.5, 2.5]
    );
    // beta = 0 is the L1 loss.
    assert_eq!(
        x.smooth_l1_loss(&zero, 0.0, Reduction::None).to_vec(),
        vec![0.5, 1.0, 3.0]
    );
    // F.huber_loss(x, 0, delta=2, reduction='none') = [0.125, 0.5, 4.0]
    assert_eq!(
        x.huber_loss(&zero, 2.0, Reduction::None).to_vec(),
        vec![0.125, 0.5, 4.0]
    );
}

#[test]
fn regression_gradients_reach_input_and_target() {
    let x = t(&[0.5, -1.0, 3.0, 2.0], &[4]).requires_grad_();
    let y = t(&[0.0, 0.0, 0.0, 2.0], &[4]).requires_grad_();
    x.mse_loss(&y, Reduction::Mean).backward().unwrap();
    // 2 (x - y) / n
    assert_eq!(x.grad().unwrap().to_vec(), vec![0.25, -0.5, 1.5, 0.0]);
    assert_eq!(y.grad().unwrap().to_vec(), vec![-0.25, 0.5, -1.5, 0.0]);
    x.zero_grad();
    y.zero_grad();
    // The sign of x - y, and 0 where they are equal (PyTorch's l1_loss).
    x.l1_loss(&y, Reduction::Sum).backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![1.0, -1.0, 1.0, 0.0]);
    assert_eq!(y.grad().unwrap().to_vec(), vec![-1.0, 1.0, -1.0, 0.0]);
    x.zero_grad();
    // (x - y) / beta inside, the sign outside.
    x.smooth_l1_loss(&y, 1.0, Reduction::Sum).backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![0.5, -1.0, 1.0, 0.0]);
    x.zero_grad();
    // x - y inside, delta times the sign outside.
    x.huber_loss(&y, 2.0, Reduction::Sum).backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![0.5, -1.0, 2.0, 0.0]);
}

#[test]
fn unreduced_losses_scale_each_gradient_by_its_own_output_gradient() {
    let x = t(&[1.0, 2.0], &[2]).requires_grad_();
    let loss = x.mse_loss(&Tensor::zeros(&[2]), Reduction::None);
    loss.backward_with_grad(t(&[10.0, -1.0], &[2])).unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![20.0, -4.0]);
}

#[test]
fn binary_cross_entropy_clamps_its_logs_at_minus_100() {
    let p = t(&[0.2, 0.9, 0.0, 1.0], &[4]).requires_grad_();
    let y = t(&[0.0, 1.0, 1.0, 0.3], &[4]).requires_grad_();
    // F.binary_cross_entropy(p, y, reduction='none'): [0.2231, 0.1054, 100, 70]
    let loss = p.binary_cross_entropy(&y, None, Reduction::None);
    assert_close(
        &loss.to_vec(),
        &[0.22314355, 0.10536052, 100.0, 70.0],
        1e-5,
    );
    loss.sum_all().backward().unwrap();
    // (p - y) / max(p (1 - p), 1e-12), and ln(1 - p) - ln(p) for the target.
    let gp = p.grad().unwrap().to_vec();
    assert_close(&gp[..2], &[1.25, -1.1111112], 1e-5);
    assert_eq!(gp[2..], [-1e12, 0.7e12]);
    let gy = y.grad().unwrap().to_vec();
    assert_close(&gy[..2], &[1.3862944, -2.1972246], 1e-5);
    assert_eq!(gy[2..], [f32::INFINITY, f32::NEG_INFINITY]);
    // A weight per column.
    let w = t(&[2.0, 0.5], &[2]);
    let p2 = t(&[0.2, 0.9, 0.2, 0.9], &[2, 2]);
    let y2 = t(&[0.0, 1.0, 0.0, 1.0], &[2, 2]);
    let weighted = p2.binary_cross_entropy(&y2, Some(&w), Reduction::Sum).item();
    assert_close(&[weighted], &[2.0 * (2.0 * 0.22314355 + 0.5 * 0.10536052)], 1e-5);
}

#[test]
#[should_panic(expected = "binary_cross_entropy: the input must hold probabilities in [0, 1], found 1.5")]
fn binary_cross_entropy_refuses_what_is_not_a_probability() {
    t(&[0.5, 1.5], &[2]).binary_cross_entropy(&Tensor::zeros(&[2]), None, Reduction::Mean);
}

#[test]
fn binary_cross_entropy_with_logits_is_stable_and_weighs_positives() {
    let x = t(&[-1.0, 0.0, 2.0, -200.0, 200.0], &[5]).requires_grad_();
    let y = t(&[0.0, 1.0, 1.0, 1.0, 0.0], &[5]);
    let none = BceWithLogits {
        reduction: Reduction::None,
        ..Default::default()
    };
    // F.binary_cross_entropy_with_logits(x, y, reduction='none'); the extreme logits give
    // their exact loss (200) where sigmoid-then-log would give 100 or inf.
    assert_close(
        &x.binary_cross_entropy_with_logits(&y, none).to_vec(),
        &[0.31326166, LN_2, 0.12692805, 200.0, 200.0],
        1e-5,
    );
    let pw = t(&[2.0], &[1]);
    let weighted = BceWithLogits {
        pos_weight: Some(&pw),
        ..none
    };
    // ... pos_weight=2: the positive terms double.
    assert_close(
        &x.binary_cross_entropy_with_logits(&y, weighted).to_vec(),
        &[0.31326166, 1.3862944, 0.2538561, 400.0, 200.0],
        1e-4,
    );
    x.binary_cross_entropy_with_logits(&y, BceWithLogits::default())
        .backward().unwrap();
    // (sigmoid(x) - y) / n
    assert_close(
        &x.grad().unwrap().to_vec(),
        &[0.26894143 / 5.0, -0.5 / 5.0, -0.11920292 / 5.0, -0.2, 0.2],
        1e-6,
    );
}

#[test]
fn kl_div_is_zero_where_the_target_is() {
    let x = t(&[-1.0, -2.0], &[2]).requires_grad_();
    let y = t(&[0.5, 0.0], &[2]);
    // F.kl_div(x, y, reduction='none') = [0.5 (ln 0.5 + 1), 0]
    let loss = x.kl_div(&y, Reduction::None, false);
    assert_close(&loss.to_vec(), &[0.15342641, 0.0], 1e-6);
    loss.sum_all().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![-0.5, 0.0]);
    // A target given as log-probabilities: 0.5 (ln 0.5 + 1) + 0.25 (ln 0.25 + 2). (A
    // log-target of -inf gives NaN, as in PyTorch: exp(-inf) * inf.)
    let log_y = t(&[0.5f32.ln(), 0.25f32.ln()], &[2]);
    let logs = x.detach().kl_div(&log_y, Reduction::Sum, true).item();
    assert_close(&[logs], &[0.15342641 + 0.15342641], 1e-6);
}

#[test]
#[should_panic(expected = "mse_loss: input of shape [2, 3] and target of shape [3] differ")]
fn a_target_of_another_shape_is_refused() {
    Tensor::zeros(&[2, 3]).mse_loss(&Tensor::zeros(&[3]), Reduction::Mean);
}

#[test]
#[should_panic(expected = "binary_cross_entropy_with_logits: pos_weight of shape [3] does not broadcast to the input's shape [2, 2]")]
fn a_weight_of_another_shape_is_refused() {
    let pw = Tensor::ones(&[3]);
    let opts = BceWithLogits {
        pos_weight: Some(&pw),
        ..Default::default()
    };
    Tensor::zeros(&[2, 2]).binary_cross_entropy_with_logits(&Tensor::zeros(&[2, 2]), opts);
}

#[test]
fn nll_loss_weighs_rows_and_skips_ignored_ones() {
    let logp = t(&[-0.5, -1.0, -2.0, -0.1, -3.0, -0.2], &[3, 2]).requires_grad_();
    let w = t(&[3.0, 1.0], &[2]);
    let opts = NllLoss {
        weight: Some(&w),
        ignore_index: Some(9),
        reduction: Reduction::Mean,
    };
    // Rows 0 and 1 count: (1 * 1.0 + 3 * 2.0) / (1 + 3); row 2 is ignored.
    let loss = logp.nll_loss(&[1, 0, 9], opts);
    assert_eq!(loss.item(), 1.75);
    loss.backward().unwrap();
    assert_eq!(
        logp.grad().unwrap().to_vec(),
        vec![0.0, -0.25, -0.75, 0.0, 0.0, 0.0]
    );
    let none = NllLoss {
        reduction: Reduction::None,
        ..opts
    };
    assert_eq!(logp.nll_loss(&[1, 0, 9], none).to_vec(), vec![1.0, 6.0, 0.0]);
}

#[test]
fn cross_entropy_opts_with_weights_and_smoothing_matches_pytorch() {
    let x = t(&[1.0, 2.0, 3.0, 0.0, 0.0, 0.0], &[2, 3]);
    let w = t(&[1.0, 2.0, 3.0], &[3]);
    let opts = CrossEntropy {
        weight: Some(&w),
        label_smoothing: 0.1,
        reduction: Reduction::Mean,
        ignore_index: None,
    };
    // F.cross_entropy(x, [2, 0], weight=[1, 2, 3], label_smoothing=0.1)
    assert_close(&[x.cross_entropy_opts(&[2, 0], opts).item()], &[0.630966], 1e-6);
    let none = CrossEntropy {
        reduction: Reduction::None,
        ..opts
    };
    assert_close(
        &x.cross_entropy_opts(&[2, 0], none).to_vec(),
        &[1.3154, 1.2085],
        1e-4,
    );
    // ... with target -100 (ignored) in the second row: 0.43846354.
    let ignoring = CrossEntropy {
        ignore_index: Some(usize::MAX),
        ..opts
    };
    assert_close(
        &[x.cross_entropy_opts(&[2, usize::MAX], ignoring).item()],
        &[0.43846354],
        1e-6,
    );
}

#[test]
fn cross_entropy_opts_without_options_is_the_fused_cross_entropy() {
    let x = Tensor::randn(&[6, 5], 0.0, 2.0).requires_grad_();
    let targets = [0, 4, 2, 2, 1, 3];
    let fused = x.cross_entropy_opts(&targets, CrossEntropy::default());
    assert_eq!(fused.op_name(), Some("cross_entropy"));
    fused.backward().unwrap();
    let fused_grad = x.grad().unwrap().to_vec();
    x.zero_grad();
    // The general path (unit weights given explicitly) agrees with the fused kernel.
    let ones = Tensor::ones(&[5]);
    let general = x.cross_entropy_opts(
        &targets,
        CrossEntropy {
            weight: Some(&ones),
            ..Default::default()
        },
    );
    assert_eq!(general.op_name(), Some("cross_entropy_opts"));
    assert_close(&[general.item()], &[fused.item()], 1e-6);
    general.backward().unwrap();
    assert_close(&x.grad().unwrap().to_vec(), &fused_grad, 1e-6);
}

#[test]
#[should_panic(expected = "nll_loss: the class weights must be [3] (one per class), got shape [2]")]
fn class_weights_of_another_length_are_refused() {
    let w = Tensor::ones(&[2]);
    let opts = NllLoss {
        weight: Some(&w),
        ..Default::default()
    };
    Tensor::zeros(&[2, 3]).nll_loss(&[0, 1], opts);
}

#[test]
#[should_panic(expected = "cross_entropy_opts: target 5 at position 1 is out of range for an input of shape [2, 3]")]
fn a_class_out_of_range_is_refused() {
    let opts = CrossEntropy {
        reduction: Reduction::Sum,
        ..Default::default()
    };
    Tensor::zeros(&[2, 3]).cross_entropy_opts(&[0, 5], opts);
}
