//! Seeded, switchable augmentations of one image `[C, H, W]` with pixels in `[0, 1]`
//! (applied before normalization, as torchvision's transforms are).
//!
//! Order: brightness, contrast, random crop, horizontal flip. Brightness and contrast
//! follow torchvision's `ColorJitter`: brightness multiplies by a factor drawn from
//! `[1 - b, 1 + b]`, contrast blends with the image's mean by a factor drawn from
//! `[1 - c, 1 + c]`, both clamped to `[0, 1]`. The crop pads `p` zero pixels on each side
//! and cuts an `H x W` window at a random offset (`RandomCrop(H, padding=p)`).

use anyhow::{bail, Context, Result};
use rand::Rng;
use std::fmt;
use std::str::FromStr;

/// Brightness strength when `brightness` is named without a value.
pub const DEFAULT_BRIGHTNESS: f32 = 0.2;
/// Contrast strength when `contrast` is named without a value.
pub const DEFAULT_CONTRAST: f32 = 0.2;
/// Crop padding when `crop` is named without a value (the Q3/Q4 recipe).
pub const DEFAULT_CROP_PADDING: usize = 2;

/// Which augmentations run, and how strong; `Augment::default()` runs none.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Augment {
    /// Brightness: multiply by a factor in `[1 - b, 1 + b]`; `None` = off.
    pub brightness: Option<f32>,
    /// Contrast: blend with the image mean by a factor in `[1 - c, 1 + c]`; `None` = off.
    pub contrast: Option<f32>,
    /// Random crop after padding this many zero pixels on each side; `None` = off.
    pub crop_padding: Option<usize>,
    /// Horizontal flip with probability 0.5.
    pub flip: bool,
}

impl Augment {
    /// No augmentation.
    pub fn none() -> Self {
        Self::default()
    }

    /// Random crop (pad 2) and horizontal flip: the recipe of the `resnet20` and `vit`
    /// quality workloads.
    pub fn crop_flip() -> Self {
        Augment {
            crop_padding: Some(DEFAULT_CROP_PADDING),
            flip: true,
            ..Self::default()
        }
    }

    /// Whether any augmentation is on.
    pub fn is_active(&self) -> bool {
        *self != Self::default()
    }

    /// Checks the augmentation against images of `h x w` pixels: a crop padding must be
    /// below the image size (a larger one shifts whole images out of view).
    pub fn check_image(&self, h: usize, w: usize) -> Result<()> {
        if let Some(pad) = self.crop_padding {
            let side = h.min(w);
            if pad >= side {
                bail!(
                    "--augment crop={pad}: the padding must be below the image size ({h}x{w} \
                     pixels); give crop={} or less (the recipe uses crop={DEFAULT_CROP_PADDING})",
                    side.saturating_sub(1)
                );
            }
        }
        Ok(())
    }

    /// Augments `image` (`[c, h, w]`, `c * h * w` values) in place with draws from `rng`;
    /// `scratch` is reused working memory.
    pub fn apply(
        &self,
        image: &mut [f32],
        [c, h, w]: [usize; 3],
        rng: &mut impl Rng,
        scratch: &mut Vec<f32>,
    ) {
        assert_eq!(
            image.len(),
            c * h * w,
            "Augment::apply: {} values for an image of shape [{c}, {h}, {w}]",
            image.len()
        );
        if let Some(b) = self.brightness {
            let f = rng.gen_range(1.0 - b..=1.0 + b).max(0.0);
            for p in image.iter_mut() {
                *p = (*p * f).clamp(0.0, 1.0);
            }
        }
        if let Some(k) = self.contrast {
            let f = rng.gen_range(1.0 - k..=1.0 + k).max(0.0);
            // torchvision blends with the mean of the grayscale image; for one channel
            // that is the image mean, for more we use the mean over all channels.
            let mean = image.iter().sum::<f32>() / image.len().max(1) as f32;
            for p in image.iter_mut() {
                *p = (mean + (*p - mean) * f).clamp(0.0, 1.0);
            }
        }
        if let Some(pad) = self.crop_padding {
            let dy = rng.gen_range(0..=2 * pad) as isize - pad as isize;
            let dx = rng.gen_range(0..=2 * pad) as isize - pad as isize;
            crop_shift(image, [c, h, w], dy, dx, scratch);
        }
        if self.flip && rng.gen_bool(0.5) {
            for row in image.chunks_exact_mut(w.max(1)) {
                row.reverse();
            }
        }
    }
}

/// `out[y][x] = in[y + dy][x + dx]`, zero outside the image: a crop at offset
/// `(dy + pad, dx + pad)` of the image padded by `pad` zeros.
fn crop_shift(image: &mut [f32], [c, h, w]: [usize; 3], dy: isize, dx: isize, tmp: &mut Vec<f32>) {
    if dy == 0 && dx == 0 {
        return;
    }
    tmp.clear();
    tmp.extend_from_slice(image);
    image.fill(0.0);
    // The rows and columns of the output that read inside the input.
    let (y0, y1) = ((-dy).max(0), (h as isize - dy).min(h as isize));
    let (x0, x1) = ((-dx).max(0), (w as isize - dx).min(w as isize));
    if y0 >= y1 || x0 >= x1 {
        return;
    }
    let (x0, x1) = (x0 as usize, x1 as usize);
    let sx = (x0 as isize + dx) as usize;
    for ch in 0..c {
        let plane = ch * h * w;
        for y in y0 as usize..y1 as usize {
            let sy = (y as isize + dy) as usize;
            let src = plane + sy * w + sx;
            image[plane + y * w + x0..plane + y * w + x1]
                .copy_from_slice(&tmp[src..src + (x1 - x0)]);
        }
    }
}

impl FromStr for Augment {
    type Err = anyhow::Error;

    /// Parses a comma list of `brightness[=b]`, `contrast[=c]`, `crop[=pad]`, `flip`, or
    /// `none` (also the empty string), e.g. `"crop,flip"`, `"brightness=0.3,contrast"`.
    fn from_str(s: &str) -> Result<Self> {
        let mut aug = Augment::none();
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(aug);
        }
        for item in s.split(',').map(str::trim) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (item, None),
            };
            let strength = |default: f32| -> Result<f32> {
                let Some(v) = value else { return Ok(default) };
                let x: f32 = v
                    .parse()
                    .with_context(|| format!("augmentation {item:?}: {v:?} is not a number"))?;
                if !(0.0..=1.0).contains(&x) {
                    bail!("augmentation {item:?}: the strength must lie in [0, 1]");
                }
                Ok(x)
            };
            match name.to_ascii_lowercase().as_str() {
                "brightness" => aug.brightness = Some(strength(DEFAULT_BRIGHTNESS)?),
                "contrast" => aug.contrast = Some(strength(DEFAULT_CONTRAST)?),
                "crop" => {
                    aug.crop_padding = Some(match value {
                        None => DEFAULT_CROP_PADDING,
                        Some(v) => v.parse().with_context(|| {
                            format!(
                                "augmentation {item:?}: the padding {v:?} is not a whole number"
                            )
                        })?,
                    })
                }
                "flip" | "hflip" if value.is_none() => aug.flip = true,
                "flip" | "hflip" => bail!("augmentation {item:?}: flip takes no value"),
                "none" => bail!("\"none\" cannot be combined with other augmentations"),
                _ => bail!(
                    "unknown augmentation {name:?}; known: brightness[=b], contrast[=c], \
                     crop[=pad], flip, or none (e.g. --augment crop,flip)"
                ),
            }
        }
        Ok(aug)
    }
}

impl fmt::Display for Augment {
    /// The comma list [`FromStr`] reads back (`none` when nothing is on).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(b) = self.brightness {
            parts.push(format!("brightness={b}"));
        }
        if let Some(c) = self.contrast {
            parts.push(format!("contrast={c}"));
        }
        if let Some(p) = self.crop_padding {
            parts.push(format!("crop={p}"));
        }
        if self.flip {
            parts.push("flip".to_string());
        }
        if parts.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", parts.join(","))
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn crop_padding_must_be_below_the_image_size() {
        let crop = |p| Augment {
            crop_padding: Some(p),
            ..Augment::none()
        };
        crop(27).check_image(28, 28).unwrap();
        let e = crop(28).check_image(28, 28).unwrap_err().to_string();
        assert!(
            e.starts_with("--augment crop=28: the padding must be below"),
            "{e}"
        );
        assert!(e.contains("crop=27"));
        Augment::none().check_image(1, 1).unwrap();
    }

    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// `[C=2, H=3, W=4]`, values 0.0, 0.01, ... distinct.
    fn image() -> Vec<f32> {
        (0..24).map(|i| i as f32 / 100.0).collect()
    }

    /// Reference crop: pad explicitly, then cut the window at `(oy, ox)`.
    fn crop_reference(
        img: &[f32],
        [c, h, w]: [usize; 3],
        pad: usize,
        oy: usize,
        ox: usize,
    ) -> Vec<f32> {
        let (hp, wp) = (h + 2 * pad, w + 2 * pad);
        let mut padded = vec![0.0; c * hp * wp];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    padded[ch * hp * wp + (y + pad) * wp + x + pad] = img[ch * h * w + y * w + x];
                }
            }
        }
        let mut out = Vec::new();
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    out.push(padded[ch * hp * wp + (y + oy) * wp + x + ox]);
                }
            }
        }
        out
    }

    #[test]
    fn crop_matches_pad_then_cut_at_every_offset() {
        let shape = [2, 3, 4];
        for pad in [1usize, 2, 5] {
            for oy in 0..=2 * pad {
                for ox in 0..=2 * pad {
                    let mut img = image();
                    let (dy, dx) = (oy as isize - pad as isize, ox as isize - pad as isize);
                    crop_shift(&mut img, shape, dy, dx, &mut Vec::new());
                    assert_eq!(
                        img,
                        crop_reference(&image(), shape, pad, oy, ox),
                        "pad {pad} at ({oy}, {ox})"
                    );
                }
            }
        }
    }

    #[test]
    fn flip_reverses_rows_and_is_seeded() {
        let aug = Augment {
            flip: true,
            ..Augment::none()
        };
        let mut flipped = 0;
        for seed in 0..40 {
            let mut img = image();
            aug.apply(
                &mut img,
                [2, 3, 4],
                &mut StdRng::seed_from_u64(seed),
                &mut Vec::new(),
            );
            if img != image() {
                flipped += 1;
                assert_eq!(img[..4], [0.03, 0.02, 0.01, 0.0]);
                assert_eq!(img[20..], [0.23, 0.22, 0.21, 0.20]);
            }
            let mut again = image();
            aug.apply(
                &mut again,
                [2, 3, 4],
                &mut StdRng::seed_from_u64(seed),
                &mut Vec::new(),
            );
            assert_eq!(img, again);
        }
        assert!((10..=30).contains(&flipped), "{flipped} flips of 40");
    }

    #[test]
    fn brightness_and_contrast_stay_in_range_and_change_pixels() {
        let aug: Augment = "brightness=0.5,contrast=0.5".parse().unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let mut changed = false;
        for _ in 0..10 {
            let mut img: Vec<f32> = (0..24).map(|i| i as f32 / 23.0).collect();
            aug.apply(&mut img, [2, 3, 4], &mut rng, &mut Vec::new());
            assert!(img.iter().all(|p| (0.0..=1.0).contains(p)));
            changed |= (img[5] - 5.0 / 23.0).abs() > 1e-3;
        }
        assert!(changed);
    }

    #[test]
    fn contrast_keeps_the_mean_when_nothing_clamps() {
        let aug = Augment {
            contrast: Some(0.3),
            ..Augment::none()
        };
        let mut img: Vec<f32> = (0..16).map(|i| 0.4 + i as f32 / 100.0).collect();
        let before = img.iter().sum::<f32>();
        aug.apply(
            &mut img,
            [1, 4, 4],
            &mut StdRng::seed_from_u64(1),
            &mut Vec::new(),
        );
        assert!((img.iter().sum::<f32>() - before).abs() < 1e-4);
    }

    #[test]
    fn parses_lists_and_rejects_unknown_names() {
        assert_eq!("none".parse::<Augment>().unwrap(), Augment::none());
        assert_eq!("".parse::<Augment>().unwrap(), Augment::none());
        assert_eq!(
            "crop,flip".parse::<Augment>().unwrap(),
            Augment::crop_flip()
        );
        let a: Augment = " brightness , contrast=0.1, crop=4 ".parse().unwrap();
        assert_eq!(a.brightness, Some(DEFAULT_BRIGHTNESS));
        assert_eq!(a.contrast, Some(0.1));
        assert_eq!(a.crop_padding, Some(4));
        assert!(!a.flip);
        assert_eq!(a.to_string().parse::<Augment>().unwrap(), a);
        assert_eq!(Augment::none().to_string(), "none");

        let msg = "crop,rotate".parse::<Augment>().unwrap_err().to_string();
        assert!(msg.contains("unknown augmentation \"rotate\""), "{msg}");
        assert!(msg.contains("crop[=pad], flip"), "{msg}");
        let msg = format!("{:#}", "crop=x".parse::<Augment>().unwrap_err());
        assert!(msg.contains("not a whole number"), "{msg}");
        let msg = "brightness=2".parse::<Augment>().unwrap_err().to_string();
        assert!(msg.contains("[0, 1]"), "{msg}");
        assert!("none,flip".parse::<Augment>().is_err());
    }
}
