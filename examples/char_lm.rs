//! A small character-level language model, trained and sampled from the library.
//!
//! The zoo's `gpt` (nanoGPT's layout) on the bytes of the Debian `fortunes` text (or files
//! you name), with a hand-written loop: random windows of the text, AdamW, gradient
//! clipping, cosine decay, a validation loss, then sampling through the inference plan.
//!
//! ```text
//! cargo run --release --example char_lm -- --steps 300
//! cargo run --release --example char_lm -- --steps 2000 --layers 4 --width 128 my-text.txt
//! ```
//!
//! The PyTorch version of this program is `bench/pytorch/examples/char_lm.py`.

use neurite::data::text::{read_text, split_text, Windows};
use neurite::infer::SampleOptions;
use neurite::models::{Gpt, GptConfig};
use neurite::nn::ModuleExt;
use neurite::optim::{clip_grad_norm, Adam, AdamConfig, Decay, Optimizer, Schedule};
use std::path::PathBuf;

/// The example's settings, from `--name value` pairs; other words are text files.
struct Settings {
    steps: usize,
    batch: usize,
    block: usize,
    layers: usize,
    width: usize,
    files: Vec<PathBuf>,
}

fn settings() -> neurite::Result<Settings> {
    let mut s = Settings {
        steps: 300,
        batch: 16,
        block: 64,
        layers: 2,
        width: 64,
        files: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = |flag: &str| -> neurite::Result<usize> {
            let v = args.next().unwrap_or_default();
            v.parse()
                .map_err(|_| neurite::Error::msg(format!("{flag} needs a whole number, got '{v}'")))
        };
        match a.as_str() {
            "--steps" => s.steps = number("--steps")?,
            "--batch-size" => s.batch = number("--batch-size")?,
            "--block-size" => s.block = number("--block-size")?,
            "--layers" => s.layers = number("--layers")?,
            "--width" => s.width = number("--width")?,
            flag if flag.starts_with("--") => {
                return Err(neurite::Error::msg(format!(
                "unknown flag {flag}: use --steps, --batch-size, --block-size, --layers, --width"
            )))
            }
            file => s.files.push(PathBuf::from(file)),
        }
    }
    Ok(s)
}

fn main() -> neurite::Result<()> {
    let s = settings()?;
    let text = read_text(&s.files)?;
    let (train, val) = split_text(&text);
    neurite::manual_seed(0);
    let config = GptConfig {
        vocab: 256, // bytes
        block_size: s.block,
        n_layer: s.layers,
        n_head: 4,
        n_embd: s.width,
    };
    let model = Gpt::new(config);
    println!(
        "gpt: {} parameters, {} bytes of text ({} for validation)",
        model.num_parameters(),
        text.len(),
        val.len()
    );

    let params = model.parameters();
    // AdamW with a cosine decay after 20 warm-up steps, stepped by `opt.step()`.
    let schedule = Schedule::new(1e-3, Decay::Cosine { min_lr: 1e-4 }, 20, s.steps);
    let config = AdamConfig {
        weight_decay: 0.1,
        ..AdamConfig::adamw(1e-3)
    };
    let mut opt = Adam::new(model.named_parameters(), config).with_schedule(schedule);
    let mut windows = Windows::new(train, s.block, 0)?;
    for step in 0..s.steps {
        let (x, y) = windows.batch(s.batch); // ids and next ids, [B * T] each
        opt.zero_grad();
        let loss = model.loss(&x, &y, s.batch, s.block);
        loss.backward()?;
        clip_grad_norm(&params, 1.0);
        opt.step();
        if step % 100 == 0 || step + 1 == s.steps {
            println!("step {step:5}  loss {:.4}", loss.item());
        }
    }

    // The validation loss on consecutive windows of the last 10% of the text.
    let val_loss = neurite::lm::text_loss(&model, val, s.batch)?;
    println!("validation loss {val_loss:.4} nats per byte");

    let prompt: Vec<usize> = b"The ".iter().map(|&b| b as usize).collect();
    let opts = SampleOptions {
        temperature: 0.8,
        top_k: None,
        seed: 1,
        use_cache: true,
    };
    let sample = model.generate(&prompt, 200, opts, &mut |_| {});
    let bytes: Vec<u8> = prompt.iter().chain(&sample).map(|&t| t as u8).collect();
    println!("{}", String::from_utf8_lossy(&bytes));
    Ok(())
}
