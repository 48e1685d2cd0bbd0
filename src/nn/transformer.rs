//! Transformer layers in nanoGPT's layout: multi-head self-attention with a fused q/k/v
//! projection (`c_attn`, `c_proj`), the GELU MLP (`c_fc`, `c_proj`) and the pre-norm block
//! (`ln_1`, `attn`, `ln_2`, `mlp`), as `bench/pytorch/models.py` defines them.
//!
//! Attention can run against a [`KvCache`] so that sampling feeds one new position per
//! step, can return its probabilities for attention maps, and takes its products from a
//! [`LinearWeights`]: the layers' own weights, or the inference planner's packed copies.

use super::{summary, LayerNorm, Linear, Module, ModuleExt};
use crate::tensor::Tensor;

/// Keys and values of the positions seen so far by one attention layer, `[B, H, T_past, Dh]`.
#[derive(Default, Clone)]
pub struct KvCache {
    /// `[B, H, T_past, Dh]`
    pub k: Option<Tensor>,
    /// `[B, H, T_past, Dh]`
    pub v: Option<Tensor>,
}

impl KvCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.k.as_ref().map_or(0, |k| k.dim(2))
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Multi-head self-attention: `c_attn: Linear(C, 3C)` split into q, k, v (in that order),
/// `n_head` heads of `C / n_head` channels, scaled dot product (causal or not), heads merged,
/// `c_proj: Linear(C, C)`.
#[derive(Module)]
pub struct SelfAttention {
    /// The query, key and value projections in one, `[C] -> [3C]`.
    pub c_attn: Linear,
    /// The output projection, `[C] -> [C]`.
    pub c_proj: Linear,
    /// Attention heads (`C` must be a multiple).
    pub n_head: usize,
    /// Each position attends only to itself and earlier ones.
    pub causal: bool,
}

/// The GPT flavour of [`SelfAttention`] (`causal = true`); the type is the same.
pub type CausalSelfAttention = SelfAttention;

impl SelfAttention {
    /// Attention over `n_embd` channels in `n_head` heads.
    pub fn new(n_embd: usize, n_head: usize, causal: bool) -> SelfAttention {
        assert!(
            n_head > 0 && n_embd.is_multiple_of(n_head),
            "SelfAttention: {n_head} heads must divide {n_embd} channels"
        );
        SelfAttention {
            c_attn: Linear::new(n_embd, 3 * n_embd, true),
            c_proj: Linear::new(n_embd, n_embd, true),
            n_head,
            causal,
        }
    }

    /// `[B, T, C] -> [B, H, T, Dh]`
    fn heads(&self, t: &Tensor, b: usize, tt: usize, c: usize) -> Tensor {
        t.reshape(&[b, tt, self.n_head, c / self.n_head])
            .permute(&[0, 2, 1, 3])
    }

    /// Applies attention to `x [B, T, C]`, its products by `weights`, appending this call's
    /// keys and values to `cache` when one is given; also returns the probabilities
    /// `[B, H, T, T_keys]` (detached), except for `last_only`. With a non-empty cache and a
    /// causal layer, `x` must hold one position: it attends to every cached key (prefill
    /// into a non-empty cache is not supported, as in PyTorch's reference).
    ///
    /// `last_only`: the output of the last position only, `[B, 1, C]`. Without a cache,
    /// keys and values still come from every position and the last query sees all of them,
    /// with or without the causal mask, so this equals the last row of the full output
    /// without computing the other rows (what sampling needs from a model's last layer).
    pub fn forward_with(
        &self,
        x: &Tensor,
        cache: Option<&mut KvCache>,
        last_only: bool,
        weights: &dyn LinearWeights,
    ) -> (Tensor, Option<Tensor>) {
        let (b, t, c) = batch_time_channels(x);
        let qkv = weights.linear(x, &self.c_attn, false); // [B, T, 3C]
        let (y, probs) = match cache {
            None if !last_only => {
                // [B, T, C], [B, H, T, T]: heads read from and merged into place.
                let (y, probs) = Tensor::self_attention_packed(&qkv, self.n_head, self.causal);
                (y, Some(probs))
            }
            None => {
                let q = qkv.narrow(1, t - 1, 1).narrow(2, 0, c); // [B, 1, C]
                let q = self.heads(&q, b, 1, c); // [B, H, 1, Dh]
                let k = self.heads(&qkv.narrow(2, c, c), b, t, c); // [B, H, T, Dh]
                let v = self.heads(&qkv.narrow(2, 2 * c, c), b, t, c);
                let (y, _) = Tensor::scaled_dot_product_attention_with_probs(&q, &k, &v, false);
                (y.permute(&[0, 2, 1, 3]).reshape(&[b, 1, c]), None)
            }
            Some(cache) => {
                let (y, probs) = self.cached_attention(&qkv, cache);
                let y = if last_only { y.narrow(1, t - 1, 1) } else { y };
                (y, Some(probs))
            }
        };
        let y = weights.linear(&y, &self.c_proj, false);
        (summary::recorded(self, y), probs)
    }

    /// Attention of the heads in `qkv [B, T, 3C]` over `cache`'s keys and values and its
    /// own, which it appends to the cache: `[B, T, C]` and the probabilities.
    fn cached_attention(&self, qkv: &Tensor, cache: &mut KvCache) -> (Tensor, Tensor) {
        let (b, t, c3) = batch_time_channels(qkv);
        let c = c3 / 3;
        let parts = qkv.split(&[c, c, c], 2);
        let q = self.heads(&parts[0], b, t, c); // [B, H, T, Dh]
        let mut k = self.heads(&parts[1], b, t, c);
        let mut v = self.heads(&parts[2], b, t, c);
        if let (Some(pk), Some(pv)) = (&cache.k, &cache.v) {
            k = Tensor::cat(&[pk, &k.contiguous()], 2);
            v = Tensor::cat(&[pv, &v.contiguous()], 2);
        } else {
            k = k.contiguous();
            v = v.contiguous();
        }
        cache.k = Some(k.clone());
        cache.v = Some(v.clone());
        let tk = k.dim(2);
        let causal = self.causal && t == tk;
        assert!(
            !self.causal || causal || t == 1,
            "SelfAttention: {t} new positions against a cache of {} (prefill into a non-empty cache is not supported)",
            tk - t
        );
        // [B, H, T, Dh], [B, H, T, Tk]
        let (y, probs) = Tensor::scaled_dot_product_attention_with_probs(&q, &k, &v, causal);
        (y.permute(&[0, 2, 1, 3]).reshape(&[b, t, c]), probs) // [B, T, C]
    }
}

/// How transformer layers multiply by their linear layers' weights: [`AsTrained`] uses the
/// layers' own tensors (with autograd), the inference planner copies packed once
/// ([`crate::infer::GptPlan`]). Passed down explicitly, so no product looks anywhere else
/// for its weights.
pub trait LinearWeights {
    /// `x · weightᵀ + bias`, then the exact GELU when `gelu`.
    fn linear_of(&self, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, gelu: bool) -> Tensor;

    /// `layer(x)`, then the exact GELU when `gelu`.
    fn linear(&self, x: &Tensor, layer: &Linear, gelu: bool) -> Tensor {
        let y = self.linear_of(x, &layer.weight, layer.bias.as_ref(), gelu);
        summary::recorded(layer, y)
    }
}

/// The layers' own weights, as trained: `x.linear(weight, bias)` (then `.gelu()`).
#[derive(Clone, Copy, Debug, Default)]
pub struct AsTrained;

impl LinearWeights for AsTrained {
    fn linear_of(&self, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, gelu: bool) -> Tensor {
        let y = x.linear(weight, bias);
        if gelu {
            y.gelu()
        } else {
            y
        }
    }
}

/// `(B, T, C)` of an attention input, which must be `[B, T, C]`.
fn batch_time_channels(x: &Tensor) -> (usize, usize, usize) {
    let s = x.shape();
    assert!(
        s.len() == 3,
        "SelfAttention: input must be [B, T, C], got {s:?}"
    );
    (s[0], s[1], s[2])
}

impl Module for SelfAttention {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, None, false, &AsTrained).0
    }
}

/// The block's MLP: `c_fc: Linear(C, hidden)`, exact GELU, `c_proj: Linear(hidden, C)`.
#[derive(Module)]
pub struct Mlp {
    /// The expansion, `[C] -> [hidden]`.
    pub c_fc: Linear,
    /// The projection back, `[hidden] -> [C]`.
    pub c_proj: Linear,
}

impl Mlp {
    /// An MLP from `n_embd` through `hidden` channels back to `n_embd`.
    pub fn new(n_embd: usize, hidden: usize) -> Mlp {
        Mlp {
            c_fc: Linear::new(n_embd, hidden, true),
            c_proj: Linear::new(hidden, n_embd, true),
        }
    }
}

impl Mlp {
    /// `c_proj(gelu(c_fc(x)))`, the products by `weights`.
    pub fn forward_with(&self, x: &Tensor, weights: &dyn LinearWeights) -> Tensor {
        let hidden = weights.linear(x, &self.c_fc, true);
        summary::recorded(self, weights.linear(&hidden, &self.c_proj, false))
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, &AsTrained)
    }
}

/// Pre-norm transformer block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Module)]
pub struct Block {
    /// The layer norm before attention.
    pub ln_1: LayerNorm,
    /// The self-attention.
    pub attn: SelfAttention,
    /// The layer norm before the MLP.
    pub ln_2: LayerNorm,
    /// The MLP (GELU in between).
    pub mlp: Mlp,
}

impl Block {
    /// A block over `n_embd` channels, `n_head` heads, an MLP of `hidden` channels.
    pub fn new(n_embd: usize, n_head: usize, hidden: usize, causal: bool) -> Block {
        Block {
            ln_1: LayerNorm::new(n_embd),
            attn: SelfAttention::new(n_embd, n_head, causal),
            ln_2: LayerNorm::new(n_embd),
            mlp: Mlp::new(n_embd, hidden),
        }
    }

    /// The block on `x [B, T, C]` with an optional key/value cache, the products by
    /// `weights`; also returns the attention probabilities `[B, H, T, T_keys]` (not for
    /// `last_only`). `last_only`: the output at the last position only, `[B, 1, C]`, equal
    /// to the last row of the full output (attention reads every position; the residual
    /// and MLP run on one row).
    pub fn forward_with(
        &self,
        x: &Tensor,
        cache: Option<&mut KvCache>,
        last_only: bool,
        weights: &dyn LinearWeights,
    ) -> (Tensor, Option<Tensor>) {
        let t = x.dim(1);
        let (a, probs) = self
            .attn
            .forward_with(&self.ln_1.forward(x), cache, last_only, weights);
        let x = if last_only {
            x.narrow(1, t - 1, 1)
        } else {
            x.clone()
        };
        let x = x.add(&a);
        let y = x.add(&self.mlp.forward_with(&self.ln_2.forward(&x), weights));
        (summary::recorded(self, y), probs)
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, None, false, &AsTrained).0
    }
}

/// nanoGPT's initialization, as `_gpt_style_init` in the PyTorch reference: every Linear
/// and Embedding weight (the 2-D parameters) `N(0, 0.02)`, the residual projections
/// (`*c_proj.weight`) `N(0, 0.02 / sqrt(2 n_layer))`, Linear biases zero. Convolutions
/// (4-D), LayerNorms and the parameters named in `skip` keep their values.
pub fn gpt_style_init(model: &dyn Module, n_layer: usize, skip: &[&str]) {
    let resid_std = 0.02 / (2.0 * n_layer as f32).sqrt();
    for (name, p) in model.named_parameters() {
        if skip.iter().any(|s| name.starts_with(s)) {
            continue;
        }
        let is_ln = name.contains("ln_");
        if name.ends_with("c_proj.weight") {
            p.copy_from(&crate::init::normal(p.shape(), resid_std));
        } else if p.rank() == 2 {
            p.copy_from(&crate::init::normal(p.shape(), 0.02));
        } else if name.ends_with("bias") && !is_ln {
            p.copy_from(&Tensor::zeros(p.shape()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(m: &dyn Module) -> Vec<String> {
        m.state_dict().into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn block_names_and_shapes_follow_nanogpt() {
        let b = Block::new(16, 4, 64, true);
        assert_eq!(
            names(&b),
            [
                "ln_1.weight",
                "ln_1.bias",
                "attn.c_attn.weight",
                "attn.c_attn.bias",
                "attn.c_proj.weight",
                "attn.c_proj.bias",
                "ln_2.weight",
                "ln_2.bias",
                "mlp.c_fc.weight",
                "mlp.c_fc.bias",
                "mlp.c_proj.weight",
                "mlp.c_proj.bias",
            ]
        );
        assert_eq!(b.attn.c_attn.weight.shape(), &[48, 16]);
        assert_eq!(b.mlp.c_fc.weight.shape(), &[64, 16]);
        let x = Tensor::randn(&[2, 5, 16], 0.0, 1.0);
        let (y, p) = b.forward_with(&x, None, false, &AsTrained);
        let p = p.expect("probabilities");
        assert_eq!(y.shape(), &[2, 5, 16]);
        assert_eq!(p.shape(), &[2, 4, 5, 5]);
        // causal: the first query attends only to itself
        let pv = p.to_vec();
        assert!((pv[0] - 1.0).abs() < 1e-6 && pv[1..5].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn causal_attention_ignores_the_future() {
        let a = SelfAttention::new(8, 2, true);
        let x = Tensor::randn(&[1, 6, 8], 0.0, 1.0);
        let y = a.forward(&x).to_vec();
        let mut xv = x.to_vec();
        for v in &mut xv[5 * 8..] {
            *v += 1.0;
        }
        let y2 = a.forward(&Tensor::from_vec(xv, &[1, 6, 8])).to_vec();
        for i in 0..5 * 8 {
            assert!((y[i] - y2[i]).abs() < 1e-6, "position {} changed", i / 8);
        }
        assert!((5 * 8..6 * 8).any(|i| (y[i] - y2[i]).abs() > 1e-4));
    }

    #[test]
    fn last_position_forward_matches_the_last_row() {
        crate::manual_seed(3);
        for causal in [true, false] {
            let block = Block::new(16, 4, 32, causal);
            let x = crate::init::normal(&[2, 7, 16], 1.0); // [B, T, C]
            let full = block.forward(&x).narrow(1, 6, 1).to_vec();
            let (last, probs) = block.forward_with(&x, None, true, &AsTrained);
            assert!(probs.is_none());
            assert_eq!(last.shape(), &[2, 1, 16]);
            for (a, b) in full.iter().zip(last.to_vec()) {
                assert!((a - b).abs() < 1e-5, "causal {causal}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn cached_attention_matches_the_full_sequence() {
        let b = Block::new(8, 2, 32, true);
        let x = Tensor::randn(&[2, 5, 8], 0.0, 1.0);
        let full = b.forward(&x); // [2, 5, 8]
        let mut cache = KvCache::default();
        let (pre, _) = b.forward_with(
            &x.narrow(1, 0, 3).contiguous(),
            Some(&mut cache),
            false,
            &AsTrained,
        );
        assert_eq!(cache.len(), 3);
        let mut outs = vec![pre];
        for t in 3..5 {
            outs.push(
                b.forward_with(
                    &x.narrow(1, t, 1).contiguous(),
                    Some(&mut cache),
                    false,
                    &AsTrained,
                )
                .0,
            );
        }
        let refs: Vec<&Tensor> = outs.iter().collect();
        let cached = Tensor::cat(&refs, 1);
        for (a, c) in full.to_vec().iter().zip(cached.to_vec()) {
            assert!((a - c).abs() < 1e-5, "{a} vs {c}");
        }
    }
}
