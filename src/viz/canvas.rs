//! The RGB pixel buffer every picture is drawn into, colour maps, and PNG output.

use anyhow::Context;
use std::path::Path;

/// An RGB colour, 8 bits a channel.
pub type Rgb = [u8; 3];

/// A `width x height` RGB image in memory, row-major, 3 bytes a pixel.
pub struct Canvas {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `[height, width, 3]` bytes.
    pub pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with one colour.
    pub fn new(width: u32, height: u32, fill: Rgb) -> Canvas {
        let pixels = fill
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 3)
            .collect();
        Canvas {
            width,
            height,
            pixels,
        }
    }

    /// Sets one pixel; pixels outside the canvas are ignored.
    pub fn put(&mut self, x: u32, y: u32, c: Rgb) {
        if x < self.width && y < self.height {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fills the rectangle `[x, x + w) x [y, y + h)`, clipped to the canvas.
    pub fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, c: Rgb) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                self.put(xx, yy, c);
            }
        }
    }

    /// The image encoded as an 8-bit RGB PNG.
    pub fn encode_png(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().context("PNG header")?;
            writer
                .write_image_data(&self.pixels)
                .context("PNG image data")?;
        }
        Ok(out)
    }

    /// Encodes the image and writes it to `path` atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = self
            .encode_png()
            .with_context(|| format!("cannot encode {}", path.display()))?;
        crate::checkpoint::write_atomic(path, &bytes)
    }
}

/// Linear interpolation between colour stops spread evenly over `[0, 1]`; `t` is clamped.
fn ramp(stops: &[Rgb], t: f32) -> Rgb {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (stops.len() - 1) as f32;
    let i = (pos.floor() as usize).min(stops.len() - 2);
    let f = pos - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    std::array::from_fn(|k| (a[k] as f32 + (b[k] as f32 - a[k] as f32) * f).round() as u8)
}

/// Gray level for `t` in `[0, 1]`: black to white.
pub fn gray(t: f32) -> Rgb {
    ramp(&[[0, 0, 0], [255, 255, 255]], t)
}

/// Sequential white-to-dark-blue map for `t` in `[0, 1]` (heat maps of shares).
pub fn blues(t: f32) -> Rgb {
    ramp(&[[247, 251, 255], [107, 174, 214], [8, 48, 107]], t)
}

/// "Hot" map for `t` in `[0, 1]`: dark red through red and orange to yellow (attention).
pub fn hot(t: f32) -> Rgb {
    ramp(&[[128, 0, 0], [255, 0, 0], [255, 160, 0], [255, 255, 0]], t)
}

/// `base * (1 - alpha) + top * alpha`, per channel.
pub fn blend(base: Rgb, top: Rgb, alpha: f32) -> Rgb {
    let a = alpha.clamp(0.0, 1.0);
    std::array::from_fn(|k| (base[k] as f32 * (1.0 - a) + top[k] as f32 * a).round() as u8)
}

/// `(min, max)` of the finite values of `v`; `(0, 0)` when there are none.
pub fn finite_range(v: &[f32]) -> (f32, f32) {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for &x in v.iter().filter(|x| x.is_finite()) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if lo > hi {
        (0.0, 0.0)
    } else {
        (lo, hi)
    }
}

/// `x` mapped from `[lo, hi]` to `[0, 1]`; a flat range maps everything to 0.5.
pub fn normalize(x: f32, lo: f32, hi: f32) -> f32 {
    if hi > lo {
        ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::path::{Path, PathBuf};

    /// A fresh directory under the system temp dir for one test.
    pub fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("neurite-viz-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Decodes an RGB(A) PNG: `(width, height, rgb bytes)`.
    pub fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    /// The pixel at `(x, y)` of an RGB buffer of width `w`.
    pub fn pixel(rgb: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * w as usize + x as usize) * 3;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_maps_hit_their_ends() {
        assert_eq!(gray(0.0), [0, 0, 0]);
        assert_eq!(gray(1.0), [255, 255, 255]);
        assert_eq!(gray(f32::NAN), [0, 0, 0]);
        assert_eq!(blues(1.0), [8, 48, 107]);
        assert_eq!(hot(1.0), [255, 255, 0]);
        assert_eq!(blend([0, 0, 0], [200, 100, 50], 0.5), [100, 50, 25]);
        assert_eq!(finite_range(&[f32::NAN, 2.0, -1.0]), (-1.0, 2.0));
        assert_eq!(normalize(3.0, 1.0, 1.0), 0.5);
    }

    #[test]
    fn png_round_trip() {
        let dir = test_util::temp_dir("canvas");
        let mut c = Canvas::new(5, 3, [10, 20, 30]);
        c.put(4, 2, [255, 0, 0]);
        let path = dir.join("c.png");
        c.save(&path).unwrap();
        let (w, h, rgb) = test_util::read_png(&path);
        assert_eq!((w, h), (5, 3));
        assert_eq!(test_util::pixel(&rgb, w, 0, 0), [10, 20, 30]);
        assert_eq!(test_util::pixel(&rgb, w, 4, 2), [255, 0, 0]);
    }
}
