//! Training on a CSV table with the library: `neurite::data::table` reads the file (target
//! column, task, seeded split, standardization on the training rows), an MLP learns it in a
//! hand-written loop (cross-entropy for a classification, MSE for a regression), and the
//! test rows give the accuracy, or the RMSE and MAE. The schema the checkpoint would keep
//! is printed, and `--write-split FILE` writes the split's rows as JSON for
//! `bench/sklearn/tables.py`, which fits scikit-learn on the same rows.
//!
//! ```text
//! cargo run --release --example table
//! cargo run --release --example table -- --data tests/data/diabetes.csv --target target
//! cargo run --release --example table -- --epochs 5 --write-split target/iris-split.json
//! ```
//!
//! A regression's target is standardized for training too (its training mean and std) and
//! the predictions mapped back: the MSE of raw targets in the hundreds makes Adam's early
//! steps far too small for the output bias. The PyTorch version of this program is
//! `bench/pytorch/examples/table.py`.

use neurite::data::table::{TableData, TableOptions, TableTargets};
use neurite::nn::{Linear, Module, ModuleExt, Relu, Sequential};
use neurite::ops::loss::Reduction;
use neurite::optim::{Adam, AdamConfig, Optimizer};
use neurite::{manual_seed, no_grad, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::PathBuf;

/// The command line.
struct Settings {
    data: PathBuf,
    target: String,
    test_split: f64,
    seed: u64,
    epochs: usize,
    batch: usize,
    hidden: usize,
    lr: f32,
    write_split: Option<PathBuf>,
}

/// `--name value` pairs.
fn settings() -> Result<Settings, String> {
    let mut s = Settings {
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iris.csv")),
        target: "species".into(),
        test_split: 0.2,
        seed: 0,
        epochs: 100,
        batch: 32,
        hidden: 64,
        lr: 1e-2,
        write_split: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = || format!("{flag}: cannot read '{value}'");
        match flag.as_str() {
            "--data" => s.data = value.into(),
            "--target" => s.target = value,
            "--test-split" => s.test_split = value.parse().map_err(|_| bad())?,
            "--seed" => s.seed = value.parse().map_err(|_| bad())?,
            "--epochs" => s.epochs = value.parse().map_err(|_| bad())?,
            "--batch-size" => s.batch = value.parse::<usize>().map_err(|_| bad())?.max(1),
            "--hidden" => s.hidden = value.parse().map_err(|_| bad())?,
            "--lr" => s.lr = value.parse().map_err(|_| bad())?,
            "--write-split" => s.write_split = Some(value.into()),
            _ => {
                return Err(format!(
                    "unknown flag {flag}: use --data, --target, --test-split, --seed, --epochs, \
                     --batch-size, --hidden, --lr, --write-split"
                ))
            }
        }
    }
    Ok(s)
}

fn main() -> neurite::Result<()> {
    let s = settings().unwrap_or_else(|e| {
        eprintln!("table: {e}");
        std::process::exit(2)
    });
    let options = TableOptions::new(&s.target).split(s.test_split, s.seed);
    let table = TableData::read(&s.data, &options)?;
    println!("{}", table.description);
    if let Some(path) = &s.write_split {
        let split = table.split.as_ref().expect("a split was asked for");
        let json = serde_json::json!({ "train": split.train, "test": split.test });
        std::fs::write(path, json.to_string())?;
    }
    for (key, value) in table.schema.to_metadata() {
        println!("  {key} = {value}");
    }

    manual_seed(s.seed);
    let (x_train, x_test) = (table.train_tensor(), table.test_tensor()); // [N, F]
    let (f, h) = (table.features(), s.hidden);
    let model = Sequential::new()
        .push(Linear::new(f, h, true))
        .push(Relu)
        .push(Linear::new(h, h, true))
        .push(Relu)
        .push(Linear::new(h, table.schema.outputs(), true));
    let mut opt = Adam::new(model.named_parameters(), AdamConfig::adam(s.lr));
    let mut rng = rand::rngs::StdRng::seed_from_u64(s.seed);
    let mut order: Vec<usize> = (0..table.train_rows()).collect();

    match (&table.train_y, &table.test_y) {
        (TableTargets::Classes { labels, .. }, TableTargets::Classes { labels: test, .. }) => {
            for _ in 0..s.epochs {
                order.shuffle(&mut rng);
                for rows in order.chunks(s.batch) {
                    let y: Vec<usize> = rows.iter().map(|&r| labels[r]).collect();
                    let loss = model
                        .forward(&x_train.index_select(0, rows))
                        .cross_entropy(&y);
                    opt.zero_grad();
                    loss.backward()?;
                    opt.step();
                }
            }
            let predicted = no_grad(|| model.forward(&x_test).argmax(1)).to_vec(); // [N]
            let right = predicted
                .iter()
                .zip(test)
                .filter(|(p, t)| **p as usize == **t);
            let accuracy = right.count() as f32 / test.len() as f32;
            let first = table
                .schema
                .class_name(predicted[0] as usize)
                .unwrap_or("?");
            println!("test accuracy {accuracy:.4} (first test row predicted `{first}`)");
        }
        (TableTargets::Values(y), TableTargets::Values(test)) => {
            let n = y.len() as f64;
            let mean = y.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let std = var.sqrt().max(f64::MIN_POSITIVE);
            let scaled: Vec<f32> = y
                .iter()
                .map(|&v| ((v as f64 - mean) / std) as f32)
                .collect();
            let y_train = Tensor::from_vec(scaled, &[y.len(), 1]); // [N, 1]
            for _ in 0..s.epochs {
                order.shuffle(&mut rng);
                for rows in order.chunks(s.batch) {
                    let out = model.forward(&x_train.index_select(0, rows));
                    let loss = out.mse_loss(&y_train.index_select(0, rows), Reduction::Mean);
                    opt.zero_grad();
                    loss.backward()?;
                    opt.step();
                }
            }
            let predicted = no_grad(|| model.forward(&x_test)).to_vec(); // [N] as [N, 1]
            let (mut se, mut ae) = (0.0f64, 0.0f64);
            for (&p, &t) in predicted.iter().zip(test) {
                let d = p as f64 * std + mean - t as f64;
                se += d * d;
                ae += d.abs();
            }
            let m = test.len() as f64;
            println!("test RMSE {:.3} MAE {:.3}", (se / m).sqrt(), ae / m);
        }
        _ => unreachable!("training and test targets are of one task"),
    }
    Ok(())
}
