//! The fuzz targets: every parser a user can feed a file to, each behind the function the
//! `neurite` command calls, with its seed corpus built in-process.
//!
//! A target returns `Ok` or the error a user would see; only a panic is a crash. Targets
//! also check what a successful parse promises (an IDX array holds as many values as its
//! dimensions multiply to, an image gives 784 pixels in `[0, 1]`), panicking when it does
//! not, so a wrong answer is a crash too.

use crate::checkpoint::Checkpoint;
use crate::cli::predict::{image_bytes_to_pixels, Invert};
use crate::data::idx::{parse_idx, read_idx_from};
use crate::data::Normalization;
use crate::models::{Gpt, GptConfig};
use crate::nn::{Module, ModuleExt};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The names of all targets.
pub const TARGETS: [&str; 11] = [
    "idx",
    "idx-gz",
    "checkpoint",
    "checkpoint-mlp",
    "checkpoint-lenet5",
    "checkpoint-resnet20",
    "checkpoint-vit",
    "checkpoint-gpt",
    "png",
    "jpeg",
    "text",
];

/// The outcome of one execution: `Err` holds the error a user would see.
pub type Outcome = Result<(), String>;

/// Feeds one input to a parser.
pub type RunFn = Box<dyn FnMut(&[u8]) -> Outcome>;

/// Tells whether a crashing input is a known issue.
pub type KnownFn = Box<dyn Fn(&[u8]) -> bool>;

/// One parser under test.
pub struct Target {
    /// Its name, as given on the command line.
    pub name: &'static str,
    /// The inputs to start from.
    pub seeds: Vec<Vec<u8>>,
    /// The longest mutated input.
    pub max_len: usize,
    /// Tokens the mutator inserts (JSON keys, type names).
    pub dictionary: Vec<Vec<u8>>,
    /// Feeds one input to the parser.
    pub run: RunFn,
    /// Whether half of the mutations are structure-aware safetensors edits.
    pub safetensors: bool,
    /// Whether a crashing input is a known issue tracked elsewhere (counted apart).
    pub known_issue: KnownFn,
}

/// The target called `name`, with its in-process seeds plus the files in `corpus_dir` (if
/// given and present).
pub fn target(name: &str, corpus_dir: Option<&Path>) -> Option<Target> {
    let mut t = match name {
        "idx" => idx_target(),
        "idx-gz" => idx_gz_target(),
        "checkpoint" => checkpoint_target(),
        "checkpoint-gpt" => gpt_target(),
        "png" => image_target("png", png_seeds()),
        "jpeg" => image_target("jpeg", jpeg_seeds()),
        "text" => text_target(),
        _ => {
            let model = name.strip_prefix("checkpoint-")?;
            image_model_target(model)?
        }
    };
    if let Some(dir) = corpus_dir {
        t.seeds.extend(read_corpus(dir));
    }
    let mut seen = std::collections::HashSet::new();
    t.seeds.retain(|s| seen.insert(s.clone()));
    Some(t)
}

/// The files of a corpus directory, in name order (none when it does not exist).
pub fn read_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// The seeds small enough to commit as files (at most 8 KiB each).
pub fn small_seeds(t: &Target) -> Vec<&[u8]> {
    t.seeds
        .iter()
        .filter(|s| s.len() <= 8192)
        .map(Vec::as_slice)
        .collect()
}

fn never(_: &[u8]) -> bool {
    false
}

/// A scratch file for the parsers that read a path, in `/dev/shm` when there is one; it is
/// removed when the target (which owns it) is dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        Scratch(dir.join(format!("neurite-fuzz-{}-{name}", std::process::id())))
    }

    /// Writes `bytes` to the file and returns its path; a failure is a panic (of the
    /// harness, not of the target).
    fn write(&self, bytes: &[u8]) -> &Path {
        std::fs::write(&self.0, bytes)
            .unwrap_or_else(|e| panic!("fuzz harness: cannot write {}: {e}", self.0.display()));
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// The bytes of an unsigned-byte IDX file.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn idx_seeds() -> Vec<Vec<u8>> {
    let pixels: Vec<u8> = (0..2 * 28 * 28).map(|i| (i * 7 % 256) as u8).collect();
    vec![
        idx_bytes(&[10], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        idx_bytes(&[2, 28, 28], &pixels),
        idx_bytes(&[], &[42]),
        idx_bytes(&[0, 28, 28], &[]),
        idx_bytes(&[3, 2, 2, 1], &[1; 12]),
    ]
}

/// Checks what a successful read promises.
fn check_idx(arr: &crate::data::IdxArray) {
    let n: usize = arr.dims.iter().product();
    assert_eq!(arr.data.len(), n, "IDX data length and dimensions disagree");
}

fn idx_target() -> Target {
    Target {
        name: "idx",
        seeds: idx_seeds(),
        max_len: 4096,
        dictionary: vec![vec![0, 0, 8], vec![0x1f, 0x8b]],
        run: Box::new(|bytes| {
            let plain = parse_idx(bytes, Path::new("fuzz-idx"));
            // The same bytes through the gzip path must read the same.
            let gz = read_idx_from(&gzip(bytes)[..], Path::new("fuzz-idx.gz"));
            match (&plain, &gz) {
                (Ok(a), Ok(b)) => {
                    check_idx(a);
                    assert_eq!(a, b, "plain and gzip reads differ");
                }
                (Err(_), Err(_)) => {}
                _ => panic!(
                    "plain and gzip reads disagree: {:?} vs {:?}",
                    plain.as_ref().map(|a| &a.dims).map_err(|e| e.to_string()),
                    gz.as_ref().map(|a| &a.dims).map_err(|e| e.to_string())
                ),
            }
            plain.map(|_| ()).map_err(|e| e.to_string())
        }),
        known_issue: Box::new(never),
        safetensors: false,
    }
}

fn idx_gz_target() -> Target {
    let mut seeds: Vec<Vec<u8>> = idx_seeds().iter().map(|s| gzip(s)).collect();
    // Two gzip members, as `cat a.gz b.gz` gives.
    let whole = idx_bytes(&[4], &[1, 2, 3, 4]);
    let mut two = gzip(&whole[..6]);
    two.extend(gzip(&whole[6..]));
    seeds.push(two);
    Target {
        name: "idx-gz",
        seeds,
        max_len: 4096,
        dictionary: vec![vec![0x1f, 0x8b, 8, 0], vec![0, 0, 8]],
        run: Box::new(|bytes| {
            let r = read_idx_from(bytes, Path::new("fuzz-idx.gz"));
            if let Ok(a) = &r {
                check_idx(a);
            }
            r.map(|_| ()).map_err(|e| e.to_string())
        }),
        known_issue: Box::new(never),
        safetensors: false,
    }
}

/// Tokens of safetensors headers.
fn safetensors_dictionary() -> Vec<Vec<u8>> {
    [
        "\"dtype\":\"F32\"",
        "\"dtype\":\"F16\"",
        "\"dtype\":\"U8\"",
        "\"dtype\":\"I64\"",
        "\"dtype\":\"BOOL\"",
        "\"shape\":[]",
        "\"shape\":[0]",
        "\"shape\":[4294967296,4294967296]",
        "\"data_offsets\":[0,0]",
        "\"__metadata__\":{}",
        "\"model\":\"gpt\"",
        "\"gpt.n_head\":\"0\"",
        "\"normalize.mean\":\"nan\"",
        "\"normalize.std\":\"0\"",
        ",",
        "{",
        "}",
        "[",
        "]",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// A safetensors file with one tensor of each type neurite reads, and one it does not.
fn mixed_dtype_seed() -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let f64s: Vec<u8> = [1.5f64, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let i32s: Vec<u8> = [7i32].iter().flat_map(|v| v.to_le_bytes()).collect();
    let u8s = vec![1u8, 2, 3];
    let f16s = vec![0u8, 0x3c];
    let views = vec![
        ("a", TensorView::new(Dtype::F64, vec![2], &f64s).unwrap()),
        ("b", TensorView::new(Dtype::I32, vec![1, 1], &i32s).unwrap()),
        ("c", TensorView::new(Dtype::U8, vec![3], &u8s).unwrap()),
        ("d", TensorView::new(Dtype::F16, vec![1], &f16s).unwrap()),
    ];
    let meta: HashMap<String, String> = [("model".to_string(), "mlp".to_string())].into();
    safetensors::serialize(views, &Some(meta)).expect("serialize a seed")
}

/// The bytes of a checkpoint (panics only on a harness bug).
fn to_bytes(ck: &Checkpoint) -> Vec<u8> {
    ck.to_bytes().expect("serialize a seed checkpoint")
}

fn checkpoint_target() -> Target {
    let mut ck = Checkpoint::new(vec![
        (
            "fc.weight".into(),
            crate::Tensor::from_vec(vec![1.5, -2.0, 3.25, 0.0], &[2, 2]),
        ),
        ("bn.num_batches_tracked".into(), crate::Tensor::scalar(3.0)),
        ("empty".into(), crate::Tensor::from_vec(vec![], &[0, 3])),
    ]);
    ck.metadata.insert("model".into(), "lenet5".into());
    Target {
        name: "checkpoint",
        seeds: vec![to_bytes(&ck), mixed_dtype_seed(), b"{}".to_vec()],
        max_len: 4096,
        dictionary: safetensors_dictionary(),
        run: Box::new(|bytes| {
            let ck =
                Checkpoint::from_bytes(bytes, "fuzz.safetensors").map_err(|e| format!("{e:#}"))?;
            for (name, t) in &ck.tensors {
                let n: usize = t.shape().iter().product();
                assert_eq!(
                    t.to_vec().len(),
                    n,
                    "tensor {name}: values and shape disagree"
                );
            }
            Ok(())
        }),
        known_issue: Box::new(never),
        safetensors: true,
    }
}

/// Seeds for an image model: its fresh state_dict as `train` saves it, and variants.
fn image_model_seeds(model: &dyn Module, name: &str) -> Vec<Vec<u8>> {
    let norm = Normalization {
        mean: vec![0.286],
        std: vec![0.353],
    };
    let full = crate::train::state::model_checkpoint(model, name, &norm);
    let mut seeds = vec![to_bytes(&full)];
    // A PyTorch export: no metadata.
    seeds.push(to_bytes(&Checkpoint::new(full.tensors.clone())));
    // The smallest tensors only (fast to mutate; they fail as incomplete, as they should).
    let mut small: Vec<(String, crate::Tensor)> = full.tensors.clone();
    small.sort_by_key(|(_, t)| t.numel());
    small.truncate(3);
    let mut few = Checkpoint::new(small);
    few.metadata = full.metadata.clone();
    seeds.push(to_bytes(&few));
    for (k, v) in [
        ("model", "gpt"),
        ("normalize.mean", "0.5,0.5"),
        ("normalize.std", "0"),
        ("normalize.std", "nan"),
    ] {
        let mut ck = Checkpoint::new(few.tensors.clone());
        ck.metadata = full.metadata.clone();
        ck.metadata.insert(k.into(), v.into());
        seeds.push(to_bytes(&ck));
    }
    seeds.push(mixed_dtype_seed());
    seeds
}

fn image_model_target(name: &str) -> Option<Target> {
    let model_name: &'static str = crate::models::IMAGE_MODELS.iter().find(|m| **m == name)?;
    let target_name: &'static str = TARGETS
        .iter()
        .find(|t| t.strip_prefix("checkpoint-") == Some(name))?;
    let model = crate::models::build(model_name, &crate::models::MNIST_INPUT, 10).ok()?;
    let seeds = image_model_seeds(&*model, model_name);
    let scratch = Scratch::new(target_name);
    Some(Target {
        name: target_name,
        seeds,
        max_len: 4 << 20,
        dictionary: safetensors_dictionary(),
        run: Box::new(move |bytes| {
            let path = scratch.write(bytes);
            let r = crate::train::load_weights(&*model, model_name, path);
            r.map(|_| ()).map_err(|e| format!("{e:#}"))
        }),
        known_issue: Box::new(never),
        safetensors: false,
    })
}

/// The small `gpt` of the fuzz seeds: vocabulary 256 (bytes), block 8, one layer.
pub fn small_gpt_config() -> GptConfig {
    GptConfig {
        vocab: 256,
        block_size: 8,
        n_layer: 1,
        n_head: 2,
        n_embd: 8,
    }
}

fn gpt_seeds() -> Vec<Vec<u8>> {
    let config = small_gpt_config();
    let model = Gpt::new(config);
    let mut ck = Checkpoint::new(model.state_dict());
    ck.metadata.insert("model".into(), "gpt".into());
    ck.metadata.insert("step".into(), "10".into());
    ck.metadata.extend(config.to_metadata());
    let mut seeds = vec![to_bytes(&ck)];
    // A PyTorch export: no metadata, no tied lm_head.
    let export: Vec<_> = ck
        .tensors
        .iter()
        .filter(|(n, _)| n != "lm_head.weight")
        .cloned()
        .collect();
    seeds.push(to_bytes(&Checkpoint::new(export)));
    // With optimizer state, as `lm train` writes its checkpoint.
    let mut with_opt = Checkpoint::new(ck.tensors.clone());
    with_opt.metadata = ck.metadata.clone();
    with_opt
        .tensors
        .push(("optimizer.step".into(), crate::Tensor::scalar(10.0)));
    seeds.push(to_bytes(&with_opt));
    seeds
}

fn gpt_target() -> Target {
    let scratch = Scratch::new("checkpoint-gpt");
    Target {
        name: "checkpoint-gpt",
        seeds: gpt_seeds(),
        max_len: 1 << 20,
        dictionary: safetensors_dictionary(),
        run: Box::new(move |bytes| {
            let path = scratch.write(bytes);
            let model = crate::lm::load_gpt(path).map_err(|e| format!("{e:#}"))?;
            // What `lm sample` does next: the prompt checked against the vocabulary, then a
            // few tokens.
            crate::lm::data::check_vocab(b"a", model.config.vocab, "--prompt", "the checkpoint")
                .map_err(|e| format!("{e:#}"))?;
            let _no_grad = crate::NoGradGuard::new();
            let out = model.generate(
                &[b'a' as usize],
                2,
                crate::models::SampleOptions {
                    temperature: 1.0,
                    top_k: None,
                    seed: 0,
                    use_cache: true,
                },
                &mut |_| {},
            );
            assert!(
                out.iter().all(|&t| t < model.config.vocab),
                "token out of range"
            );
            Ok(())
        }),
        known_issue: Box::new(never),
        safetensors: true,
    }
}

fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format)
        .expect("encode a seed image");
    out
}

/// A small test picture: a light square on a dark ground, `w` x `h`.
fn picture(w: u32, h: u32) -> image::RgbaImage {
    image::RgbaImage::from_fn(w, h, |x, y| {
        let inside = x > w / 4 && x < 3 * w / 4 && y > h / 4 && y < 3 * h / 4;
        let v = if inside { 220 } else { 20 };
        image::Rgba([
            v,
            (x * 9) as u8,
            (y * 5) as u8,
            if x == 0 { 0 } else { 255 },
        ])
    })
}

fn png_seeds() -> Vec<Vec<u8>> {
    use image::DynamicImage as D;
    let p = |w, h| D::ImageRgba8(picture(w, h));
    vec![
        encode(D::ImageLuma8(p(28, 28).to_luma8()), image::ImageFormat::Png),
        encode(D::ImageRgb8(p(9, 5).to_rgb8()), image::ImageFormat::Png),
        encode(p(7, 13), image::ImageFormat::Png),
        encode(
            D::ImageLumaA8(p(1, 1).to_luma_alpha8()),
            image::ImageFormat::Png,
        ),
        encode(D::ImageRgb16(p(4, 4).to_rgb16()), image::ImageFormat::Png),
    ]
}

fn jpeg_seeds() -> Vec<Vec<u8>> {
    use image::DynamicImage as D;
    let p = |w, h| D::ImageRgba8(picture(w, h));
    vec![
        encode(D::ImageRgb8(p(28, 28).to_rgb8()), image::ImageFormat::Jpeg),
        encode(D::ImageLuma8(p(17, 9).to_luma8()), image::ImageFormat::Jpeg),
        encode(D::ImageRgb8(p(1, 40).to_rgb8()), image::ImageFormat::Jpeg),
    ]
}

fn image_target(kind: &'static str, seeds: Vec<Vec<u8>>) -> Target {
    let name = if kind == "png" {
        "fuzz.png"
    } else {
        "fuzz.jpg"
    };
    Target {
        name: kind,
        seeds,
        max_len: 16 << 10,
        dictionary: [
            &b"IHDR"[..],
            b"IDAT",
            b"IEND",
            b"PLTE",
            b"tRNS",
            b"\xff\xd8",
            b"\xff\xc0",
            b"\xff\xda",
            b"\xff\xd9",
            b"\xff\xc4",
            b"\xff\xdb",
        ]
        .iter()
        .map(|s| s.to_vec())
        .collect(),
        run: Box::new(move |bytes| {
            let px =
                image_bytes_to_pixels(bytes, name, Invert::Auto).map_err(|e| format!("{e:#}"))?;
            assert_eq!(px.len(), 28 * 28, "not 784 pixels");
            assert!(
                px.iter().all(|v| (0.0..=1.0).contains(v)),
                "a pixel outside [0, 1]"
            );
            Ok(())
        }),
        known_issue: Box::new(never),
        safetensors: false,
    }
}

fn text_target() -> Target {
    let scratch = Scratch::new("text");
    let mut models: HashMap<usize, Gpt> = HashMap::new();
    Target {
        name: "text",
        // First byte: the block size (1 + byte % 32); the rest: the text.
        seeds: vec![
            b"\x07the quick brown fox jumps over the lazy dog. ".repeat(3),
            b"\x00ab".to_vec(),
            b"\x1fshort".to_vec(),
            b"\x03caf\xc3\xa9 \xf0\x9f\x98\x80 \0\xff".to_vec(),
            vec![4],
        ],
        max_len: 2048,
        dictionary: vec![b"\n%\n".to_vec(), b"\xff\xfe".to_vec()],
        run: Box::new(move |bytes| {
            let block = 1 + *bytes.first().unwrap_or(&0) as usize % 32;
            let path = scratch.write(bytes.get(1..).unwrap_or(&[])).to_path_buf();
            let text =
                crate::lm::read_text(std::slice::from_ref(&path)).map_err(|e| format!("{e:#}"))?;
            assert_eq!(text[..], bytes[1..], "read_text changed the bytes");
            // What `lm train` does with the text before training.
            let (train, val) = crate::lm::split_text(&text);
            assert_eq!(train.len() + val.len(), text.len());
            let mut windows =
                crate::lm::Windows::new(train, block, 1).map_err(|e| format!("{e:#}"))?;
            let (x, y) = windows.batch(3);
            assert_eq!((x.len(), y.len()), (3 * block, 3 * block));
            // What `lm eval` does: the loss over consecutive windows.
            let model = models.entry(block).or_insert_with(|| {
                Gpt::new(GptConfig {
                    block_size: block,
                    ..small_gpt_config()
                })
            });
            let loss = crate::lm::text_loss(model, val, 4).map_err(|e| format!("{e:#}"))?;
            assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
            Ok(())
        }),
        known_issue: Box::new(never),
        safetensors: false,
    }
}
