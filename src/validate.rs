//! Checks of the numbers and files a user gives: every check returns one error that names
//! the flag (or the file and its metadata key) and says what would be accepted, so that
//! nonsense is refused before any work starts instead of being run, or panicking, later.
//!
//! The number checks take the name to print (`--lr`, or `run/checkpoint.safetensors:
//! metadata train.lr`), so the same check serves flags and checkpoint metadata.

use crate::checkpoint::Checkpoint;
use crate::tensor::Tensor;
use anyhow::{bail, Result};
use std::fmt::Display;

/// The largest size any count flag may take (batch sizes, block sizes, widths): far above
/// what fits in memory for the zoo models, far below where `usize` arithmetic overflows.
pub const MAX_SIZE: usize = 1 << 20;

/// `v` is a finite number above 0.
pub fn positive<T: Into<f64> + Copy + Display>(name: &str, v: T) -> Result<()> {
    let x: f64 = v.into();
    if !(x.is_finite() && x > 0.0) {
        bail!("{name} must be a finite number above 0, got {v}");
    }
    Ok(())
}

/// `v` is a finite number, 0 or above.
pub fn non_negative<T: Into<f64> + Copy + Display>(name: &str, v: T) -> Result<()> {
    let x: f64 = v.into();
    if !(x.is_finite() && x >= 0.0) {
        bail!("{name} must be a finite number, 0 or above, got {v}");
    }
    Ok(())
}

/// `v` is a finite number.
pub fn finite<T: Into<f64> + Copy + Display>(name: &str, v: T) -> Result<()> {
    let x: f64 = v.into();
    if !x.is_finite() {
        bail!("{name} must be a finite number, got {v}");
    }
    Ok(())
}

/// `v` lies in `min..=max`.
pub fn count(name: &str, v: usize, min: usize, max: usize) -> Result<()> {
    if v < min {
        bail!("{name} must be at least {min}, got {v}");
    }
    if v > max {
        bail!("{name} must be at most {max}, got {v}");
    }
    Ok(())
}

/// Errors when `--limit-train n` asks for more images than the training split holds
/// (it would silently train on fewer).
pub fn check_limit(limit: Option<usize>, available: usize) -> Result<()> {
    match limit {
        Some(0) => bail!("--limit-train must be at least 1"),
        Some(n) if n > available => bail!(
            "--limit-train {n} is more than the {available} training images; give at most \
             {available}, or leave it out to use them all"
        ),
        _ => Ok(()),
    }
}

/// The first non-finite value among `tensors`: an error naming `source` and the tensor.
pub fn check_finite_tensors<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
    source: &str,
) -> Result<()> {
    for (name, t) in tensors {
        let first = t.with_slice(|s| s.iter().copied().enumerate().find(|(_, v)| !v.is_finite()));
        if let Some((i, v)) = first {
            bail!(
                "{source}: tensor {name} holds {v} at element {i} of {}: the weights are \
                 broken (a diverged run?); use a checkpoint from before the divergence or \
                 train again",
                t.numel()
            );
        }
    }
    Ok(())
}

impl Checkpoint {
    /// An error naming `source` and the first tensor (in file order) holding a NaN or an
    /// infinity: such weights give NaN scores, which must not pass for a result.
    pub fn check_finite(&self, source: &str) -> Result<()> {
        check_finite_tensors(self.tensors.iter().map(|(n, t)| (n.as_str(), t)), source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_name_the_flag_and_the_value() {
        assert!(positive("--lr", 0.1f32).is_ok());
        let e = positive("--lr", f64::NEG_INFINITY).unwrap_err().to_string();
        assert_eq!(e, "--lr must be a finite number above 0, got -inf");
        assert!(positive("--lr", 0.0).is_err());
        assert!(non_negative("--alpha", 0.0).is_ok());
        assert!(non_negative("--alpha", f64::NAN)
            .unwrap_err()
            .to_string()
            .contains("got NaN"));
        assert!(finite("--coef0", -3.0).is_ok());
        assert!(finite("--coef0", f64::INFINITY).is_err());
        assert_eq!(
            count("--degree", 11, 1, 10).unwrap_err().to_string(),
            "--degree must be at most 10, got 11"
        );
        assert!(count("--degree", 0, 1, 10).is_err());
    }

    #[test]
    fn check_finite_names_the_first_broken_tensor() {
        let good = Tensor::from_vec(vec![1.0, 2.0], &[2]);
        let bad = Tensor::from_vec(vec![0.5, f32::NAN, f32::INFINITY], &[3]);
        let ck = Checkpoint::new(vec![("a".into(), good.clone()), ("b".into(), bad)]);
        let e = ck.check_finite("m.safetensors").unwrap_err().to_string();
        assert!(
            e.starts_with("m.safetensors: tensor b holds NaN at element 1 of 3"),
            "{e}"
        );
        assert!(Checkpoint::new(vec![("a".into(), good)])
            .check_finite("x")
            .is_ok());
    }
}
