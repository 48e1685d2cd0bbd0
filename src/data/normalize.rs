//! Per-channel input normalization, `x = (x - mean) / std` on pixels scaled to `[0, 1]`,
//! with the constants of the training set, and their checkpoint-metadata form
//! (`normalize.mean` / `normalize.std`, comma-separated per channel).

use super::image_source::ImageSource;
use super::mnist::ImageDataset;
use crate::checkpoint::Metadata;
use anyhow::{bail, Context, Result};

/// The metadata key of the per-channel means.
pub const MEAN_KEY: &str = "normalize.mean";
/// The metadata key of the per-channel standard deviations.
pub const STD_KEY: &str = "normalize.std";

/// Per-channel mean and standard deviation of pixels scaled to `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// One mean per channel.
    pub mean: Vec<f32>,
    /// One standard deviation per channel, each positive.
    pub std: Vec<f32>,
}

impl Normalization {
    /// The mean and population standard deviation of each channel over all pixels of
    /// `train` (what `x.mean()`, `x.std()` give in PyTorch, up to Bessel's correction,
    /// which is below 1e-7 at this size). A constant channel gets std 1.
    pub fn from_dataset(train: &ImageDataset) -> Self {
        // A histogram of byte values per channel makes the statistics exact (no
        // rounding from summing 47 million floats) and the pass a cheap count.
        let plane = train.height * train.width;
        let mut hist = vec![[0u64; 256]; train.channels];
        for image in train.images.chunks_exact(train.image_len().max(1)) {
            for (c, pixels) in image.chunks_exact(plane).enumerate() {
                for &p in pixels {
                    hist[c][p as usize] += 1;
                }
            }
        }
        Self::from_histograms(&hist)
    }

    /// The statistics of per-channel histograms of byte values.
    fn from_histograms(hist: &[[u64; 256]]) -> Self {
        let mut mean = Vec::with_capacity(hist.len());
        let mut std = Vec::with_capacity(hist.len());
        for h in hist {
            let count: u64 = h.iter().sum();
            let count = count.max(1) as f64;
            let m = h
                .iter()
                .enumerate()
                .map(|(v, &k)| v as f64 * k as f64)
                .sum::<f64>()
                / count;
            let var = h
                .iter()
                .enumerate()
                .map(|(v, &k)| (v as f64 - m).powi(2) * k as f64)
                .sum::<f64>()
                / count;
            let s = var.sqrt() / 255.0;
            mean.push((m / 255.0) as f32);
            std.push(if s > 0.0 { s as f32 } else { 1.0 });
        }
        Normalization { mean, std }
    }

    /// The statistics of [`Normalization::from_dataset`] over the images of any source
    /// (read one by one: a lazily decoded source is decoded once here).
    pub fn from_source(train: &dyn ImageSource) -> Result<Self> {
        let [c, h, w] = train.shape();
        let mut hist = vec![[0u64; 256]; c];
        let mut image = vec![0u8; c * h * w];
        for i in 0..train.len() {
            train.read(i, &mut image)?;
            for (ch, pixels) in image.chunks_exact((h * w).max(1)).enumerate() {
                for &p in pixels {
                    hist[ch][p as usize] += 1;
                }
            }
        }
        Ok(Self::from_histograms(&hist))
    }

    /// Mean 0 and std 1 for `channels` channels: leaves the pixels unchanged.
    pub fn identity(channels: usize) -> Self {
        Normalization {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// The number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Normalizes one image in place, `[C, H, W]` with `C == self.channels()`.
    pub fn apply_image(&self, image: &mut [f32]) {
        let c = self.channels();
        assert!(
            c > 0 && image.len().is_multiple_of(c),
            "Normalization::apply_image: {} values do not split into {c} channels",
            image.len()
        );
        let plane = image.len() / c;
        for (ch, pixels) in image.chunks_exact_mut(plane).enumerate() {
            let (m, inv) = (self.mean[ch], 1.0 / self.std[ch]);
            for p in pixels {
                *p = (*p - m) * inv;
            }
        }
    }

    /// Normalizes a batch in place, `[B, C, H, W]` as `shape` says.
    pub fn apply(&self, batch: &mut [f32], shape: [usize; 4]) {
        let [b, c, h, w] = shape;
        assert!(
            c == self.channels() && batch.len() == b * c * h * w,
            "Normalization::apply: batch of {} values with shape {shape:?}, normalization of \
             {} channels",
            batch.len(),
            self.channels()
        );
        for image in batch.chunks_exact_mut((c * h * w).max(1)) {
            self.apply_image(image);
        }
    }

    /// The metadata entries `normalize.mean` and `normalize.std` (e.g. `"0.2860402"`).
    pub fn to_metadata(&self) -> [(String, String); 2] {
        let join = |v: &[f32]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        [
            (MEAN_KEY.to_string(), join(&self.mean)),
            (STD_KEY.to_string(), join(&self.std)),
        ]
    }

    /// Parses the comma-separated metadata strings; both must name the same number of
    /// channels, and every std must be positive and finite.
    pub fn from_metadata(mean: &str, std: &str) -> Result<Self> {
        let parse = |key: &str, s: &str| -> Result<Vec<f32>> {
            s.split(',')
                .map(|x| {
                    x.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .with_context(|| {
                            format!(
                                "metadata {key} = {s:?}: {:?} is not a finite number",
                                x.trim()
                            )
                        })
                })
                .collect()
        };
        let mean = parse(MEAN_KEY, mean)?;
        let std = parse(STD_KEY, std)?;
        if mean.len() != std.len() {
            bail!(
                "metadata {MEAN_KEY} has {} values but {STD_KEY} has {}: one each per channel",
                mean.len(),
                std.len()
            );
        }
        if let Some(s) = std.iter().find(|&&s| s <= 0.0) {
            bail!("metadata {STD_KEY} holds {s}: a standard deviation must be positive");
        }
        Ok(Normalization { mean, std })
    }

    /// Checks that this normalization fits images of `channels` channels (one mean and one
    /// std per channel), naming the metadata keys.
    pub fn check_channels(&self, channels: usize) -> Result<()> {
        if self.channels() != channels {
            bail!(
                "metadata {MEAN_KEY} and {STD_KEY} hold {} channels, but the images have {channels}",
                self.channels()
            );
        }
        Ok(())
    }

    /// The normalization stored in checkpoint metadata, `None` when neither key is there
    /// (a checkpoint exported from PyTorch); an error when only one is, or either is malformed.
    pub fn from_metadata_map(meta: &Metadata) -> Result<Option<Self>> {
        match (meta.get(MEAN_KEY), meta.get(STD_KEY)) {
            (None, None) => Ok(None),
            (Some(m), Some(s)) => Self::from_metadata(m, s).map(Some),
            _ => bail!("checkpoint metadata holds only one of {MEAN_KEY} and {STD_KEY}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(images: Vec<u8>, chw: [usize; 3]) -> ImageDataset {
        let n = images.len() / (chw[0] * chw[1] * chw[2]);
        ImageDataset::new(images, vec![0; n], chw, vec!["a".into()]).unwrap()
    }

    #[test]
    fn statistics_match_a_direct_computation() {
        // 3 images of 2 channels x 2 x 2.
        let images: Vec<u8> = (0..24).map(|i| (i * 37 % 256) as u8).collect();
        let ds = dataset(images.clone(), [2, 2, 2]);
        let norm = Normalization::from_dataset(&ds);
        for c in 0..2 {
            let vals: Vec<f64> = images
                .chunks(8)
                .flat_map(|img| img[c * 4..c * 4 + 4].to_vec())
                .map(|v| v as f64 / 255.0)
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64;
            assert!((norm.mean[c] as f64 - m).abs() < 1e-6);
            assert!((norm.std[c] as f64 - var.sqrt()).abs() < 1e-6);
        }
    }

    #[test]
    fn constant_channel_gets_unit_std() {
        let norm = Normalization::from_dataset(&dataset(vec![51; 8], [1, 2, 2]));
        assert_eq!(norm.mean, vec![0.2]);
        assert_eq!(norm.std, vec![1.0]);
    }

    #[test]
    fn apply_per_channel() {
        let norm = Normalization {
            mean: vec![0.5, 0.0],
            std: vec![0.25, 2.0],
        };
        // [B=2, C=2, H=1, W=2]
        let mut x = vec![0.5, 1.0, 2.0, 4.0, 0.0, 0.25, -2.0, 0.0];
        norm.apply(&mut x, [2, 2, 1, 2]);
        assert_eq!(x, vec![0.0, 2.0, 1.0, 2.0, -2.0, -1.0, -1.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "Normalization::apply")]
    fn apply_checks_channels() {
        Normalization::identity(3).apply(&mut [0.0; 4], [1, 1, 2, 2]);
    }

    #[test]
    fn metadata_round_trip() {
        let norm = Normalization {
            mean: vec![0.2860402, 0.5],
            std: vec![0.3530239, 1.0],
        };
        let [(mk, mv), (sk, sv)] = norm.to_metadata();
        assert_eq!(
            (mk.as_str(), sk.as_str()),
            ("normalize.mean", "normalize.std")
        );
        assert_eq!(mv, "0.2860402,0.5");
        assert_eq!(Normalization::from_metadata(&mv, &sv).unwrap(), norm);
        let map: Metadata = [(mk, mv), (sk, sv)].into_iter().collect();
        assert_eq!(Normalization::from_metadata_map(&map).unwrap(), Some(norm));
        assert_eq!(
            Normalization::from_metadata_map(&Metadata::new()).unwrap(),
            None
        );
    }

    #[test]
    fn metadata_errors() {
        let msg = Normalization::from_metadata("0.1, x", "1,1")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("\"x\" is not a finite number"), "{msg}");
        let msg = Normalization::from_metadata("0.1", "1,1")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("has 1 values but normalize.std has 2"),
            "{msg}"
        );
        let msg = Normalization::from_metadata("0.1", "0")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("must be positive"), "{msg}");
        let map: Metadata = [(MEAN_KEY.to_string(), "0.1".to_string())]
            .into_iter()
            .collect();
        assert!(Normalization::from_metadata_map(&map).is_err());
    }
}
