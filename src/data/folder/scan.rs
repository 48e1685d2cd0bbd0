//! Finding the images of a folder in torchvision's `ImageFolder` layout,
//! `root/<class>/<image>`, or `root/train/<class>/<image>` with `root/test/...` (or
//! `root/val/...`) beside it.
//!
//! - Classes are the sub-folder names, sorted (byte order, as Python's `sorted`): class `i`
//!   is the `i`-th name, as torchvision numbers them.
//! - Images are the files ending in `.png`, `.jpg` or `.jpeg` (any case) anywhere under a
//!   class folder (sub-folders included, as torchvision walks them), in sorted path order.
//!   Hidden files and folders (a name starting with `.`) and other files are ignored and
//!   counted, so that the caller can say so once.
//! - A class folder with no images is an **error**, not skipped: the class would still get
//!   a number and an output of the model that no example ever trains, and a misspelt or
//!   half-copied folder usually is a mistake the user wants to hear about (torchvision's
//!   `ImageFolder` refuses it too).
//! - With split folders, a test class the training split lacks is an error; a training class
//!   with no test folder is allowed (it is just not tested).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The most classes a folder may have: labels are stored as bytes.
pub const MAX_CLASSES: usize = 256;

/// One image file found by the scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFile {
    /// Its path (under the root).
    pub path: PathBuf,
    /// Its class (an index into the class names).
    pub label: usize,
    /// Its size in bytes, when scanned (part of the cache key).
    pub len: u64,
    /// Its modification time, in nanoseconds since 1970 (part of the cache key).
    pub modified: u128,
}

/// What a folder holds: the classes and the image files of each split.
#[derive(Clone, Debug)]
pub struct Scan {
    /// The folder scanned.
    pub root: PathBuf,
    /// The class names (the training split's sub-folders), sorted.
    pub classes: Vec<String>,
    /// The training images (all images when the folder has no split folders).
    pub train: Vec<ImageFile>,
    /// The test images and the name of their folder (`test` or `val`), when the folder has
    /// split folders.
    pub test: Option<(String, Vec<ImageFile>)>,
    /// How many files were ignored (hidden, or not `.png`/`.jpg`/`.jpeg`).
    pub ignored: usize,
    /// One of the ignored files, to name in the message.
    pub ignored_example: Option<PathBuf>,
}

/// Whether a file name is hidden (starts with a dot).
fn hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// Whether a file name has an image extension (`.png`, `.jpg`, `.jpeg`, any case).
pub fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".png") || lower.ends_with(".jpg") || lower.ends_with(".jpeg")
}

/// The entries of a folder, sorted by name, with errors that name it.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, std::fs::Metadata)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        // Follow links, as torchvision does (`os.walk(followlinks=True)`).
        let meta =
            std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        out.push((entry.file_name().to_string_lossy().into_owned(), path, meta));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Counts an ignored file, remembering the first.
fn ignore(path: PathBuf, ignored: &mut usize, example: &mut Option<PathBuf>) {
    *ignored += 1;
    example.get_or_insert(path);
}

/// The class folders directly under `dir` and the images under each, in class order.
#[allow(clippy::type_complexity)]
fn scan_split(
    dir: &Path,
    ignored: &mut usize,
    example: &mut Option<PathBuf>,
) -> Result<Vec<(String, Vec<(PathBuf, std::fs::Metadata)>)>> {
    let mut classes = Vec::new();
    for (name, path, meta) in entries(dir)? {
        if hidden(&name) {
            ignore(path, ignored, example);
        } else if meta.is_dir() {
            let mut images = Vec::new();
            walk(&path, &mut images, ignored, example)?;
            images.sort_by(|a, b| a.0.cmp(&b.0));
            classes.push((name, images));
        } else {
            ignore(path, ignored, example);
        }
    }
    Ok(classes)
}

/// Collects the images under a class folder, sub-folders included.
fn walk(
    dir: &Path,
    images: &mut Vec<(PathBuf, std::fs::Metadata)>,
    ignored: &mut usize,
    example: &mut Option<PathBuf>,
) -> Result<()> {
    for (name, path, meta) in entries(dir)? {
        if hidden(&name) {
            ignore(path, ignored, example);
        } else if meta.is_dir() {
            walk(&path, images, ignored, example)?;
        } else if is_image_name(&name) {
            images.push((path, meta));
        } else {
            ignore(path, ignored, example);
        }
    }
    Ok(())
}

/// The files of one split, labelled by `classes` (checked: every class of this split must be
/// one of them and have images).
fn label_files(
    found: Vec<(String, Vec<(PathBuf, std::fs::Metadata)>)>,
    classes: &[String],
    dir: &Path,
    train_dir: &Path,
) -> Result<Vec<ImageFile>> {
    let mut files = Vec::new();
    for (name, images) in found {
        let Some(label) = classes.iter().position(|c| *c == name) else {
            bail!(
                "{} is a class that the training split {} lacks (its classes: {}); the splits \
                 must have the same class folders: add {} or remove the test one",
                dir.join(&name).display(),
                train_dir.display(),
                classes.join(", "),
                train_dir.join(&name).display()
            );
        };
        if images.is_empty() {
            bail!(
                "the class folder {} holds no PNG or JPEG images (.png, .jpg, .jpeg); add its \
                 images or remove the folder (every class needs examples)",
                dir.join(&name).display()
            );
        }
        for (path, meta) in images {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            files.push(ImageFile {
                path,
                label,
                len: meta.len(),
                modified,
            });
        }
    }
    Ok(files)
}

/// Scans `root` for class folders and images (the module's documentation has the rules).
pub fn scan(root: &Path) -> Result<Scan> {
    let show = root.display();
    let how = "give the folder that holds one sub-folder of images per class \
               (root/<class>/<image>.png)";
    let meta = std::fs::metadata(root).with_context(|| {
        format!("the image folder {show} does not exist or cannot be read; {how}")
    })?;
    if !meta.is_dir() {
        bail!("{show} is a file, not a folder; {how}");
    }
    let (train_dir, test_dir) = split_dirs(root);
    let (mut ignored, mut example) = (0, None);
    let found = scan_split(&train_dir, &mut ignored, &mut example)?;
    let where_ = train_dir.display();
    if found.is_empty() {
        bail!(
            "{where_} holds no class folders; put each class's images in a sub-folder named \
             after the class ({where_}/cat/1.png, {where_}/dog/2.png, ...)"
        );
    }
    if found.iter().all(|(_, images)| images.is_empty()) {
        bail!(
            "{where_} holds no PNG or JPEG images (.png, .jpg, .jpeg) in its class folders \
             ({}); put the images of each class in its folder",
            found
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if found.len() == 1 {
        bail!(
            "{where_} holds one class folder ({}); a classifier needs at least two classes: \
             add a folder of images for each other class",
            found[0].0
        );
    }
    if found.len() > MAX_CLASSES {
        bail!(
            "{where_} holds {} class folders; neurite handles at most {MAX_CLASSES} classes",
            found.len()
        );
    }
    let classes: Vec<String> = found.iter().map(|(n, _)| n.clone()).collect();
    let train = label_files(found, &classes, &train_dir, &train_dir)?;
    let test = match test_dir {
        None => None,
        Some(dir) => {
            let found = scan_split(&dir, &mut ignored, &mut example)?;
            if found.iter().all(|(_, images)| images.is_empty()) {
                bail!(
                    "the test split {} holds no images in class folders; put them in \
                     {}/<class>/, or remove it to split the training images instead",
                    dir.display(),
                    dir.display()
                );
            }
            let files = label_files(found, &classes, &dir, &train_dir)?;
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Some((name, files))
        }
    };
    // The root's own files beside `train/` and `test/` are not images of any class.
    if test.is_some() {
        for (name, path, meta) in entries(root)? {
            if !meta.is_dir() || hidden(&name) {
                ignore(path, &mut ignored, &mut example);
            }
        }
    }
    Ok(Scan {
        root: root.to_path_buf(),
        classes,
        train,
        test,
        ignored,
        ignored_example: example,
    })
}

/// The training folder and the test folder: `root/train` and `root/test` (else
/// `root/val`) when both exist, else `root` alone.
fn split_dirs(root: &Path) -> (PathBuf, Option<PathBuf>) {
    let train = root.join("train");
    if train.is_dir() {
        for name in ["test", "val"] {
            let test = root.join(name);
            if test.is_dir() {
                return (train, Some(test));
            }
        }
    }
    (root.to_path_buf(), None)
}
