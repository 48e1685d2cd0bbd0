//! The losses and float ops against PyTorch: `tests/data/torch_ops.json` holds the outputs
//! and input gradients torch computed on fixed inputs (written by
//! `bench/pytorch/check_ops.py`, every reduction, class weights, label smoothing,
//! `ignore_index`, ties and bounds); this test recomputes each case with neurite and
//! compares, so CI checks agreement with PyTorch without torch installed.
//!
//! An element agrees when `|neurite - torch| <= ATOL + RTOL * |torch|`; non-finite values
//! (an infinite gradient of a log at 0, a NaN) must be the same. Run with `--nocapture` to
//! see the largest differences per op.

use neurite::ops::loss::{BceWithLogits, CrossEntropy, NllLoss, Reduction};
use neurite::Tensor;
use serde_json::Value;
use std::collections::BTreeMap;

/// Relative tolerance: f32 rounding of a few operations in a different order.
const RTOL: f64 = 1e-5;
/// Absolute tolerance, for values near 0.
const ATOL: f64 = 1e-6;

fn number(v: &Value) -> f32 {
    match v {
        Value::String(s) => match s.as_str() {
            "nan" => f32::NAN,
            "inf" => f32::INFINITY,
            "-inf" => f32::NEG_INFINITY,
            other => panic!("unknown number {other:?}"),
        },
        v => v.as_f64().expect("a number") as f32,
    }
}

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"].as_array().unwrap().iter().map(number).collect();
    Tensor::from_vec(data, &shape)
}

fn reduction(args: &Value) -> Reduction {
    match args["reduction"].as_str().unwrap() {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        other => panic!("unknown reduction {other}"),
    }
}

/// A class index from the JSON: PyTorch's negative `ignore_index` (-100) is `usize::MAX`.
fn index(v: &Value) -> usize {
    let i = v.as_i64().unwrap();
    if i < 0 {
        usize::MAX
    } else {
        i as usize
    }
}

fn optional_f32(v: &Value) -> Option<f32> {
    v.as_f64().map(|x| x as f32)
}

/// Runs one case's op with neurite on its inputs.
fn apply(op: &str, args: &Value, x: &BTreeMap<String, Tensor>) -> Tensor {
    let stacked = Tensor::zeros(&[0]);
    let input = x.get("input").unwrap_or(&stacked);
    let weight = args.get("weight").map(tensor);
    let targets: Vec<usize> = args
        .get("targets")
        .map(|t| t.as_array().unwrap().iter().map(index).collect())
        .unwrap_or_default();
    match op {
        "sin" => input.sin(),
        "cos" => input.cos(),
        "abs" => input.abs(),
        "expm1" => input.expm1(),
        "log1p" => input.log1p(),
        "clamp" => input.clamp(optional_f32(&args["min"]), optional_f32(&args["max"])),
        "minimum" => input.minimum(&x["other"]),
        "maximum" => input.maximum(&x["other"]),
        "stack" => Tensor::stack(
            &[&x["a"], &x["b"], &x["c"]],
            args["dim"].as_u64().unwrap() as usize,
        ),
        "mse_loss" => input.mse_loss(&x["target"], reduction(args)),
        "l1_loss" => input.l1_loss(&x["target"], reduction(args)),
        "smooth_l1_loss" => {
            let beta = args["beta"].as_f64().unwrap() as f32;
            input.smooth_l1_loss(&x["target"], beta, reduction(args))
        }
        "huber_loss" => {
            let delta = args["delta"].as_f64().unwrap() as f32;
            input.huber_loss(&x["target"], delta, reduction(args))
        }
        "binary_cross_entropy" => {
            input.binary_cross_entropy(&x["target"], weight.as_ref(), reduction(args))
        }
        "binary_cross_entropy_with_logits" => {
            let pos_weight = args.get("pos_weight").map(tensor);
            let opts = BceWithLogits {
                weight: weight.as_ref(),
                pos_weight: pos_weight.as_ref(),
                reduction: reduction(args),
            };
            input.binary_cross_entropy_with_logits(&x["target"], opts)
        }
        "kl_div" => input.kl_div(
            &x["target"],
            reduction(args),
            args["log_target"].as_bool().unwrap(),
        ),
        "nll_loss" => {
            let opts = NllLoss {
                weight: weight.as_ref(),
                ignore_index: args.get("ignore_index").map(index),
                reduction: reduction(args),
            };
            input.nll_loss(&targets, opts)
        }
        "cross_entropy" => {
            let opts = CrossEntropy {
                weight: weight.as_ref(),
                label_smoothing: args["label_smoothing"].as_f64().unwrap() as f32,
                reduction: reduction(args),
                ignore_index: args.get("ignore_index").map(index),
            };
            input.cross_entropy_opts(&targets, opts)
        }
        other => panic!("no neurite op for the case op {other:?}"),
    }
}

/// The largest differences seen for one op: absolute, and relative where |torch| > 1e-3.
#[derive(Default)]
struct Worst {
    abs: f64,
    rel: f64,
    values: usize,
}

/// Compares `got` with `want` element by element; returns the first disagreement.
fn compare(got: &Tensor, want: &Tensor, worst: &mut Worst) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!("shape {:?}, torch {:?}", got.shape(), want.shape()));
    }
    for (i, (&a, &b)) in got.to_vec().iter().zip(&want.to_vec()).enumerate() {
        worst.values += 1;
        if !b.is_finite() {
            let same = (a.is_nan() && b.is_nan()) || a == b;
            if !same {
                return Err(format!("element {i}: {a}, torch {b}"));
            }
            continue;
        }
        let (a, b) = (a as f64, b as f64);
        let d = (a - b).abs();
        worst.abs = worst.abs.max(d);
        if b.abs() > 1e-3 {
            worst.rel = worst.rel.max(d / b.abs());
        }
        if d.is_nan() || d > ATOL + RTOL * b.abs() {
            return Err(format!("element {i}: {a}, torch {b} (difference {d:.3e})"));
        }
    }
    Ok(())
}

#[test]
fn losses_and_float_ops_agree_with_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/torch_ops.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "only {} cases in {path}", cases.len());
    let mut worst: BTreeMap<String, Worst> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let op = case["op"].as_str().unwrap();
        let grads = case["grads"].as_object().unwrap();
        let inputs: BTreeMap<String, Tensor> = case["inputs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let t = tensor(v);
                t.set_requires_grad(grads.contains_key(k));
                (k.clone(), t)
            })
            .collect();
        let out = apply(op, &case["args"], &inputs);
        let w = worst.entry(op.to_string()).or_default();
        if let Err(e) = compare(&out, &tensor(&case["output"]), w) {
            failures.push(format!("{name}: output {e}"));
        }
        out.backward_with_grad(tensor(&case["dout"])).unwrap();
        for (k, want) in grads {
            let got = inputs[k].grad().unwrap_or_else(|| inputs[k].zeros_like());
            if let Err(e) = compare(&got, &tensor(want), w) {
                failures.push(format!("{name}: gradient of {k}: {e}"));
            }
        }
    }
    println!(
        "{} cases against torch {}",
        cases.len(),
        doc["torch_version"]
    );
    println!(
        "{:<34} {:>8} {:>12} {:>12}",
        "op", "values", "max abs", "max rel"
    );
    for (op, w) in &worst {
        println!("{op:<34} {:>8} {:>12.3e} {:>12.3e}", w.values, w.abs, w.rel);
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with PyTorch (tolerance {ATOL} + {RTOL} relative):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
