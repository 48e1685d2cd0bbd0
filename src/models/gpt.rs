//! `gpt`: the character-level GPT of the spec in nanoGPT's layout (`transformer.wte`,
//! `transformer.wpe`, `transformer.h.{i}`, `transformer.ln_f`, `lm_head` tied to `wte`),
//! with one forward (`forward_with`: an optional key/value cache, the last position only,
//! the weights as trained or packed); sampling is [`crate::infer::GptPlan`]'s.
//!
//! The tie: logits are `x · wteᵀ` with the embedding table itself, so the table's gradient
//! sums the lookup's and the output projection's. `lm_head.weight` appears in `state_dict`
//! as a buffer holding the same tensor (a checkpoint stores it as a copy, as PyTorch's
//! safetensors export does) and is not counted or optimized twice; [`Gpt::load`] reads a
//! checkpoint without it as tied.

use crate::checkpoint::Checkpoint;
use crate::nn::{
    gpt_style_init, AsTrained, Block, KvCache, LayerNorm, LinearWeights, Module, ModuleExt, Visit,
};
use crate::tensor::Tensor;
use anyhow::{bail, Result};

/// The size of a `gpt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GptConfig {
    /// Token ids are `0..vocab` (256 for bytes).
    pub vocab: usize,
    /// The longest context, in tokens.
    pub block_size: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block (`n_embd` must be a multiple).
    pub n_head: usize,
    /// Channels of the embeddings and of every block.
    pub n_embd: usize,
}

impl Default for GptConfig {
    /// The spec's defaults: vocab 256, block 128, 4 layers, 4 heads, 128 channels.
    fn default() -> GptConfig {
        GptConfig {
            vocab: 256,
            block_size: 128,
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
        }
    }
}

impl GptConfig {
    /// The configuration as checkpoint metadata (`gpt.*` keys).
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        [
            ("gpt.vocab", self.vocab),
            ("gpt.block_size", self.block_size),
            ("gpt.n_layer", self.n_layer),
            ("gpt.n_head", self.n_head),
            ("gpt.n_embd", self.n_embd),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The configuration of the model a checkpoint holds: sizes from the tensor shapes, the
    /// head count from the `gpt.n_head` metadata (4, the spec's, when absent: a PyTorch
    /// export). Every size is checked, and the other `gpt.*` keys, when present, must agree
    /// with the shapes; errors name `source` and the key or tensor.
    pub fn from_checkpoint(ck: &Checkpoint, source: &str) -> Result<GptConfig> {
        if let Some(m) = ck.metadata.get("model").filter(|m| m.as_str() != "gpt") {
            bail!("{source} holds weights of a {m}, not of a gpt; give a file written by `neurite lm train`");
        }
        if let Some(m) = ck.metadata.get(crate::checkpoint::CLASSIC_METHOD_KEY) {
            bail!("{source} holds a classical {m} model, not a gpt; give a file written by `neurite lm train`");
        }
        let matrix = |name: &str| -> Result<&crate::tensor::Tensor> {
            let Some(t) = ck.get(name) else {
                bail!("{source}: not a gpt checkpoint (no {name})");
            };
            if t.shape().len() != 2 {
                bail!(
                    "{source}: {name} has shape {:?}; a gpt's is a matrix [{}, n_embd]",
                    t.shape(),
                    if name.contains("wte") {
                        "vocab"
                    } else {
                        "block_size"
                    }
                );
            }
            Ok(t)
        };
        let wte = matrix("transformer.wte.weight")?;
        let wpe = matrix("transformer.wpe.weight")?;
        if wpe.dim(1) != wte.dim(1) {
            bail!(
                "{source}: transformer.wpe.weight has shape {:?} but transformer.wte.weight {:?}: \
                 both need n_embd columns",
                wpe.shape(),
                wte.shape()
            );
        }
        let n_layer = (0..)
            .take_while(|i| ck.get(&format!("transformer.h.{i}.ln_1.weight")).is_some())
            .count();
        let key = |k: &str| -> Result<Option<usize>> {
            match ck.metadata.get(k) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| {
                    anyhow::anyhow!("{source}: metadata {k} = {v:?} is not a whole number")
                }),
            }
        };
        let n_head = key("gpt.n_head")?;
        let c = GptConfig {
            vocab: wte.dim(0),
            block_size: wpe.dim(0),
            n_layer,
            n_head: n_head.unwrap_or(4),
            n_embd: wte.dim(1),
        };
        c.check(&|k| match k {
            "n_head" if n_head.is_none() => format!(
                "{source}: the head count (no metadata gpt.n_head: the spec's 4 assumed; add \
                 the key to the file)"
            ),
            "vocab" => format!("{source}: transformer.wte.weight's rows (the vocabulary)"),
            "n_embd" => format!("{source}: transformer.wte.weight's columns (n_embd)"),
            "block_size" => format!("{source}: transformer.wpe.weight's rows (block_size)"),
            "n_layer" => format!("{source}: the number of blocks transformer.h.* (n_layer)"),
            other => format!("{source}: metadata gpt.{other}"),
        })?;
        for (k, v) in [
            ("gpt.vocab", c.vocab),
            ("gpt.block_size", c.block_size),
            ("gpt.n_layer", c.n_layer),
            ("gpt.n_embd", c.n_embd),
        ] {
            if let Some(m) = key(k)? {
                if m != v {
                    bail!("{source}: metadata {k} is {m} but the tensors hold a gpt with {v}; the file is inconsistent");
                }
            }
        }
        Ok(c)
    }

    /// Checks the sizes; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        self.check(&|k| format!("--{}", k.replace('_', "-")))
    }

    /// The number of parameters of a model of this size (with the tied head counted once),
    /// `None` when it overflows.
    pub fn parameter_count(&self) -> Option<usize> {
        let (c, l) = (self.n_embd, self.n_layer);
        // Per block: 2 norms (4c), attention (3c² + 3c, c² + c), MLP (4c² + 4c, 4c² + c).
        let block = c.checked_mul(c)?.checked_mul(12)?.checked_add(13 * c)?;
        self.vocab
            .checked_add(self.block_size)?
            .checked_mul(c)?
            .checked_add(block.checked_mul(l)?)?
            .checked_add(2 * c)
    }

    /// Checks the sizes; `name` turns a field name (`n_head`) into what the error calls it
    /// (the flag, or the file and its key).
    fn check(&self, name: &dyn Fn(&str) -> String) -> Result<()> {
        use crate::validate::count;
        count(&name("vocab"), self.vocab, 1, MAX_GPT_SIZE)?;
        count(&name("n_layer"), self.n_layer, 1, MAX_GPT_LAYERS)?;
        count(&name("n_embd"), self.n_embd, 1, MAX_GPT_SIZE)?;
        count(&name("n_head"), self.n_head, 1, self.n_embd)?;
        count(&name("block_size"), self.block_size, 1, MAX_GPT_SIZE)?;
        if !self.n_embd.is_multiple_of(self.n_head) {
            bail!(
                "{} {} must divide {} {}",
                name("n_head"),
                self.n_head,
                name("n_embd"),
                self.n_embd
            );
        }
        match self.parameter_count() {
            Some(p) if p <= MAX_GPT_PARAMETERS => Ok(()),
            p => bail!(
                "a gpt of {} layers of {} channels ({} and {}) has {} parameters, more than \
                 the {MAX_GPT_PARAMETERS} this build allows; make it smaller",
                self.n_layer,
                self.n_embd,
                name("n_layer"),
                name("n_embd"),
                p.map_or("too many".to_string(), |p| p.to_string())
            ),
        }
    }
}

/// The largest vocabulary, width or block size of a `gpt`.
pub const MAX_GPT_SIZE: usize = 16_384;
/// The most blocks of a `gpt`.
pub const MAX_GPT_LAYERS: usize = 1024;
/// The most parameters of a `gpt` (4 GiB of weights, 3 times that with Adam's state).
pub const MAX_GPT_PARAMETERS: usize = 1 << 30;

pub use crate::infer::{sample, SampleOptions};

/// How a [`Gpt::forward_with`] runs, beyond its tokens.
pub struct GptPass<'a> {
    /// The position of the first token (0 but when feeding a cache one step at a time).
    pub pos0: usize,
    /// One key/value cache per block, to append this call's keys and values to.
    pub caches: Option<&'a mut [KvCache]>,
    /// Logits of the last position only (`[B, 1, vocab]`): the last block, the final norm
    /// and the output projection run on that row alone.
    pub last_only: bool,
    /// Where the products take their weights: the layers' own ([`AsTrained`]) or packed.
    pub weights: &'a dyn LinearWeights,
}

impl Default for GptPass<'_> {
    /// Every position from 0, no cache, the layers' own weights.
    fn default() -> Self {
        GptPass {
            pos0: 0,
            caches: None,
            last_only: false,
            weights: &AsTrained,
        }
    }
}

/// The character-level GPT, its tensors named as nanoGPT's (`transformer.wte.weight`, …).
#[derive(Module)]
pub struct Gpt {
    /// The model's size.
    pub config: GptConfig,
    /// `[vocab, n_embd]`, also the output projection.
    #[module(rename = "transformer.wte.weight")]
    pub wte: Tensor,
    /// `[block_size, n_embd]`
    #[module(rename = "transformer.wpe.weight")]
    pub wpe: Tensor,
    #[module(rename = "transformer.h")]
    /// The transformer blocks (`transformer.h.0`, ...).
    pub h: Vec<Block>,
    #[module(rename = "transformer.ln_f")]
    /// The final layer norm (`transformer.ln_f`).
    pub ln_f: LayerNorm,
    /// The tie: the same tensor as `wte`, listed last as the buffer `lm_head.weight` for
    /// checkpoints only (not counted or optimized twice).
    #[module(buffer, rename = "lm_head.weight")]
    lm_head: Tensor,
}

/// Configuration: registers nothing.
impl Visit for GptConfig {}

impl Gpt {
    /// A model with nanoGPT's initialization from the thread's RNG.
    pub fn new(config: GptConfig) -> Gpt {
        config.validate().expect("Gpt::new: bad configuration");
        let c = config;
        let wte = Tensor::zeros(&[c.vocab, c.n_embd]).requires_grad_();
        let m = Gpt {
            config,
            lm_head: wte.clone(),
            wte,
            wpe: Tensor::zeros(&[c.block_size, c.n_embd]).requires_grad_(),
            h: (0..c.n_layer)
                .map(|_| Block::new(c.n_embd, c.n_head, 4 * c.n_embd, true))
                .collect(),
            ln_f: LayerNorm::new(c.n_embd),
        };
        gpt_style_init(&m, c.n_layer, &[]);
        m
    }

    /// Logits `[B, T, vocab]` of the tokens `ids` (`B * T` of them, row-major `[B, T]`).
    pub fn forward_tokens(&self, ids: &[usize], b: usize, t: usize) -> Tensor {
        self.forward_with(ids, b, t, GptPass::default())
    }

    /// Logits `[B, T, vocab]` (`[B, 1, vocab]` with `last_only`) of `ids [B, T]` at
    /// positions `pos0..pos0 + T`, appending keys and values to the caches when given:
    /// the one forward of training, evaluation and sampling.
    pub fn forward_with(&self, ids: &[usize], b: usize, t: usize, pass: GptPass) -> Tensor {
        let GptPass {
            pos0,
            mut caches,
            last_only,
            weights,
        } = pass;
        assert!(
            pos0 + t <= self.config.block_size && t > 0,
            "gpt: positions {pos0}..{} do not fit block_size {}",
            pos0 + t,
            self.config.block_size
        );
        assert!(
            ids.iter().all(|&i| i < self.config.vocab),
            "gpt: token id beyond vocab {}",
            self.config.vocab
        );
        let pos: Vec<usize> = (pos0..pos0 + t).collect();
        // [B, T, C] + [T, C]
        let mut x = self
            .wte
            .embedding(ids, &[b, t])
            .add(&self.wpe.embedding(&pos, &[t]));
        let n = self.h.len();
        for (i, block) in self.h.iter().enumerate() {
            let cache = caches.as_deref_mut().map(|c| &mut c[i]);
            x = block
                .forward_with(&x, cache, last_only && i + 1 == n, weights)
                .0;
        }
        // [B, T, vocab]: the tied output projection x · wteᵀ
        weights.linear_of(&self.ln_f.forward(&x), &self.wte, None, false)
    }

    /// Mean cross-entropy of predicting `targets` from `ids`, both `[B, T]`.
    pub fn loss(&self, ids: &[usize], targets: &[usize], b: usize, t: usize) -> Tensor {
        let logits = self.forward_tokens(ids, b, t);
        logits
            .reshape(&[b * t, self.config.vocab])
            .cross_entropy(targets)
    }

    /// Copies a checkpoint's tensors in strictly; a missing `lm_head.weight` is read as tied.
    pub fn load(&self, state: &[(String, Tensor)]) -> Result<()> {
        let mut state = state.to_vec();
        if !state.iter().any(|(n, _)| n == "lm_head.weight") {
            if let Some((_, w)) = state.iter().find(|(n, _)| n == "transformer.wte.weight") {
                state.push(("lm_head.weight".into(), w.clone()));
            }
        }
        // lm_head.weight is visited last and is the same tensor as wte: load wte's values
        // last so that the embedding wins.
        self.load_state_dict(&state)?;
        if let Some((_, w)) = state.iter().find(|(n, _)| n == "transformer.wte.weight") {
            self.wte.copy_from(w);
        }
        Ok(())
    }

    /// Samples `n` tokens after `prompt` (non-empty), calling `on_token` with each as it is
    /// drawn, and returns them: [`crate::infer::GptPlan::generate`] with this model's
    /// weights packed once.
    pub fn generate(
        &self,
        prompt: &[usize],
        n: usize,
        opts: SampleOptions,
        on_token: &mut (dyn FnMut(usize) + Send),
    ) -> Vec<usize> {
        crate::infer::GptPlan::new(self).generate(prompt, n, opts, on_token)
    }
}

impl Module for Gpt {
    /// Token ids as a `[B, T]` tensor of whole numbers -> logits `[B, T, vocab]`.
    fn forward(&self, x: &Tensor) -> Tensor {
        assert!(
            x.rank() == 2,
            "gpt: input must be token ids [B, T], got {:?}",
            x.shape()
        );
        let ids: Vec<usize> = x.to_vec().iter().map(|&v| v as usize).collect();
        self.forward_tokens(&ids, x.dim(0), x.dim(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Adam, AdamConfig, Optimizer};
    use crate::tensor::rng::manual_seed;

    fn tiny() -> Gpt {
        Gpt::new(GptConfig {
            vocab: 256,
            block_size: 16,
            n_layer: 2,
            n_head: 2,
            n_embd: 16,
        })
    }

    #[test]
    fn checkpoint_configs_are_checked_naming_the_file_and_key() {
        let c = GptConfig {
            vocab: 16,
            block_size: 4,
            n_layer: 1,
            n_head: 2,
            n_embd: 8,
        };
        let good = || {
            let m = Gpt::new(c);
            let mut ck = Checkpoint::new(m.state_dict());
            ck.metadata.insert("model".into(), "gpt".into());
            ck.metadata.extend(c.to_metadata());
            ck
        };
        assert_eq!(GptConfig::from_checkpoint(&good(), "f").unwrap(), c);
        let err = |edit: &dyn Fn(&mut Checkpoint)| {
            let mut ck = good();
            edit(&mut ck);
            GptConfig::from_checkpoint(&ck, "g.safetensors")
                .unwrap_err()
                .to_string()
        };
        let set = |name: &'static str, t: Tensor| {
            move |ck: &mut Checkpoint| {
                for (n, v) in ck.tensors.iter_mut() {
                    if n == name {
                        *v = t.clone();
                    }
                }
            }
        };
        let e = err(&|ck| {
            ck.metadata.insert("gpt.n_head".into(), "0".into());
        });
        assert_eq!(
            e,
            "g.safetensors: metadata gpt.n_head must be at least 1, got 0"
        );
        let e = err(&|ck| {
            ck.metadata.insert("gpt.n_head".into(), "3".into());
        });
        assert!(e.contains("metadata gpt.n_head 3 must divide"), "{e}");
        let e = err(&|ck| {
            ck.metadata.insert("model".into(), "resnet20".into());
        });
        assert_eq!(
            e,
            "g.safetensors holds weights of a resnet20, not of a gpt; give a file written by \
             `neurite lm train`"
        );
        let e = err(&set(
            "transformer.wte.weight",
            Tensor::from_vec(vec![0.0; 128], &[128]),
        ));
        assert!(e.contains("transformer.wte.weight has shape [128]"), "{e}");
        let e = err(&set(
            "transformer.wpe.weight",
            Tensor::from_vec(vec![], &[0, 8]),
        ));
        assert!(
            e.contains("transformer.wpe.weight's rows (block_size) must be at least 1"),
            "{e}"
        );
        let e = err(&|ck| {
            ck.metadata.insert("gpt.n_layer".into(), "2".into());
        });
        assert!(e.contains("metadata gpt.n_layer is 2"), "{e}");
        let flags = GptConfig { n_head: 0, ..c }
            .validate()
            .unwrap_err()
            .to_string();
        assert_eq!(flags, "--n-head must be at least 1, got 0");
        let huge = GptConfig {
            n_layer: 1000,
            n_embd: 16_384,
            ..c
        };
        assert!(huge
            .validate()
            .unwrap_err()
            .to_string()
            .contains("parameters"));
    }

    #[test]
    fn parameter_count_and_names_follow_the_spec() {
        let m = Gpt::new(GptConfig::default());
        assert_eq!(m.num_parameters(), 842_496);
        let names: Vec<String> = m.state_dict().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 2 + 4 * 12 + 2 + 1);
        for n in [
            "transformer.wte.weight",
            "transformer.wpe.weight",
            "transformer.h.0.ln_1.weight",
            "transformer.h.0.attn.c_attn.weight",
            "transformer.h.0.attn.c_attn.bias",
            "transformer.h.3.attn.c_proj.bias",
            "transformer.h.3.ln_2.bias",
            "transformer.h.3.mlp.c_fc.weight",
            "transformer.h.3.mlp.c_proj.weight",
            "transformer.ln_f.weight",
            "transformer.ln_f.bias",
            "lm_head.weight",
        ] {
            assert!(names.iter().any(|x| x == n), "missing {n}");
        }
    }

    #[test]
    fn forward_gives_logits_per_position() {
        let m = tiny();
        let ids: Vec<usize> = (0..2 * 7).map(|i| i * 17 % 256).collect();
        assert_eq!(m.forward_tokens(&ids, 2, 7).shape(), &[2, 7, 256]);
        let l = m.loss(&ids, &ids, 2, 7).item();
        // near log(256) at initialization
        assert!((l - 256f32.ln()).abs() < 0.3, "{l}");
    }

    #[test]
    fn tied_embedding_gets_both_gradients() {
        let m = tiny();
        let ids = [3usize, 5, 3, 9];
        m.loss(&ids, &[5, 3, 9, 1], 1, 4).backward().unwrap();
        let g = m.wte.grad().unwrap().to_vec();
        // row 200 is never looked up: only the output projection contributes to it
        assert!(g[200 * 16..201 * 16].iter().any(|&x| x.abs() > 0.0));
        // the same loss with an untied copy of the head gives only the head's part
        let head = m.wte.detach().to_vec();
        let head = Tensor::from_vec(head, &[256, 16]).requires_grad_();
        m.zero_grad();
        let x0 = m
            .wte
            .embedding(&ids, &[1, 4])
            .add(&m.wpe.embedding(&[0, 1, 2, 3], &[4]));
        let mut x = x0;
        for b in &m.h {
            x = b.forward(&x);
        }
        let logits = m.ln_f.forward(&x).linear(&head, None);
        logits
            .reshape(&[4, 256])
            .cross_entropy(&[5, 3, 9, 1])
            .backward()
            .unwrap();
        let (ge, gh) = (
            m.wte.grad().unwrap().to_vec(),
            head.grad().unwrap().to_vec(),
        );
        for i in 0..g.len() {
            assert!((g[i] - (ge[i] + gh[i])).abs() < 1e-6, "element {i}");
        }
    }

    #[test]
    fn state_dict_round_trip_and_missing_head_is_tied() {
        let a = tiny();
        let b = tiny();
        let mut state = a.state_dict();
        state.retain(|(n, _)| n != "lm_head.weight");
        b.load(&state).unwrap();
        assert_eq!(b.wte.to_vec(), a.wte.to_vec());
        let ids = [1usize, 2, 3];
        assert_eq!(
            a.forward_tokens(&ids, 1, 3).to_vec(),
            b.forward_tokens(&ids, 1, 3).to_vec()
        );
    }

    #[test]
    fn tiny_gpt_overfits_a_repeated_string() {
        manual_seed(0);
        let m = tiny();
        let text: Vec<usize> = b"hello world! "
            .repeat(8)
            .iter()
            .map(|&c| c as usize)
            .collect();
        let (b, t) = (4, 12);
        let mut opt = Adam::new(m.named_parameters(), AdamConfig::adamw(1e-2));
        let mut last = f32::MAX;
        for step in 0..80 {
            let mut ids = Vec::new();
            let mut tg = Vec::new();
            for r in 0..b {
                let s = (step * 5 + r * 7) % (text.len() - t - 1);
                ids.extend_from_slice(&text[s..s + t]);
                tg.extend_from_slice(&text[s + 1..s + t + 1]);
            }
            m.zero_grad();
            let loss = m.loss(&ids, &tg, b, t);
            last = loss.item();
            loss.backward().unwrap();
            opt.step();
        }
        assert!(last < 0.5, "loss after 80 steps: {last}");
    }

    /// Times the parts of a training step of the benchmark's shape (16 x 128 tokens): `cargo test --lib gpt_step_timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn gpt_step_timing() {
        use std::time::Instant;
        let m = Gpt::new(GptConfig::default());
        let mut opt = Adam::new(m.named_parameters(), AdamConfig::adamw(3e-4));
        let ids: Vec<usize> = (0..16 * 128).map(|i| i * 7 % 256).collect();
        for _ in 0..3 {
            let t0 = Instant::now();
            m.zero_grad();
            let loss = m.loss(&ids, &ids, 16, 128);
            let t1 = Instant::now();
            loss.backward().unwrap();
            let t2 = Instant::now();
            opt.step();
            let t3 = Instant::now();
            eprintln!(
                "forward {:?} backward {:?} adamw {:?} -> {:.0} tokens/s",
                t1 - t0,
                t2 - t1,
                t3 - t2,
                2048.0 / (t3 - t0).as_secs_f64()
            );
        }
    }
}
