//! Regression with the mean squared error, on data made in Rust: `y = sin(x) + noise`, an
//! MLP (`nn::Sequential` of `Linear` and `Tanh`), Adam, and a hand-written loop over
//! shuffled mini-batches; it prints the train and test MSE as it goes.
//!
//! ```text
//! cargo run --release --example regression
//! cargo run --release --example regression -- --epochs 5 --samples 256
//! ```
//!
//! The PyTorch version of this program is `bench/pytorch/examples/regression.py`.

use neurite::nn::{Linear, Module, ModuleExt, Sequential, Tanh};
use neurite::ops::loss::Reduction;
use neurite::optim::{Adam, AdamConfig, Optimizer};
use neurite::{manual_seed, no_grad, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::f32::consts::PI;

/// `n` points `x` uniform in `[-pi, pi]` and `y = sin(x) + noise`, both `[n, 1]`.
fn make_data(n: usize, noise: f32) -> (Tensor, Tensor) {
    let x = Tensor::rand(&[n, 1], -PI, PI);
    let y = x.sin().add(&Tensor::randn(&[n, 1], 0.0, noise));
    (x, y)
}

/// The MSE of `model` on `(x, y)`, without recording a graph.
fn mse(model: &impl Module, x: &Tensor, y: &Tensor) -> f32 {
    no_grad(|| model.forward(x).mse_loss(y, Reduction::Mean).item())
}

/// `--name value` pairs: `--epochs`, `--samples`, `--batch-size`.
fn settings() -> Result<(usize, usize, usize), String> {
    let (mut epochs, mut samples, mut batch) = (100, 1024, 64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let n: usize = value
            .parse()
            .map_err(|_| format!("{flag} needs a whole number, got '{value}'"))?;
        match flag.as_str() {
            "--epochs" => epochs = n,
            "--samples" => samples = n,
            "--batch-size" => batch = n.max(1),
            _ => {
                return Err(format!(
                    "unknown flag {flag}: use --epochs, --samples, --batch-size"
                ))
            }
        }
    }
    Ok((epochs, samples, batch))
}

fn main() -> neurite::Result<()> {
    let (epochs, samples, batch) = settings().unwrap_or_else(|e| {
        eprintln!("regression: {e}");
        std::process::exit(2)
    });
    manual_seed(0);
    let (x_train, y_train) = make_data(samples, 0.1); // [N, 1]
    let (x_test, y_test) = make_data(samples / 4, 0.1);

    let model = Sequential::new()
        .push(Linear::new(1, 64, true))
        .push(Tanh)
        .push(Linear::new(64, 64, true))
        .push(Tanh)
        .push(Linear::new(64, 1, true));
    let mut opt = Adam::new(model.named_parameters(), AdamConfig::adam(5e-3));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut order: Vec<usize> = (0..samples).collect();

    println!("epoch  train MSE  test MSE");
    for epoch in 1..=epochs {
        order.shuffle(&mut rng);
        for rows in order.chunks(batch) {
            let (xb, yb) = (x_train.index_select(0, rows), y_train.index_select(0, rows));
            let loss = model.forward(&xb).mse_loss(&yb, Reduction::Mean);
            opt.zero_grad();
            loss.backward()?;
            opt.step();
        }
        if epoch == 1 || epoch % (epochs / 10).max(1) == 0 || epoch == epochs {
            let train = mse(&model, &x_train, &y_train);
            let test = mse(&model, &x_test, &y_test);
            println!("{epoch:>5}  {train:>9.5}  {test:>8.5}");
        }
    }
    // The noise alone has an MSE of 0.01: a fit that reaches it has learned sin(x).
    let test = mse(&model, &x_test, &y_test);
    println!("final test MSE {test:.5} (noise variance 0.01)");
    Ok(())
}
