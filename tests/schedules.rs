//! neurite's learning-rate schedules give PyTorch's rates step by step: the rates of
//! `torch.optim.lr_scheduler` are dumped to `tests/data/schedules.json` by
//! `bench/pytorch/check_schedules.py` (CI has no torch), and each schedule here is built
//! from the same description, attached to an optimizer and stepped by it.

use neurite::optim::{
    numbered, Decay, LrScheduler, Optimizer, PlateauConfig, PlateauMode, ReduceOnPlateau, Schedule,
    Sgd, SgdConfig, ThresholdMode,
};
use neurite::Tensor;
use serde_json::Value;

fn dump() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schedules.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f(v: &Value, key: &str) -> f32 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}")) as f32
}

fn n(v: &Value, key: &str) -> usize {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}")) as usize
}

fn decay(d: &Value) -> Decay {
    match d["kind"].as_str().unwrap() {
        "step" => Decay::Step {
            every: n(d, "every"),
            gamma: f(d, "gamma"),
        },
        "exponential" => Decay::Exponential {
            every: n(d, "every"),
            gamma: f(d, "gamma"),
        },
        "cosine" => Decay::Cosine {
            min_lr: f(d, "min_lr"),
        },
        "onecycle" => Decay::OneCycle {
            pct_start: f(d, "pct_start"),
            div_factor: f(d, "div_factor"),
            final_div_factor: f(d, "final_div_factor"),
        },
        "multistep" => Decay::MultiStep {
            milestones: d["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap() as usize)
                .collect(),
            gamma: f(d, "gamma"),
        },
        "linear" => Decay::Linear {
            start_factor: f(d, "start_factor"),
            end_factor: f(d, "end_factor"),
            iters: Some(n(d, "iters")),
        },
        other => panic!("unknown kind {other}"),
    }
}

fn rates(v: &Value) -> Vec<f32> {
    v["lrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Within float32 rounding of PyTorch's float64 rates.
fn close(ours: f32, theirs: f32) -> bool {
    (ours - theirs).abs() <= 2e-6 * theirs.abs() + 1e-9
}

/// An optimizer over one parameter with a gradient, so that its `step` updates and then
/// steps the schedule.
fn optimizer(schedule: impl LrScheduler + 'static) -> (Sgd, Tensor) {
    let w = Tensor::zeros(&[1]).requires_grad_();
    let opt =
        Sgd::new(numbered(std::slice::from_ref(&w)), SgdConfig::default()).with_schedule(schedule);
    (opt, w)
}

#[test]
fn every_schedule_matches_pytorch_step_by_step() {
    let dump = dump();
    let cases = dump["schedules"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let schedule = Schedule::new(
            f(c, "base_lr"),
            decay(&c["decay"]),
            n(c, "warmup"),
            n(c, "total"),
        );
        let (mut opt, w) = optimizer(schedule);
        for (step, theirs) in rates(c).into_iter().enumerate() {
            let ours = opt.lr();
            assert!(
                close(ours, theirs),
                "{name}, step {step}: {ours} but PyTorch {theirs}"
            );
            w.set_grad(Some(Tensor::zeros(&[1])));
            opt.step();
        }
    }
}

#[test]
fn reduce_on_plateau_matches_pytorch_metric_by_metric() {
    let dump = dump();
    let cases = dump["plateaus"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let p = &c["plateau"];
        let get = |k: &str, default: f32| p[k].as_f64().map_or(default, |v| v as f32);
        let config = PlateauConfig {
            mode: match p["mode"].as_str().unwrap() {
                "min" => PlateauMode::Min,
                _ => PlateauMode::Max,
            },
            threshold_mode: match p["threshold_mode"].as_str().unwrap() {
                "rel" => ThresholdMode::Rel,
                _ => ThresholdMode::Abs,
            },
            factor: get("factor", 0.1),
            patience: get("patience", 10.0) as usize,
            threshold: get("threshold", 1e-4),
            cooldown: get("cooldown", 0.0) as usize,
            min_lr: get("min_lr", 0.0),
            ..PlateauConfig::default()
        };
        let (mut opt, w) = optimizer(ReduceOnPlateau::new(f(c, "base_lr"), config));
        let metrics = c["metrics"].as_array().unwrap();
        for (i, (m, theirs)) in metrics.iter().zip(rates(c)).enumerate() {
            w.set_grad(Some(Tensor::zeros(&[1])));
            opt.step();
            opt.step_metric(m.as_f64().unwrap() as f32);
            let ours = opt.lr();
            assert!(
                close(ours, theirs),
                "{name}, metric {i}: {ours} but PyTorch {theirs}"
            );
        }
    }
}

#[test]
fn a_restored_schedule_continues_the_curve_exactly() {
    for schedule in [
        Schedule::one_cycle(0.1, 40),
        Schedule::multi_step(0.1, vec![7, 20], 0.5).with_warmup(3),
        Schedule::linear(0.1, 1.0, 0.0, 40),
        Schedule::cosine(0.1, 40, 0.001).with_warmup(5),
    ] {
        let (mut straight, w) = optimizer(schedule.clone());
        let mut curve = Vec::new();
        for _ in 0..40 {
            curve.push(straight.lr());
            w.set_grad(Some(Tensor::zeros(&[1])));
            straight.step();
        }
        // Stop after 17 steps, save, restore into a fresh optimizer, go on.
        let (mut first, w) = optimizer(schedule.clone());
        for _ in 0..17 {
            w.set_grad(Some(Tensor::zeros(&[1])));
            first.step();
        }
        let (mut second, w) = optimizer(schedule.clone());
        second.load_state(&first.state()).unwrap();
        for (step, expected) in curve.iter().enumerate().skip(17) {
            assert_eq!(second.lr(), *expected, "{schedule:?} at step {step}");
            w.set_grad(Some(Tensor::zeros(&[1])));
            second.step();
        }
    }
}
