//! Reading one image file: the size guard, decoding (PNG or JPEG, told apart by content),
//! the conversion to 1 or 3 channels, and the resize to the model's input — the whole
//! preprocessing of an image, shared by training on a folder and by `neurite predict`.
//!
//! Conversion (decoded pixels to bytes `[C, H, W]`):
//! - transparency is composited over **white** (`v = c * a + 255 * (1 - a)`, rounded): a
//!   transparent image then looks as an image viewer shows it, and `neurite predict` has
//!   always done so. (Pillow's `convert("RGB")`, which torchvision's `ImageFolder` calls,
//!   drops the alpha channel instead and shows whatever colour the transparent pixels hold;
//!   the two agree on every opaque pixel.)
//! - 1 channel is Pillow's `"L"`: `L = (19595 R + 38470 G + 7471 B + 2^15) >> 16`, i.e.
//!   ITU-R 601 luma `0.299 R + 0.587 G + 0.114 B` rounded; a gray image keeps its bytes.
//! - 3 channels are R, G, B; a gray image repeats its gray level in all three.
//! - 16-bit images are brought to 8 bits by the `image` crate (`v * 255 / 65535`, rounded).
//!
//! Then [`resize_bilinear`] brings the image to `H x W` (stretching: the aspect ratio is not
//! kept, as `transforms.Resize((H, W))`).

use super::resize::resize_bilinear;
use anyhow::{bail, Context, Result};
use image::DynamicImage;
use std::io::{BufRead, Seek, SeekFrom};
use std::path::Path;

/// The most pixels (width times height) an input image may have: 50 megapixels.
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;

/// The most bytes the image decoder may allocate at once: 512 MiB (a 50-megapixel RGBA image
/// with 16-bit channels takes 400 MB).
pub const MAX_DECODE_BYTES: u64 = 512 << 20;

/// Reads an image file, by its content (not its extension).
pub fn read_image(path: &Path) -> Result<DynamicImage> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    decode_image(std::io::BufReader::new(file), &path.display().to_string())
}

/// Decodes a PNG or JPEG image (told apart by its content) of at most [`MAX_IMAGE_PIXELS`]
/// pixels; `name` names it in errors. The size is checked from the header, before decoding.
pub fn decode_image<R: BufRead + Seek>(mut reader: R, name: &str) -> Result<DynamicImage> {
    let not_an_image =
        |e: image::ImageError| anyhow::anyhow!("{name} is not a PNG or JPEG image ({e})");
    let (w, h) = image::ImageReader::new(&mut reader)
        .with_guessed_format()
        .with_context(|| format!("cannot read {name}"))?
        .into_dimensions()
        .map_err(not_an_image)?;
    check_pixels(w, h, name)?;
    reader
        .seek(SeekFrom::Start(0))
        .with_context(|| format!("cannot read {name}"))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut decoder = image::ImageReader::new(reader)
        .with_guessed_format()
        .with_context(|| format!("cannot read {name}"))?;
    decoder.limits(limits);
    let img = decoder.decode().map_err(not_an_image)?;
    if (img.width(), img.height()) != (w, h) {
        bail!(
            "{name}: its header says {w} x {h} pixels but it decodes to {} x {}; the file is \
             corrupt",
            img.width(),
            img.height()
        );
    }
    Ok(img)
}

/// Refuses an image of no pixels or of more than [`MAX_IMAGE_PIXELS`].
fn check_pixels(w: u32, h: u32, name: &str) -> Result<()> {
    let pixels = w as u64 * h as u64;
    if pixels > MAX_IMAGE_PIXELS {
        bail!(
            "{name} is a {w} x {h} image ({:.1} megapixels); neurite reads images of at most {} \
             megapixels: scale it down first (the model sees far fewer pixels)",
            pixels as f64 / 1e6,
            MAX_IMAGE_PIXELS / 1_000_000
        );
    }
    if pixels == 0 {
        bail!("{name} is a {w} x {h} image, with no pixels");
    }
    Ok(())
}

/// What an image file's header says, read without decoding its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Whether the pixels have colour (RGB, RGBA, or a palette, which the PNG decoder
    /// expands to RGB); gray and gray with alpha are not colour.
    pub colour: bool,
}

/// Reads the header of an image file: its size and whether it is in colour. Refuses a file
/// that is not a PNG or JPEG image, or is too large.
pub fn read_header(path: &Path) -> Result<ImageHeader> {
    use image::ImageDecoder;
    let name = path.display().to_string();
    let decoder = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {name}"))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {name}"))?
        .into_decoder()
        .map_err(|e| anyhow::anyhow!("{name} is not a PNG or JPEG image ({e})"))?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, &name)?;
    Ok(ImageHeader {
        width: w as usize,
        height: h as usize,
        colour: decoder.color_type().has_color(),
    })
}

/// Pillow's `"L"` of an RGB pixel: ITU-R 601 luma in 16-bit fixed point, rounded.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// `c` over white with opacity `a` (both 0 to 255), rounded.
fn over_white(c: u8, a: u8) -> u8 {
    ((c as u32 * a as u32 + 255 * (255 - a as u32) + 127) / 255) as u8
}

/// The image's pixels as `channels` (1 or 3) planes of bytes at its own size,
/// `[channels, height, width]`, converted as the module's documentation says.
pub fn to_planes(img: &DynamicImage, channels: usize) -> Vec<u8> {
    assert!(
        channels == 1 || channels == 3,
        "to_planes: images have 1 or 3 channels, not {channels}"
    );
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = vec![0u8; channels * h * w]; // [channels, h, w]
    if !img.color().has_color() {
        let la = img.to_luma_alpha8();
        for (i, p) in la.pixels().enumerate() {
            let v = over_white(p.0[0], p.0[1]);
            for c in 0..channels {
                out[c * h * w + i] = v;
            }
        }
        return out;
    }
    let rgba = img.to_rgba8();
    for (i, p) in rgba.pixels().enumerate() {
        let [r, g, b, a] = p.0;
        let (r, g, b) = (over_white(r, a), over_white(g, a), over_white(b, a));
        if channels == 1 {
            out[i] = luma(r, g, b);
        } else {
            out[i] = r;
            out[h * w + i] = g;
            out[2 * h * w + i] = b;
        }
    }
    out
}

/// A decoded image as the model's input bytes `[C, H, W]` (`shape`): converted to `C`
/// channels, then resized to `H x W` with Pillow's antialiased bilinear filter.
pub fn preprocess(img: &DynamicImage, shape: [usize; 3]) -> Vec<u8> {
    let mut out = vec![0u8; shape.iter().product()];
    preprocess_into(img, shape, &mut out);
    out
}

/// [`preprocess`] into `out` (`C * H * W` bytes).
pub fn preprocess_into(img: &DynamicImage, [c, h, w]: [usize; 3], out: &mut [u8]) {
    let planes = to_planes(img, c);
    let (ih, iw) = (img.height() as usize, img.width() as usize);
    resize_bilinear(&planes, [c, ih, iw], out, [h, w]);
}

/// One image file as the model's input bytes `[C, H, W]`, exactly as training on an image
/// folder prepared its images (the same decoding, conversion and resize): what `neurite
/// predict` feeds a model trained on a folder. Any size, gray or colour.
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// // A model trained on 3 x 32 x 32 images.
/// let x = neurite::data::folder::preprocess_file("cat.jpg".as_ref(), [3, 32, 32])?;
/// assert_eq!(x.len(), 3 * 32 * 32);
/// # Ok(()) }
/// ```
pub fn preprocess_file(path: &Path, shape: [usize; 3]) -> Result<Vec<u8>> {
    let [c, h, w] = shape;
    if !(c == 1 || c == 3) || h == 0 || w == 0 {
        bail!("cannot prepare {} as a {c} x {h} x {w} input: images have 1 or 3 channels and a positive size", path.display());
    }
    Ok(preprocess(&read_image(path)?, shape))
}

#[cfg(test)]
mod tests;
