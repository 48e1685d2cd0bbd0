//! The autograd contract: accumulation, no_grad, detach, freeing the graph, views.

use neurite::{no_grad, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape)
}

#[test]
fn chain_rule_through_several_ops() {
    // f(x) = sum(exp(2x) / (1 + x^2)); df/dx = exp(2x)(2(1+x^2) - 2x)/(1+x^2)^2
    let xs = [0.3f32, -0.7, 1.2];
    let x = t(&xs, &[3]).requires_grad_();
    let y = x
        .mul_scalar(2.0)
        .exp()
        .div(&x.pow(2.0).add_scalar(1.0))
        .sum_all();
    y.backward().unwrap();
    let g = x.grad().unwrap().to_vec();
    for (i, &v) in xs.iter().enumerate() {
        let d = 1.0 + v * v;
        let expected = (2.0 * v).exp() * (2.0 * d - 2.0 * v) / (d * d);
        assert!((g[i] - expected).abs() < 1e-5, "{} vs {}", g[i], expected);
    }
}

#[test]
fn gradients_accumulate_across_backward_calls_until_zeroed() {
    let w = t(&[2.0], &[1]).requires_grad_();
    for _ in 0..2 {
        w.mul_scalar(3.0).sum_all().backward().unwrap();
    }
    assert_eq!(w.grad().unwrap().to_vec(), vec![6.0]);
    w.zero_grad();
    assert!(w.grad().is_none());
}

#[test]
fn no_grad_records_nothing_and_detach_cuts_the_graph() {
    let w = t(&[1.0, 2.0], &[2]).requires_grad_();
    let y = no_grad(|| w.mul(&w));
    assert!(!y.requires_grad());
    assert!(y.op_name().is_none());
    let d = w.detach();
    assert!(!d.requires_grad());
    assert!(d.shares_storage(&w));
    let z = w.mul(&d).sum_all(); // gradient only through the first factor
    z.backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec(), vec![1.0, 2.0]);
}

#[test]
fn a_training_step_frees_its_graph() {
    let w = Tensor::randn(&[16, 8], 0.0, 1.0).requires_grad_();
    let x = Tensor::randn(&[4, 8], 0.0, 1.0);
    let before = w.handle_count();
    for _ in 0..3 {
        let loss = x.linear(&w, None).exp().mean_all();
        assert!(
            w.handle_count() > before,
            "the graph should hold the weight during the step"
        );
        loss.backward().unwrap();
        // The nodes were consumed by backward: nothing holds the weight any more.
        assert_eq!(w.handle_count(), before);
        assert!(loss.op_name().is_none());
    }
}

#[test]
fn gradients_flow_through_views() {
    let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).requires_grad_();
    let y = x
        .t()
        .narrow(0, 1, 2)
        .reshape(&[4])
        .mul(&t(&[1.0, 10.0, 100.0, 1000.0], &[4]));
    y.sum_all().backward().unwrap();
    // x.t() is [3, 2]; rows 1..3 of it are x[:, 1] and x[:, 2].
    assert_eq!(
        x.grad().unwrap().to_vec(),
        vec![0.0, 1.0, 100.0, 0.0, 10.0, 1000.0]
    );
}

#[test]
fn backward_from_a_non_scalar_is_refused() {
    let x = Tensor::ones(&[2]).requires_grad_();
    let err = x.mul_scalar(2.0).backward().unwrap_err().to_string();
    assert!(err.contains("backward() needs a scalar"), "{err}");
    assert!(x.grad().is_none());
}

#[test]
fn a_second_backward_through_a_freed_graph_is_an_error() {
    let q = Tensor::ones(&[2, 3]).requires_grad_();
    let view = q.t();
    view.sum_all().backward().unwrap();
    // The view's node was consumed: reusing it must not silently lose q's gradient.
    let err = view.sum_all().backward().unwrap_err().to_string();
    assert!(err.contains("already freed"), "{err}");
    assert!(
        err.contains("retain_graph"),
        "the error says how to fix it: {err}"
    );
    assert_eq!(q.grad().unwrap().to_vec(), vec![1.0; 6], "nothing added");
}

#[test]
fn an_op_s_backward_can_read_its_own_output() {
    // y = x^3 written with a backward that reads y: dy/dx = 3 y / x.
    let x = t(&[1.0, 2.0, -3.0], &[3]).requires_grad_();
    let cube: Vec<f32> = x.to_vec().iter().map(|v| v * v * v).collect();
    let xd = x.detach();
    let y = Tensor::from_op_with_output(cube, &[3], "cube", &[&x], move |g, y| {
        assert!(!y.requires_grad(), "the output comes outside the graph");
        vec![Some(g.mul(&y.mul_scalar(3.0).div(&xd)))]
    });
    assert_eq!(y.to_vec(), vec![1.0, 8.0, -27.0]);
    // Only the caller's handle: the node does not hold its own output (no cycle).
    assert_eq!(y.handle_count(), 1);
    let held = x.handle_count();
    y.sum_all().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![3.0, 12.0, 27.0]);
    // The node (which held `x`) was freed by backward.
    assert_eq!(x.handle_count(), held - 1);
}

#[test]
fn the_grad_ready_hook_fires_once_per_leaf_with_its_final_gradient() {
    use neurite::autograd::BackwardOptions;
    // x is used by two branches: its gradient is final only after both have run.
    let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
    let w1 = Tensor::from_vec(vec![3.0], &[1]).requires_grad_();
    let w2 = Tensor::from_vec(vec![5.0], &[1]).requires_grad_();
    let constant = Tensor::from_vec(vec![7.0, 7.0], &[2]);
    // loss = w2 * sum(w1 * x + x * constant)
    let h = x.mul(&w1).add(&x.mul(&constant));
    let loss = h.sum_all().mul(&w2).sum_all();
    let mut seen: Vec<(u64, Vec<f32>)> = Vec::new();
    loss.backward_with_hook(BackwardOptions::default(), &mut |leaf| {
        seen.push((leaf.id(), leaf.grad().unwrap().to_vec()))
    })
    .unwrap();
    // Once per leaf that requires a gradient; the constant never fires.
    assert_eq!(seen.len(), 3, "{seen:?}");
    let of = |t: &Tensor| seen.iter().find(|(id, _)| *id == t.id()).unwrap().1.clone();
    assert_eq!(of(&w2), vec![3.0 * 3.0 + 3.0 * 7.0]);
    assert_eq!(of(&x), vec![5.0 * (3.0 + 7.0); 2]);
    assert_eq!(of(&w1), vec![5.0 * 3.0]);
    // The hook sees what grad() holds after the pass: gradients accumulate.
    let loss = h.detach().sum_all().mul(&w2).sum_all();
    let mut again = Vec::new();
    loss.backward_with_hook(BackwardOptions::default(), &mut |leaf| {
        again.push(leaf.grad().unwrap().to_vec())
    })
    .unwrap();
    assert_eq!(again, vec![vec![30.0 + 30.0]]);
}

#[test]
fn the_grad_ready_hook_sees_every_mlp_parameter_once() {
    use neurite::autograd::BackwardOptions;
    use neurite::nn::{Linear, Module, ModuleExt, Relu, Sequential};
    neurite::manual_seed(3);
    let model = Sequential::new()
        .push(Linear::new(4, 8, true))
        .push(Relu)
        .push(Linear::new(8, 2, true));
    let x = Tensor::from_vec((0..12).map(|i| i as f32 / 10.0).collect(), &[3, 4]);
    let loss = model.forward(&x).sum_all();
    let mut order = Vec::new();
    loss.backward_with_hook(BackwardOptions::default(), &mut |leaf| {
        order.push(leaf.id())
    })
    .unwrap();
    let names: Vec<String> = order
        .iter()
        .map(|id| {
            let params = model.named_parameters();
            params
                .iter()
                .find(|(_, t)| t.id() == *id)
                .unwrap()
                .0
                .clone()
        })
        .collect();
    // Every parameter once, the last layer's first: backward finishes a leaf right after
    // its last consumer (what lets data-parallel training overlap the reduction of the last
    // layers' gradients with the backward of the first).
    assert_eq!(
        &names[..2].iter().filter(|n| n.starts_with("2.")).count(),
        &2,
        "{names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted,
        ["0.bias", "0.weight", "2.bias", "2.weight"],
        "{names:?}"
    );
}
