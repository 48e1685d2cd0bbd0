//! `neurite predict MODEL --weights PATH INPUT...`: the top classes of PNG or JPEG images,
//! or the predictions for the rows of CSV files (a model trained on a table).
//!
//! The checkpoint says what the model was trained on. A model of an image folder gets each
//! image converted and resized exactly as training read the folder (`data::folder`), then
//! normalized with the checkpoint's constants; its classes are the folder's. A table model
//! reads the rows' feature columns (any order; other columns ignored) and standardizes them
//! with the training rows' statistics; a regression's output is mapped back to the
//! target's units. For a Fashion-MNIST model, each image becomes what the model saw in
//! training: grayscale (transparent pixels over
//! white), fitted into 28 x 28 keeping its aspect ratio (Lanczos-3 resampling, the rest
//! black), pixels scaled to `[0, 1]`, then normalized with the checkpoint's constants.
//! Fashion-MNIST shows a light object on a black background, while a photo usually shows a
//! dark object on a light one: `--invert auto` (the default) inverts an image whose border
//! is mostly light; `yes` and `no` force the choice.
//!
//! An image may have at most [`MAX_IMAGE_PIXELS`] pixels (50 megapixels, a 48-megapixel
//! phone photo fits): the size is read from the file's header and a larger image is refused
//! before it is decoded, and the decoder's allocations are capped at [`MAX_DECODE_BYTES`].

use crate::data::mnist::MNIST_SIDE;
use crate::data::{
    find_data_dir, DataInfo, DatasetKind, ImageDataset, Normalization, SourceKind, Split,
};
use crate::train::load_weights;
use crate::Tensor;
use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage};
use std::path::PathBuf;

/// Reading and decoding one image file, with its size guard, live in the data layer (shared
/// with training on an image folder); re-exported here where they were first defined.
pub use crate::data::folder::{decode_image, read_image, MAX_DECODE_BYTES, MAX_IMAGE_PIXELS};

#[derive(clap::Args, Debug)]
/// Flags of `neurite predict`.
pub struct Args {
    /// The model: mlp, lenet5 or resnet20.
    model: String,
    /// The weights (safetensors).
    #[arg(long)]
    weights: PathBuf,
    /// PNG or JPEG files, of at most 50 megapixels each (an image model), or CSV files of rows
    /// with the model's feature columns (a table model).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Invert the gray levels: auto (when the border is light), yes or no.
    #[arg(long, default_value = "auto")]
    invert: String,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// The Fashion-MNIST directory, read only when the weights carry no normalization.
    #[arg(long)]
    data: Option<PathBuf>,
}

/// Whether to invert the gray levels of an input image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invert {
    /// Invert when the image's border is lighter than its middle (dark ink on paper).
    Auto,
    /// Always invert.
    Yes,
    /// Never invert.
    No,
}

impl std::str::FromStr for Invert {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "auto" => Invert::Auto,
            "yes" | "true" => Invert::Yes,
            "no" | "false" => Invert::No,
            _ => bail!("--invert '{s}': use auto, yes or no"),
        })
    }
}

/// The pixels [`prepare_image`] gives for the bytes of a PNG or JPEG file; `name` names it
/// in errors.
pub fn image_bytes_to_pixels(bytes: &[u8], name: &str, invert: Invert) -> Result<Vec<f32>> {
    let img = decode_image(std::io::Cursor::new(bytes), name)?;
    Ok(prepare_image(&img, invert))
}

/// The mean gray level (0 to 255) of the outermost ring of pixels.
fn border_mean(g: &GrayImage) -> f32 {
    let (w, h) = g.dimensions();
    let (mut sum, mut n) = (0.0f32, 0usize);
    for (x, y, p) in g.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            sum += p.0[0] as f32;
            n += 1;
        }
    }
    sum / n.max(1) as f32
}

/// The image as a `[28 * 28]` array of pixels in `[0, 1]`, light object on black.
pub fn prepare_image(img: &DynamicImage, invert: Invert) -> Vec<f32> {
    // Grayscale, with transparent pixels over white.
    let la = img.to_luma_alpha8();
    let gray = GrayImage::from_fn(la.width(), la.height(), |x, y| {
        let [l, a] = la.get_pixel(x, y).0;
        let a = a as f32 / 255.0;
        image::Luma([(l as f32 * a + 255.0 * (1.0 - a)).round() as u8])
    });
    let invert = match invert {
        Invert::Auto => border_mean(&gray) > 127.5,
        Invert::Yes => true,
        Invert::No => false,
    };
    let side = MNIST_SIDE as u32;
    let (w, h) = gray.dimensions();
    let scale = side as f32 / w.max(h) as f32;
    let nw = ((w as f32 * scale).round() as u32).clamp(1, side);
    let nh = ((h as f32 * scale).round() as u32).clamp(1, side);
    let small = image::imageops::resize(&gray, nw, nh, FilterType::Lanczos3);
    let (x0, y0) = ((side - nw) / 2, (side - nh) / 2);
    let mut out = vec![0.0f32; MNIST_SIDE * MNIST_SIDE]; // [28, 28]
    for (x, y, p) in small.enumerate_pixels() {
        let v = p.0[0] as f32 / 255.0;
        out[((y + y0) * side + x + x0) as usize] = if invert { 1.0 - v } else { v };
    }
    out
}

/// Runs `neurite predict`; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    let invert: Invert = args.invert.parse()?;
    crate::validate::count("--top", args.top, 1, usize::MAX)?;
    let source = args.weights.display().to_string();
    let ck = crate::checkpoint::Checkpoint::load(&args.weights)?;
    let info = DataInfo::from_metadata(&ck.metadata, &source)?;
    let model = crate::models::build(&args.model, &info.input_shape, info.task.outputs())?;
    let norm = match load_weights(&*model, &args.model, &args.weights)? {
        Some(n) => Some(n),
        None if info.source == SourceKind::Idx => {
            let dir = find_data_dir(args.data.as_deref())?;
            let train = ImageDataset::load(&dir, DatasetKind::FashionMnist, Split::Train)?;
            Some(Normalization::from_dataset(&train))
        }
        None => None,
    };
    let state = crate::nn::ModuleExt::state_dict(&*model);
    crate::validate::check_finite_tensors(state.iter().map(|(n, t)| (n.as_str(), t)), &source)?;
    let mut model = model;
    crate::nn::ModuleExt::set_training(&mut *model, false);
    let plan = crate::infer::Plan::new(&*model);
    if info.source == SourceKind::Table {
        return predict_rows(&plan, &args, &ck, &source);
    }
    let norm = norm.with_context(|| format!("{source} holds no normalization constants"))?;
    norm.check_channels(info.input_shape[0])
        .with_context(|| format!("in {source}"))?;
    let class_names = info.class_names().unwrap_or_default();
    for path in &args.images {
        let (mut pixels, shape) = if info.source == SourceKind::Folder {
            // Exactly as training read the folder: converted, resized, scaled to [0, 1].
            let &[c, h, w] = info.input_shape.as_slice() else {
                bail!("{source}: a folder model's input shape must be [C, H, W]");
            };
            let bytes = crate::data::folder::preprocess_file(path, [c, h, w])?;
            let pixels: Vec<f32> = bytes.iter().map(|&b| b as f32 / 255.0).collect();
            (pixels, [1, c, h, w])
        } else {
            let pixels = prepare_image(&read_image(path)?, invert);
            (pixels, [1, 1, MNIST_SIDE, MNIST_SIDE])
        };
        norm.apply_image(&mut pixels);
        let x = Tensor::from_vec(pixels, &shape); // [1, C, H, W]
        let probs = plan.forward(&x).softmax(-1).to_vec(); // [classes]
        println!("{}", path.display());
        print_top(&probs, class_names, args.top);
    }
    Ok(0)
}

/// The `top` most probable classes, one line each.
fn print_top(probs: &[f32], class_names: &[String], top: usize) {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    for (rank, &c) in order.iter().take(top.max(1)).enumerate() {
        println!(
            "  {}. {:<12} {:6.2}%",
            rank + 1,
            class_names.get(c).map_or("?", String::as_str),
            100.0 * probs[c]
        );
    }
}

/// Predictions for every row of the CSV files given (a table model): the classes with their
/// probabilities, or the predicted value in the target's units.
fn predict_rows(
    plan: &crate::infer::Plan,
    args: &Args,
    ck: &crate::checkpoint::Checkpoint,
    source: &str,
) -> Result<i32> {
    let schema = super::data::table_schema(&ck.metadata, source)?;
    let (mean, std) = super::data::target_statistics_of(&ck.metadata, source)?;
    let f = schema.num_features();
    for path in &args.images {
        let rows = schema.read_rows(path)?;
        if !rows.ignored.is_empty() {
            eprintln!(
                "note: {}: column(s) {} are not features of the model, ignored",
                path.display(),
                rows.ignored.join(", ")
            );
        }
        let x = Tensor::from_vec(rows.x.clone(), &[rows.rows, f]); // [N, F]
        let out = plan.forward(&x); // [N, classes] or [N, 1]
        println!("{}", path.display());
        if schema.class_names.is_empty() {
            for (line, v) in rows.lines.iter().zip(out.to_vec()) {
                let v = v as f64 * std + mean;
                println!("  line {line}: {} = {v:.4}", schema.target);
            }
        } else {
            let probs = out.softmax(-1).to_vec();
            let k = schema.class_names.len();
            for (r, line) in rows.lines.iter().enumerate() {
                println!("  line {line}:");
                print_top(&probs[r * k..(r + 1) * k], &schema.class_names, args.top);
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    #[test]
    fn dark_object_on_white_is_inverted_and_fitted() {
        // A 56 x 28 white image with a black 20 x 10 block in the middle.
        let img = GrayImage::from_fn(56, 28, |x, y| {
            Luma([if (18..38).contains(&x) && (9..19).contains(&y) {
                0
            } else {
                255
            }])
        });
        let px = prepare_image(&DynamicImage::ImageLuma8(img.clone()), Invert::Auto);
        assert_eq!(px.len(), 784);
        // Fitted to 28 x 14, centred vertically: rows 0..7 are padding (black).
        assert!(px[..7 * 28].iter().all(|&v| v == 0.0));
        // The block is light after inversion; the centre pixel is near 1.
        assert!(px[14 * 28 + 14] > 0.9, "{}", px[14 * 28 + 14]);
        // Its surroundings (the white background) are near 0.
        assert!(px[8 * 28 + 1] < 0.1);
        let plain = prepare_image(&DynamicImage::ImageLuma8(img), Invert::No);
        assert!(plain[14 * 28 + 14] < 0.1);
    }

    #[test]
    fn image_bytes_decode_like_files() {
        let img = GrayImage::from_fn(28, 28, |x, _| Luma([if x < 14 { 0 } else { 255 }]));
        let mut png = Vec::new();
        DynamicImage::ImageLuma8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let px = image_bytes_to_pixels(&png, "half.png", Invert::No).unwrap();
        assert_eq!(px.len(), 784);
        assert_eq!((px[0], px[27]), (0.0, 1.0));
    }
}
