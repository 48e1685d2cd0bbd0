//! Training on a folder of your own images with the library: `data::load_folder` reads a
//! folder in torchvision's `ImageFolder` layout (`DIR/<class>/<image>.png|jpg`, or
//! `DIR/train/...` and `DIR/test/...`), decides the channels and size from the images,
//! decodes them once (cached), and holds out a seeded, stratified test part when the folder
//! has none; `train::train` trains a zoo model sized to those images; a new image is then
//! classified with exactly the preprocessing training used.
//!
//! ```text
//! cargo run --release --example image_folder -- --data my-photos --model lenet5 --epochs 10
//! cargo run --release --example image_folder -- --per-class 30 --epochs 1   # a demo folder
//! ```
//!
//! Without `--data`, it first writes a demo folder of Fashion-MNIST images as PNG files
//! (`--per-class` per class, a third of them RGB at 32 x 32) under `target/`. The command
//! does the same with `neurite train lenet5 --data DIR`. The PyTorch version of this program is
//! `bench/pytorch/imagefolder_train.py`.

use neurite::data::folder::preprocess_file;
use neurite::data::{find_data_dir, load_folder, DatasetKind, FolderOptions, FolderSplit};
use neurite::data::{ImageSource, MnistData};
use neurite::nn::ModuleExt;
use neurite::train::{load_weights, train, OptimizerKind, RunOptions, TrainConfig, TrainData};
use neurite::Tensor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let epochs: usize = flag("--epochs").map_or(Ok(3), |v| v.parse())?;
    let per_class: usize = flag("--per-class").map_or(Ok(100), |v| v.parse())?;
    let model = flag("--model").unwrap_or_else(|| "lenet5".into());
    let root = match flag("--data") {
        Some(dir) => PathBuf::from(dir),
        None => demo_folder(per_class)?,
    };

    // Read the folder: classes from the sub-folders, shape from the images, 20% held out.
    let folder = load_folder(&root, &FolderOptions::default())?;
    println!("{}", folder.description);
    let class_names = folder.description.class_names.clone();
    let data = match (folder.train, folder.test) {
        (FolderSplit::Memory(train), FolderSplit::Memory(test)) => TrainData::images(train, test)?,
        // Too large for memory: the loader's workers decode the images as they go.
        (train, test) => TrainData::image_source(Arc::new(train), Arc::new(test), class_names)?,
    };
    println!("input shape {:?}", data.input_shape()); // [C, H, W]

    // The model's recipe, shortened; a digit or a photo should not be mirrored.
    let mut config = TrainConfig::recipe(&model, OptimizerKind::Sgd)?;
    config.epochs = epochs;
    config.augment = "none".parse()?;
    let out = PathBuf::from("target/example-image-folder-run");
    let opts = RunOptions {
        out: out.clone(),
        overwrite: true,
        ..RunOptions::default()
    };
    let summary = train(&config, &data, &opts)?;
    println!(
        "{model}: test accuracy {:.2}% after {} epochs ({:.0} images/s)",
        100.0 * summary.accuracy,
        summary.epochs,
        summary.images_per_second
    );

    // Classify one image as `neurite predict` would: the same conversion and resize, then
    // the training part's normalization (stored with the weights).
    let shape = data.input_shape();
    let [c, h, w] = [shape[0], shape[1], shape[2]];
    let net = neurite::models::build(&model, &shape, data.classes().unwrap_or(2))?;
    let norm = load_weights(&*net, &model, &out.join("model.safetensors"))?
        .expect("neurite train stores the normalization");
    let image = first_image(&root)?;
    let bytes = preprocess_file(&image, [c, h, w])?;
    let mut pixels: Vec<f32> = bytes.iter().map(|&b| b as f32 / 255.0).collect();
    norm.apply_image(&mut pixels);
    let x = Tensor::from_vec(pixels, &[1, c, h, w]); // [1, C, H, W]
    let mut net = net;
    net.eval();
    let probs = neurite::no_grad(|| net.forward(&x).softmax(-1)).to_vec(); // [classes]
    let best = (0..probs.len())
        .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
        .unwrap_or(0);
    let names = data.class_names().unwrap_or_default();
    println!(
        "{}: {} ({:.1}%)",
        image.display(),
        names.get(best).map_or("?", String::as_str),
        100.0 * probs[best]
    );
    Ok(())
}

/// The first image file under `root` (in sorted order), to classify.
fn first_image(root: &Path) -> anyhow::Result<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries.iter().rev() {
            if p.is_dir() {
                stack.push(p.clone());
            }
        }
        if let Some(f) = entries.iter().find(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("png") || e.eq_ignore_ascii_case("jpg"))
        }) {
            return Ok(f.clone());
        }
    }
    anyhow::bail!("no image under {}", root.display())
}

/// A folder of `per_class` Fashion-MNIST training images per class, as PNG files in class
/// sub-folders; every third image is saved in colour at 32 x 32, as photos of mixed sizes
/// would be.
fn demo_folder(per_class: usize) -> anyhow::Result<PathBuf> {
    let data = MnistData::load(&find_data_dir(None)?, DatasetKind::FashionMnist)?;
    let root = PathBuf::from("target/example-image-folder");
    let _ = std::fs::remove_dir_all(&root);
    let names = data.train.class_names();
    let mut count = vec![0usize; names.len()];
    for i in 0..data.train.len() {
        let label = data.train.label(i);
        if count[label] == per_class {
            continue;
        }
        let dir = root.join(names[label].replace('/', "-"));
        std::fs::create_dir_all(&dir)?;
        let gray = image::GrayImage::from_raw(28, 28, data.train.image(i).to_vec())
            .expect("28 x 28 bytes");
        let path = dir.join(format!("{i:05}.png"));
        if count[label] % 3 == 2 {
            let rgb = image::DynamicImage::ImageLuma8(gray).to_rgb8();
            image::imageops::resize(&rgb, 32, 32, image::imageops::FilterType::Triangle)
                .save(&path)?;
        } else {
            gray.save(&path)?;
        }
        count[label] += 1;
    }
    Ok(root)
}
