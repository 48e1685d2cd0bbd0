//! Image folders the tests make: a few hundred Fashion-MNIST images written as PNG files in
//! torchvision's `ImageFolder` layout, some saved as RGB and some at other sizes, and small
//! hand-made folders for the bad inputs.
#![allow(dead_code)]

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, Rgb, RgbImage};
use neurite::data::{DatasetKind, ImageDataset, Split};
use std::path::{Path, PathBuf};

/// Where Debian's `dataset-fashion-mnist` puts the data.
pub const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// A fresh, empty directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("neurite-folder-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How a fixture image was saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    /// 28 x 28 gray: its pixels are the IDX bytes.
    Gray,
    /// 28 x 28 RGB with the gray level in all three channels.
    Rgb,
    /// Resized to 32 x 32 (gray).
    Big,
    /// Resized to 20 (high) x 24 (wide) (gray).
    Odd,
}

/// One image of the fixture: its file, class, how it was saved and its IDX pixels.
pub struct FixtureImage {
    /// The PNG file.
    pub path: PathBuf,
    /// Its class.
    pub label: usize,
    /// How it was saved.
    pub saved: Saved,
    /// Its 28 x 28 pixels in the IDX file.
    pub idx: Vec<u8>,
}

/// The class folder name of Fashion-MNIST class `c`: its number and name, sorted in label
/// order ("0 T-shirt-top", "1 Trouser", ...; the slash cannot be in a folder name).
pub fn class_folder(c: usize) -> String {
    let names = DatasetKind::FashionMnist.class_names();
    format!("{c} {}", names[c].replace('/', "-"))
}

/// Writes `per_class` images of each of the ten classes (the first of each class in the
/// Fashion-MNIST test split) into `root/<class>/<index>.png`; within a class, image `k` is
/// saved by `k % 10`: 3 as RGB, 5 at 32 x 32, 7 at 20 x 24, others 28 x 28 gray.
pub fn write_fashion_folder(root: &Path, per_class: usize) -> Vec<FixtureImage> {
    let data = ImageDataset::load(
        Path::new(FASHION_DIR),
        DatasetKind::FashionMnist,
        Split::Test,
    )
    .expect("Fashion-MNIST (apt-get install dataset-fashion-mnist)");
    let mut count = [0usize; 10];
    let mut out = Vec::new();
    for i in 0..data.len() {
        let label = data.labels[i] as usize;
        let k = count[label];
        if k >= per_class {
            continue;
        }
        count[label] += 1;
        let idx = data.image(i).to_vec();
        let gray = GrayImage::from_raw(28, 28, idx.clone()).unwrap();
        let saved = match k % 10 {
            3 => Saved::Rgb,
            5 => Saved::Big,
            7 => Saved::Odd,
            _ => Saved::Gray,
        };
        let img = match saved {
            Saved::Gray => DynamicImage::ImageLuma8(gray),
            Saved::Rgb => DynamicImage::ImageRgb8(RgbImage::from_fn(28, 28, |x, y| {
                let v = gray.get_pixel(x, y).0[0];
                Rgb([v, v, v])
            })),
            Saved::Big => DynamicImage::ImageLuma8(image::imageops::resize(
                &gray,
                32,
                32,
                FilterType::Triangle,
            )),
            Saved::Odd => DynamicImage::ImageLuma8(image::imageops::resize(
                &gray,
                24,
                20,
                FilterType::Triangle,
            )),
        };
        let dir = root.join(class_folder(label));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{i:05}.png"));
        img.save(&path).unwrap();
        out.push(FixtureImage {
            path,
            label,
            saved,
            idx,
        });
        if count.iter().all(|&c| c >= per_class) {
            break;
        }
    }
    out
}

/// Writes a `w` x `h` PNG of one colour (RGB) at `path`, creating its folder.
pub fn write_colour(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_pixel(w, h, Rgb(rgb)).save(path).unwrap();
}

/// Writes a `w` x `h` gray PNG whose pixel `(x, y)` is `f(x, y)`.
pub fn write_gray(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]))
        .save(path)
        .unwrap();
}

/// A small folder of two classes (`a`, `b`), `n` 8 x 8 gray images each.
pub fn write_two_classes(root: &Path, n: usize) {
    for (c, name) in ["a", "b"].iter().enumerate() {
        for i in 0..n {
            write_gray(&root.join(name).join(format!("{i}.png")), 8, 8, |x, y| {
                (c * 100 + i + (x + y) as usize) as u8
            });
        }
    }
}
