//! `neurite summary MODEL`: the layers of a zoo model with their output shapes and
//! parameter counts, the totals and the memory, as torchinfo's `summary`.

use crate::models::{Gpt, GptConfig, IMAGE_MODELS};
use crate::nn::{summary, Summary};
use anyhow::{bail, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(help = format!("The model: {}, gpt", IMAGE_MODELS.join(", ")))]
    model: String,
    /// Images (or token sequences, for gpt) in the batch the shapes and activation memory
    /// are given for.
    #[arg(long, default_value_t = 1)]
    batch: usize,
}

/// The summary of a zoo model for a batch of `batch`: the image models on Fashion-MNIST's
/// `1 x 28 x 28` images and 10 classes, `gpt` (the spec's default size) on `block_size`
/// tokens.
pub fn model_summary(model: &str, batch: usize) -> Result<Summary> {
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    if model == "gpt" {
        let config = GptConfig::default();
        return Ok(summary(&Gpt::new(config), &[batch, config.block_size]));
    }
    if !IMAGE_MODELS.contains(&model) {
        bail!(
            "unknown model '{model}'; choose one of: {}, gpt",
            IMAGE_MODELS.join(", ")
        );
    }
    let m = crate::models::build(model, &crate::models::MNIST_INPUT, 10)?;
    Ok(summary(&*m, &[batch, 1, 28, 28]))
}

pub fn run(args: Args) -> Result<i32> {
    println!("{}", model_summary(&args.model, args.batch)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_summaries_count_as_pytorch_does() {
        // PyTorch's sum(p.numel() for p in model.parameters()) (the spec's values).
        for (name, params, buffers) in [
            ("lenet5", 61_706, 0),
            // 21 batch norms (the stem, 6 per stage, 2 projection shortcuts): running mean
            // and var per channel, one step count each (PyTorch's buffers).
            ("resnet20", 272_186, 2 * (16 * 7 + 32 * 7 + 64 * 7) + 21),
        ] {
            let s = model_summary(name, 1).unwrap();
            assert_eq!((s.trainable, s.non_trainable), (params, buffers), "{name}");
            assert_eq!(s.rows[0].output_shape.as_deref(), Some(&[1, 10][..]));
        }
        let s = model_summary("resnet20", 2).unwrap();
        let row = |n: &str| s.rows.iter().find(|r| r.name == n).unwrap().clone();
        assert_eq!(
            row("layer2.0.shortcut.0").output_shape,
            Some(vec![2, 32, 14, 14])
        );
        assert_eq!(row("layer3").output_shape, Some(vec![2, 64, 7, 7]));
        assert_eq!(row("layer3.2").type_name, "Residual");
        assert_eq!(row("layer3.2").depth, 2);
        assert_eq!(row("fc").parameters, 650);
        let g = model_summary("gpt", 1).unwrap();
        assert_eq!(g.rows[0].output_shape, Some(vec![1, 128, 256]));
        let h0 = g
            .rows
            .iter()
            .find(|r| r.name == "transformer.h.0.mlp.c_fc")
            .unwrap();
        assert_eq!(h0.output_shape, Some(vec![1, 128, 512]));
        assert!(model_summary("alexnet", 1)
            .unwrap_err()
            .to_string()
            .contains("lenet5"));
    }
}
