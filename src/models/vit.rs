//! `vit`: the small vision transformer of the spec for 28 x 28 images: 4 x 4 patches
//! (`patch_embed`), a class token, learned position embeddings, 6 pre-norm blocks
//! (`blocks.{i}`, gpt's layout without the causal mask), `ln_f` and `head` on the class
//! token. [`vit_for`] builds the same network for other image sizes (sides divisible by 4:
//! one position embedding per patch).

use crate::nn::{gpt_style_init, AsTrained, Block, Conv2d, LayerNorm, Linear, Module};
use crate::ops::conv::Conv2dOptions;
use crate::tensor::Tensor;

const DIM: usize = 64;
const DEPTH: usize = 6;
const HEADS: usize = 4;
const HIDDEN: usize = 128;
/// The side of a patch, in pixels.
pub const PATCH: usize = 4;
/// Patches per side of a 28 x 28 image.
pub const GRID: usize = 28 / PATCH;

/// The vision transformer.
#[derive(Module)]
pub struct Vit {
    /// Cuts the image into patches and embeds each: a convolution with stride = kernel = patch.
    pub patch_embed: Conv2d,
    /// `[1, 1, 64]`
    pub cls_token: Tensor,
    /// `[1, 50, 64]`
    pub pos_embed: Tensor,
    /// The transformer blocks.
    pub blocks: Vec<Block>,
    /// The final layer norm.
    pub ln_f: LayerNorm,
    /// The classifier on the class token.
    pub head: Linear,
    /// Patches per column and per row of the image (`[7, 7]` for 28 x 28).
    #[module(skip)]
    pub grid: [usize; 2],
}

/// A `vit` for `channels x 28 x 28` images and `classes` outputs, initialized as the
/// PyTorch reference (nanoGPT-style Linear weights, `N(0, 0.02)` class token and positions,
/// PyTorch's default for the patch convolution).
pub fn vit(channels: usize, classes: usize) -> Vit {
    vit_for([channels, 28, 28], classes).expect("28 x 28 is divisible into patches")
}

/// A `vit` for `channels x height x width` images: both sides must be multiples of the
/// patch side (4), which gives `(height / 4) x (width / 4)` patches and as many position
/// embeddings (plus the class token's).
pub fn vit_for([channels, height, width]: [usize; 3], classes: usize) -> anyhow::Result<Vit> {
    if height % PATCH != 0 || width % PATCH != 0 || height == 0 || width == 0 {
        anyhow::bail!(
            "vit cuts images into {PATCH} x {PATCH} patches, so both sides must be positive \
             multiples of {PATCH}; these images are {height} x {width}: resize them (for an \
             image folder, --image-size {})",
            (height.max(width).div_ceil(PATCH) * PATCH).max(PATCH)
        );
    }
    let grid = [height / PATCH, width / PATCH];
    let n = grid[0] * grid[1];
    let m = Vit {
        patch_embed: Conv2d::new(
            channels,
            DIM,
            PATCH,
            Conv2dOptions::new().stride(PATCH),
            true,
        ),
        cls_token: crate::init::normal(&[1, 1, DIM], 0.02).requires_grad_(),
        pos_embed: crate::init::normal(&[1, n + 1, DIM], 0.02).requires_grad_(),
        blocks: (0..DEPTH)
            .map(|_| Block::new(DIM, HEADS, HIDDEN, false))
            .collect(),
        ln_f: LayerNorm::new(DIM),
        head: Linear::new(DIM, classes, true),
        grid,
    };
    gpt_style_init(&m, DEPTH, &["patch_embed", "cls_token", "pos_embed"]);
    Ok(m)
}

impl Vit {
    /// Logits `[N, classes]` of images `[N, C, H, W]`, and the last block's attention of
    /// the class token over the patches, averaged over heads: `[N, P]` row-major on the
    /// patch grid (`P` = 49 for the 7 x 7 grid of 28 x 28 images; the class token's attention
    /// to itself left out).
    pub fn forward_with_attention(&self, x: &Tensor) -> (Tensor, Tensor) {
        let n = x.dim(0);
        let patches = self.grid[0] * self.grid[1];
        // [N, 64, 7, 7] -> [N, 49, 64]
        let p = self
            .patch_embed
            .forward(x)
            .flatten(2)
            .transpose(1, 2)
            .contiguous();
        let cls = self.cls_token.expand(&[n, 1, DIM]);
        let mut h = Tensor::cat(&[&cls, &p], 1).add(&self.pos_embed); // [N, 50, 64]
        let mut probs = None;
        for b in &self.blocks {
            let (y, pr) = b.forward_with(&h, None, false, &AsTrained);
            h = y;
            probs = pr;
        }
        // [N, H, 50, 50] -> class-token row, patches only, mean over heads: [N, 49]
        let att = probs
            .expect("vit has blocks")
            .narrow(2, 0, 1)
            .narrow(3, 1, patches)
            .mean(1, false)
            .reshape(&[n, patches]);
        let cls_out = h.narrow(1, 0, 1).reshape(&[n, DIM]); // [N, 64]
        (self.head.forward(&self.ln_f.forward(&cls_out)), att)
    }
}

impl Module for Vit {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with_attention(x).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ModuleExt;

    #[test]
    fn vit_follows_the_spec() {
        let m = vit(1, 10);
        assert_eq!(m.num_parameters(), 205_962);
        let names: Vec<String> = m.state_dict().into_iter().map(|(n, _)| n).collect();
        for n in [
            "patch_embed.weight",
            "patch_embed.bias",
            "cls_token",
            "pos_embed",
            "blocks.0.ln_1.weight",
            "blocks.5.attn.c_attn.weight",
            "blocks.5.attn.c_proj.bias",
            "blocks.5.ln_2.bias",
            "blocks.5.mlp.c_fc.weight",
            "blocks.5.mlp.c_proj.weight",
            "ln_f.weight",
            "head.weight",
            "head.bias",
        ] {
            assert!(names.iter().any(|x| x == n), "missing {n}");
        }
        assert_eq!(m.blocks[0].mlp.c_fc.weight.shape(), &[128, 64]);
    }

    #[test]
    fn attention_map_is_a_distribution_over_patches_per_image() {
        let m = vit(1, 10);
        let (y, att) = m.forward_with_attention(&Tensor::randn(&[2, 1, 28, 28], 0.0, 1.0));
        assert_eq!(y.shape(), &[2, 10]);
        assert_eq!(att.shape(), &[2, 49]);
        let a = att.to_vec();
        for r in 0..2 {
            let s: f32 = a[r * 49..(r + 1) * 49].iter().sum();
            // the class token's attention to itself is the rest of the 1
            assert!(s > 0.0 && s < 1.0, "{s}");
        }
    }
}
