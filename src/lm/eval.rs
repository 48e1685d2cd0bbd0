//! The spec's validation loss of `gpt` on a text: the mean cross-entropy over consecutive
//! windows ([`crate::data::text::eval_windows`]).

use crate::autograd::no_grad;
use crate::data::text::eval_windows;
use crate::models::Gpt;
use anyhow::{bail, Result};

/// The mean cross-entropy (nats per byte) of `model` on `text` over [`eval_windows`],
/// `batch` windows at a time. A text shorter than one window is an error.
pub fn text_loss(model: &Gpt, text: &[u8], batch: usize) -> Result<f64> {
    let (total, count) = text_loss_sums(model, text, batch, 0, 1)?;
    Ok(total / count as f64)
}

/// The summed cross-entropy of the windows of every `world`-th batch from batch `rank`, and
/// the number of all windows (the ranks' sums add up to the whole text's).
pub(crate) fn text_loss_sums(
    model: &Gpt,
    text: &[u8],
    batch: usize,
    rank: usize,
    world: usize,
) -> Result<(f64, usize)> {
    let block = model.config.block_size;
    let starts = eval_windows(text.len(), block);
    if starts.is_empty() {
        bail!(
            "the text has {} bytes, shorter than one block of {} + 1",
            text.len(),
            block
        );
    }
    let mut total = 0.0f64;
    no_grad(|| {
        for chunk in starts.chunks(batch.max(1)).skip(rank).step_by(world) {
            let mut x = Vec::with_capacity(chunk.len() * block);
            let mut y = Vec::with_capacity(chunk.len() * block);
            for &s in chunk {
                x.extend(text[s..s + block].iter().map(|&b| b as usize));
                y.extend(text[s + 1..s + block + 1].iter().map(|&b| b as usize));
            }
            let l = model.loss(&x, &y, chunk.len(), block).item() as f64;
            total += l * chunk.len() as f64;
        }
    });
    Ok((total, starts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::GptConfig;

    #[test]
    fn text_loss_is_the_mean_over_predicted_bytes() {
        let m = Gpt::new(GptConfig {
            block_size: 4,
            n_layer: 1,
            n_head: 1,
            n_embd: 8,
            ..GptConfig::default()
        });
        let text = b"abcdefghijk"; // 11 bytes: windows at 0 and 4 (8..13 dropped)
        let l = text_loss(&m, text, 1).unwrap();
        let ids = |r: std::ops::Range<usize>| r.map(|i| text[i] as usize).collect::<Vec<_>>();
        let l0 = m.loss(&ids(0..4), &ids(1..5), 1, 4).item() as f64;
        let l1 = m.loss(&ids(4..8), &ids(5..9), 1, 4).item() as f64;
        assert!((l - (l0 + l1) / 2.0).abs() < 1e-5);
        assert!((text_loss(&m, text, 7).unwrap() - l).abs() < 1e-5);
        assert!(text_loss(&m, b"abcd", 1).is_err());
    }
}
