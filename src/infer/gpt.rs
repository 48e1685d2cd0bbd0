//! [`GptPlan`]: the character-level GPT with its linear weights packed once, and sampling.

use super::sample::{sample, SampleOptions};
use crate::autograd::run_on_worker;
use crate::models::gpt::{Gpt, GptPass};
use crate::nn::{AsTrained, KvCache, Linear, LinearWeights};
use crate::ops::matmul::PackedLinear;
use crate::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;

/// (weight's buffer, bias's buffer or 0): which packed copy a product takes.
type Key = (usize, usize);

fn address(t: &Tensor) -> usize {
    t.with_slice(|s| s.as_ptr() as usize)
}

fn key(weight: &Tensor, bias: Option<&Tensor>) -> Key {
    (address(weight), bias.map_or(0, address))
}

/// Packed copies of a model's linear weights, handed to its forward
/// ([`crate::nn::LinearWeights`]); a product whose weight was not packed multiplies by the
/// layer's own.
#[derive(Default)]
pub struct PackedWeights {
    packed: HashMap<Key, PackedLinear>,
}

impl PackedWeights {
    /// Packs `weight [out, in]` with `bias` (once per pair).
    pub fn add(&mut self, weight: &Tensor, bias: Option<&Tensor>) {
        self.packed
            .entry(key(weight, bias))
            .or_insert_with(|| PackedLinear::new(weight, bias));
    }

    /// Packs a linear layer.
    pub fn add_layer(&mut self, layer: &Linear) {
        self.add(&layer.weight, layer.bias.as_ref());
    }

    /// How many weights are packed.
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }
}

impl LinearWeights for PackedWeights {
    fn linear_of(&self, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, gelu: bool) -> Tensor {
        match self.packed.get(&key(weight, bias)) {
            Some(p) => x.linear_packed(p, gelu),
            None => AsTrained.linear_of(x, weight, bias, gelu),
        }
    }
}

/// A [`Gpt`] for inference: every linear weight (the blocks' four and the tied output
/// projection) packed once, so the many products of sampling with a few rows each do not
/// repack them. The weights must not change while the plan lives.
pub struct GptPlan<'m> {
    model: &'m Gpt,
    weights: PackedWeights,
}

impl<'m> GptPlan<'m> {
    /// Packs `model`'s linear weights.
    pub fn new(model: &'m Gpt) -> GptPlan<'m> {
        let mut weights = PackedWeights::default();
        for block in &model.h {
            for layer in [
                &block.attn.c_attn,
                &block.attn.c_proj,
                &block.mlp.c_fc,
                &block.mlp.c_proj,
            ] {
                weights.add_layer(layer);
            }
        }
        weights.add(&model.wte, None);
        GptPlan { model, weights }
    }

    /// The packed weights (what the products take).
    pub fn weights(&self) -> &PackedWeights {
        &self.weights
    }

    /// Logits of `ids [B, T]` at positions `pos0..`, appending to `caches` when given,
    /// `[B, T, vocab]` or (`last_only`) `[B, 1, vocab]`; without autograd.
    pub fn logits(
        &self,
        ids: &[usize],
        (b, t): (usize, usize),
        pos0: usize,
        caches: Option<&mut [KvCache]>,
        last_only: bool,
    ) -> Tensor {
        let pass = GptPass {
            pos0,
            caches,
            last_only,
            weights: &self.weights,
        };
        crate::no_grad(|| self.model.forward_with(ids, b, t, pass))
    }

    /// Samples `n` tokens after `prompt` (non-empty), calling `on_token` with each as it is
    /// drawn, and returns them. Every token is predicted from the last `block_size` tokens,
    /// positions counted from the start of that window (nanoGPT's `generate`). With the
    /// cache, each step runs one position while the sequence fits in the window; once it
    /// slides, positions shift, so the whole window is re-encoded at each step (the PyTorch
    /// reference does the same). Re-encoding computes the last block, the final norm and
    /// the output projection for the last position only.
    pub fn generate(
        &self,
        prompt: &[usize],
        n: usize,
        opts: SampleOptions,
        on_token: &mut (dyn FnMut(usize) + Send),
    ) -> Vec<usize> {
        assert!(!prompt.is_empty(), "gpt generate: the prompt is empty");
        let bs = self.model.config.block_size;
        let mut rng = StdRng::seed_from_u64(opts.seed);
        let mut seq = prompt.to_vec();
        let mut caches: Option<Vec<KvCache>> = None;
        let mut cached_len = 0;
        let last_row = |l: &Tensor| l.narrow(1, l.dim(1) - 1, 1).to_vec();
        // The loop runs on a worker thread: its kernels start without waking the caller.
        run_on_worker(|| {
            for _ in 0..n {
                let ctx = &seq[seq.len().saturating_sub(bs)..];
                let full_window = ctx.len() == bs && (caches.is_none() || cached_len >= bs);
                let logits = if !opts.use_cache || full_window {
                    // A full window is re-encoded at every step from here on (the next token
                    // shifts every position), so caches would never be read.
                    self.logits(ctx, (1, ctx.len()), 0, None, true).to_vec()
                } else if caches.is_none() {
                    let mut fresh = vec![KvCache::default(); self.model.h.len()];
                    let l = self.logits(ctx, (1, ctx.len()), 0, Some(&mut fresh), false);
                    caches = Some(fresh);
                    cached_len = ctx.len();
                    last_row(&l)
                } else {
                    let last = [*seq.last().unwrap()];
                    let l = self.logits(&last, (1, 1), cached_len, caches.as_deref_mut(), false);
                    cached_len += 1;
                    last_row(&l)
                };
                let next = sample(&logits, opts.temperature, opts.top_k, &mut rng);
                on_token(next);
                seq.push(next);
            }
        });
        seq.split_off(prompt.len())
    }
}
