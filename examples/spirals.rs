//! Two interleaved spirals, made in Rust, told apart by a small MLP trained with a
//! hand-written loop: the forward pass, the loss, `backward`, an optimizer step, and the
//! accuracy from `argmax` and a comparison on integer tensors.
//!
//!     cargo run --release --example spirals -- [--points N] [--steps S] [--png PATH]
//!
//! `--points` is the number of points per spiral (default 500), `--steps` the number of
//! full-batch Adam steps (default 600); `--png` writes the decision boundary as a picture.
//! PyTorch's version of the same program: `bench/pytorch/examples/spirals.py`.

use std::f32::consts::PI;
use std::path::Path;

use neurite::nn::{Linear, Module, ModuleExt, Relu, Sequential};
use neurite::optim::{Adam, AdamConfig, Optimizer};
use neurite::tensor::IntTensor;
use neurite::viz::canvas::{blend, Canvas};
use neurite::{manual_seed, no_grad, Tensor};

/// `n` points on each of two spirals, with Gaussian noise: the points `[2n, 2]` and their
/// class (0 or 1) `[2n]`.
fn spirals(n: usize, noise: f32) -> (Tensor, IntTensor) {
    let mut points = Vec::with_capacity(4 * n);
    let mut labels = Vec::with_capacity(2 * n);
    for class in 0..2 {
        for i in 0..n {
            let r = i as f32 / n as f32; // radius grows from 0 to 1 along the arm
            let angle = 1.75 * 2.0 * PI * r + class as f32 * PI;
            points.extend([r * angle.cos(), r * angle.sin()]);
            labels.push(class);
        }
    }
    let clean = Tensor::from_vec(points, &[2 * n, 2]);
    let x = clean + Tensor::randn(&[2 * n, 2], 0.0, noise);
    (x, IntTensor::from_vec(labels, &[2 * n]))
}

/// The fraction of rows whose largest logit is the label.
fn accuracy(logits: &Tensor, labels: &IntTensor) -> f32 {
    logits.argmax(1).eq(labels).to_float().mean_all().item()
}

fn main() -> neurite::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let points: usize = flag("--points").map_or(Ok(500), |v| v.parse())?;
    let steps: usize = flag("--steps").map_or(Ok(600), |v| v.parse())?;

    manual_seed(0);
    let (x, y) = spirals(points, 0.03); // [2n, 2], [2n]
    let model = Sequential::new()
        .add("fc1", Linear::new(2, 64, true))
        .add("relu1", Relu)
        .add("fc2", Linear::new(64, 64, true))
        .add("relu2", Relu)
        .add("fc3", Linear::new(64, 2, true));
    let mut optimizer = Adam::new(model.named_parameters(), AdamConfig::adam(0.01));

    for step in 1..=steps {
        let logits = model.forward(&x); // [2n, 2]
        let loss = logits.cross_entropy(&y);
        optimizer.zero_grad();
        loss.backward()?;
        optimizer.step();
        if step % 100 == 0 || step == steps {
            let acc = accuracy(&logits, &y);
            println!(
                "step {step:4}  loss {:.4}  accuracy {:.1}%",
                loss.item(),
                100.0 * acc
            );
        }
    }
    let acc = no_grad(|| accuracy(&model.forward(&x), &y));
    println!(
        "final accuracy {:.1}% on {} points",
        100.0 * acc,
        2 * points
    );

    if let Some(path) = flag("--png") {
        draw(&model, &x, &y, Path::new(&path))?;
        println!("decision boundary written to {path}");
    }
    Ok(())
}

/// The plane `[-1.2, 1.2]^2` coloured by the predicted probability of class 1, with the
/// points on top.
fn draw(model: &Sequential, x: &Tensor, y: &IntTensor, path: &Path) -> anyhow::Result<()> {
    let size = 240usize;
    let to_plane = |p: usize| (p as f32 + 0.5) / size as f32 * 2.4 - 1.2;
    let grid: Vec<f32> = (0..size * size)
        .flat_map(|i| [to_plane(i % size), -to_plane(i / size)])
        .collect();
    let grid = Tensor::from_vec(grid, &[size * size, 2]);
    // Probability of class 1 for every pixel: [size * size]
    let p1 = no_grad(|| model.forward(&grid).softmax(1).i((.., 1)).contiguous());
    let (blue, orange, white) = ([31, 119, 180], [255, 127, 14], [255, 255, 255]);
    let mut canvas = Canvas::new(size as u32, size as u32, white);
    p1.with_slice(|p| {
        for (i, &v) in p.iter().enumerate() {
            let tint = if v > 0.5 { orange } else { blue };
            let c = blend(white, tint, 0.25 + 0.5 * (2.0 * v - 1.0).abs());
            canvas.put((i % size) as u32, (i / size) as u32, c);
        }
    });
    let to_pixel = |v: f32| ((v + 1.2) / 2.4 * size as f32) as u32;
    let (dark_blue, dark_orange) = ([16, 64, 110], [190, 80, 0]);
    for (i, &label) in y.as_slice().iter().enumerate() {
        let (px, py) = (to_pixel(x.get(&[i, 0])), to_pixel(-x.get(&[i, 1])));
        canvas.fill_rect(
            px.saturating_sub(1),
            py.saturating_sub(1),
            3,
            3,
            if label == 1 { dark_orange } else { dark_blue },
        );
    }
    canvas.save(path)
}
