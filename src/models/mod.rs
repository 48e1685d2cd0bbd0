//! The model zoo: the reference networks of the spec, with PyTorch's parameter names.

pub mod gpt;
mod lenet5;
mod mlp;
mod resnet20;
pub mod vit;

pub use gpt::{Gpt, GptConfig, SampleOptions};
pub use lenet5::lenet5;
pub use mlp::mlp;
pub use resnet20::resnet20;
pub use vit::{vit, Vit};

use crate::nn::Module;
use anyhow::bail;

/// The image models `neurite train` knows.
pub const IMAGE_MODELS: &[&str] = &["mlp", "lenet5", "resnet20", "vit"];

/// Builds an image classifier by name for `channels x 28 x 28` inputs and `classes` outputs.
pub fn build(name: &str, channels: usize, classes: usize) -> anyhow::Result<Box<dyn Module>> {
    Ok(match name {
        "mlp" => Box::new(mlp(channels * 28 * 28, classes)),
        "lenet5" => Box::new(lenet5(channels, classes)),
        "resnet20" => Box::new(resnet20(channels, classes)),
        "vit" => Box::new(vit(channels, classes)),
        other => bail!(
            "unknown model '{other}'; choose one of: {}",
            IMAGE_MODELS.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ModuleExt;
    use crate::tensor::Tensor;

    #[test]
    fn parameter_counts_match_the_spec() {
        assert_eq!(build("mlp", 1, 10).unwrap().num_parameters(), 535_818);
        assert_eq!(build("lenet5", 1, 10).unwrap().num_parameters(), 61_706);
        assert_eq!(build("resnet20", 1, 10).unwrap().num_parameters(), 272_186);
        assert_eq!(build("vit", 1, 10).unwrap().num_parameters(), 205_962);
    }

    #[test]
    fn resnet20_names_follow_pytorch() {
        let m = build("resnet20", 1, 10).unwrap();
        let names: Vec<String> = m.state_dict().into_iter().map(|(n, _)| n).collect();
        for expected in [
            "conv1.weight",
            "bn1.running_var",
            "layer1.0.conv1.weight",
            "layer1.2.bn2.num_batches_tracked",
            "layer2.0.shortcut.0.weight",
            "layer3.0.shortcut.1.running_mean",
            "fc.bias",
        ] {
            assert!(names.iter().any(|n| n == expected), "missing {expected}");
        }
        assert!(!names.iter().any(|n| n.starts_with("layer1.0.shortcut")));
    }

    #[test]
    fn image_models_map_a_batch_to_logits() {
        for name in IMAGE_MODELS {
            let m = build(name, 1, 10).unwrap();
            let y = m.forward(&Tensor::randn(&[2, 1, 28, 28], 0.0, 1.0));
            assert_eq!(y.shape(), &[2, 10], "{name}");
        }
    }
}
