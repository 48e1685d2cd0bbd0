//! Drawing the next token from a model's logits.

use rand::rngs::StdRng;
use rand::Rng;

/// How [`super::GptPlan::generate`] draws tokens.
#[derive(Clone, Copy, Debug)]
pub struct SampleOptions {
    /// Logits are divided by it; 0 or less picks the most likely byte.
    pub temperature: f32,
    /// Keep only the `k` most likely bytes.
    pub top_k: Option<usize>,
    /// Seed of the sampling generator (the same seed gives the same text).
    pub seed: u64,
    /// Feed one position per step through key/value caches (else re-run the context).
    pub use_cache: bool,
}

/// Draws an index from `softmax(logits / temperature)` restricted to the `top_k` largest.
pub fn sample(logits: &[f32], temperature: f32, top_k: Option<usize>, rng: &mut StdRng) -> usize {
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &x)| if x > b.1 { (i, x) } else { b },
            )
            .0
    };
    if temperature <= 0.0 {
        return argmax(logits);
    }
    let mut z: Vec<f32> = logits.iter().map(|&l| l / temperature).collect();
    if let Some(k) = top_k.filter(|&k| k > 0 && k < z.len()) {
        let mut sorted = z.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[k - 1];
        for v in &mut z {
            if *v < kth {
                *v = f32::NEG_INFINITY;
            }
        }
    }
    let max = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let p: Vec<f64> = z.iter().map(|&v| ((v - max) as f64).exp()).collect();
    let total: f64 = p.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (i, &pi) in p.iter().enumerate() {
        if u < pi {
            return i;
        }
        u -= pi;
    }
    argmax(&z)
}
