//! The image-folder reader on folders the tests write: Fashion-MNIST images as PNG (some RGB,
//! some of other sizes), and the bad inputs (empty class, corrupt image, one class, missing
//! root, mismatched splits), the cache and the lazily decoded source.

mod folder_support;

use folder_support::*;
use neurite::data::folder::{
    decode_throughput, load_folder, preprocess_file, CacheUse, FolderOptions, FolderSplit,
    SplitSource,
};
use neurite::data::Augment;
use std::collections::HashMap;
use std::path::Path;

/// Options with no cache and no warnings, the rest default.
fn quiet() -> FolderOptions {
    FolderOptions {
        cache_dir: None,
        quiet: true,
        ..FolderOptions::default()
    }
}

fn error(root: &Path, opts: &FolderOptions) -> String {
    format!("{:#}", load_folder(root, opts).unwrap_err())
}

#[test]
fn a_fashion_folder_gives_its_classes_counts_labels_and_exact_pixels() {
    let root = temp_dir("fashion");
    let written = write_fashion_folder(&root, 30);
    assert_eq!(written.len(), 300);
    let data = load_folder(&root, &quiet()).unwrap();
    let d = &data.description;
    assert_eq!(d.class_names.len(), 10);
    assert_eq!(d.class_names[0], "0 T-shirt-top");
    assert_eq!(d.class_names[9], "9 Ankle boot");
    // Some images are RGB: 3 channels; most are 28 x 28: that size.
    assert_eq!(d.shape, [3, 28, 28]);
    // Stratified: 20% of each class's 30 held out.
    assert_eq!(d.train_per_class, vec![24; 10]);
    assert_eq!(d.test_per_class, vec![6; 10]);
    assert_eq!(
        d.split,
        SplitSource::Fraction {
            fraction: 0.2,
            seed: 0
        }
    );
    assert!(d.skipped.is_empty() && d.ignored == 0 && !d.lazy);
    // Every image saved at 28 x 28 (gray or RGB) comes back as its IDX bytes in all three
    // channels, under its own class.
    let mut by_pixels: HashMap<Vec<u8>, usize> = HashMap::new();
    for w in written
        .iter()
        .filter(|w| matches!(w.saved, Saved::Gray | Saved::Rgb))
    {
        by_pixels.insert(w.idx.clone(), w.label);
    }
    let mut exact = 0;
    for split in [&data.train, &data.test] {
        let set = split.in_memory().unwrap();
        for i in 0..set.len() {
            let img = set.image(i);
            assert_eq!(&img[..784], &img[784..1568]);
            assert_eq!(&img[..784], &img[1568..]);
            if let Some(&label) = by_pixels.get(&img[..784]) {
                assert_eq!(label, set.labels[i] as usize);
                exact += 1;
            }
        }
    }
    assert_eq!(exact, by_pixels.len());
    assert_eq!(exact, 240);
    // The same folder in one channel: the RGB images' luma is their gray level again.
    let gray = load_folder(
        &root,
        &FolderOptions {
            channels: Some(1),
            ..quiet()
        },
    )
    .unwrap();
    assert_eq!(gray.description.shape, [1, 28, 28]);
    let mut exact = 0;
    for split in [&gray.train, &gray.test] {
        let set = split.in_memory().unwrap();
        exact += (0..set.len())
            .filter(|&i| by_pixels.get(set.image(i)) == Some(&(set.labels[i] as usize)))
            .count();
    }
    assert_eq!(exact, 240);
    // A 20 x 24 file prepared for prediction: 28 x 28 bytes.
    let odd = written.iter().find(|w| w.saved == Saved::Odd).unwrap();
    assert_eq!(preprocess_file(&odd.path, [1, 28, 28]).unwrap().len(), 784);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_split_is_seeded_and_sizes_and_colour_follow_the_data_or_the_caller() {
    let root = temp_dir("policy");
    // Three 6 x 4 images and two 5 x 5 ones per class; one class holds a red image.
    for name in ["a", "b"] {
        for i in 0..3 {
            write_gray(&root.join(name).join(format!("w{i}.png")), 6, 4, |x, _| {
                x as u8 * 40
            });
        }
        for i in 0..2 {
            write_gray(&root.join(name).join(format!("s{i}.PNG")), 5, 5, |_, _| 9);
        }
    }
    let opts = FolderOptions {
        test_fraction: 0.4,
        ..quiet()
    };
    let gray = load_folder(&root, &opts).unwrap();
    assert_eq!(gray.description.shape, [1, 4, 6]);
    assert_eq!(gray.description.test_per_class, vec![2, 2]);
    write_colour(&root.join("b").join("red.jpeg"), 6, 4, [255, 0, 0]);
    let colour = load_folder(&root, &opts).unwrap();
    assert_eq!(colour.description.shape, [3, 4, 6]);
    assert_eq!(colour.description.train_per_class, vec![3, 4]);
    // Another seed, another split; the same seed, the same one.
    let split = |seed| {
        let d = load_folder(
            &root,
            &FolderOptions {
                seed,
                ..opts.clone()
            },
        )
        .unwrap();
        d.test.in_memory().unwrap().images.clone()
    };
    assert_eq!(split(1), split(1));
    assert_ne!(split(1), split(2));
    // The caller's shape wins; the red image in one channel is Pillow's L of red (76).
    let fixed = load_folder(
        &root,
        &FolderOptions {
            channels: Some(1),
            size: Some([2, 3]),
            test_fraction: 0.4,
            ..quiet()
        },
    )
    .unwrap();
    assert_eq!(fixed.description.shape, [1, 2, 3]);
    let red = preprocess_file(&root.join("b").join("red.jpeg"), [1, 2, 3]).unwrap();
    assert!(red.iter().all(|&v| v.abs_diff(76) <= 2), "{red:?}"); // JPEG is lossy
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn split_folders_give_the_test_split_and_must_agree_on_classes() {
    let root = temp_dir("splits");
    write_two_classes(&root.join("train"), 4);
    write_two_classes(&root.join("val"), 2);
    std::fs::write(root.join("README.txt"), "about").unwrap();
    std::fs::write(root.join("train").join("a").join(".DS_Store"), "x").unwrap();
    let data = load_folder(&root, &quiet()).unwrap();
    let d = &data.description;
    assert_eq!(d.split, SplitSource::Folder("val".into()));
    assert_eq!(
        (d.train_per_class.clone(), d.test_per_class.clone()),
        (vec![4, 4], vec![2, 2])
    );
    assert_eq!(d.ignored, 2);
    assert_eq!(data.test.label(0), 0);
    assert_eq!(data.test.label(3), 1);
    // A test class the training split lacks is named.
    write_gray(&root.join("val").join("c").join("0.png"), 8, 8, |_, _| 0);
    let e = error(&root, &quiet());
    assert!(
        e.contains(&format!("{}", root.join("val").join("c").display())),
        "{e}"
    );
    assert!(e.contains("the training split"), "{e}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_folders_are_errors_that_name_the_path_and_say_what_to_do() {
    let root = temp_dir("bad");
    let missing = root.join("nowhere");
    let e = error(&missing, &quiet());
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("does not exist"),
        "{e}"
    );
    std::fs::write(root.join("file.png"), "x").unwrap();
    let e = error(&root.join("file.png"), &quiet());
    assert!(e.contains("is a file, not a folder"), "{e}");
    std::fs::remove_file(root.join("file.png")).unwrap();
    let e = error(&root, &quiet());
    assert!(e.contains("holds no class folders"), "{e}");
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(root.join("b")).unwrap();
    let e = error(&root, &quiet());
    assert!(e.contains("holds no PNG or JPEG images"), "{e}");
    write_gray(&root.join("a").join("0.png"), 4, 4, |_, _| 1);
    let e = error(&root, &quiet());
    assert!(
        e.contains(&format!(
            "class folder {} holds no PNG",
            root.join("b").display()
        )),
        "{e}"
    );
    std::fs::remove_dir_all(root.join("b")).unwrap();
    let e = error(&root, &quiet());
    assert!(
        e.contains("one class folder (a)") && e.contains("at least two"),
        "{e}"
    );
    let e = error(
        &root,
        &FolderOptions {
            channels: Some(2),
            ..quiet()
        },
    );
    assert!(e.contains("1 (gray) or 3 (RGB)"), "{e}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_corrupt_image_is_skipped_and_named_but_many_are_an_error() {
    let root = temp_dir("corrupt");
    write_two_classes(&root, 60);
    let bad = root.join("a").join("7.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let data = load_folder(&root, &quiet()).unwrap();
    let d = &data.description;
    assert_eq!(d.skipped.len(), 1);
    assert_eq!(d.skipped[0].path, bad);
    assert!(
        d.skipped[0].reason.contains(&bad.display().to_string()),
        "{}",
        d.skipped[0].reason
    );
    assert_eq!(d.train_len() + d.test_len(), 119);
    assert_eq!(d.train_per_class[0] + d.test_per_class[0], 59);
    // 3 of 120 (2.5%) is over the 1% allowed; raising the allowance accepts them.
    for i in [8, 9] {
        std::fs::write(root.join("b").join(format!("{i}.png")), b"junk").unwrap();
    }
    let e = error(&root, &quiet());
    assert!(
        e.contains("3 of the 120 images") && e.contains("more than 1%"),
        "{e}"
    );
    let opts = FolderOptions {
        max_bad_fraction: 0.05,
        ..quiet()
    };
    assert_eq!(
        load_folder(&root, &opts).unwrap().description.skipped.len(),
        3
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_cache_is_reused_until_a_file_changes_and_a_corrupt_one_is_rebuilt() {
    let root = temp_dir("cache");
    let cache = temp_dir("cache-files");
    write_two_classes(&root, 5);
    let opts = FolderOptions {
        cache_dir: Some(cache.clone()),
        quiet: true,
        ..FolderOptions::default()
    };
    let first = load_folder(&root, &opts).unwrap();
    let CacheUse::Written(path) = first.description.cache.clone() else {
        panic!("{:?}", first.description.cache)
    };
    assert!(path.starts_with(&cache));
    let second = load_folder(&root, &opts).unwrap();
    assert_eq!(second.description.cache, CacheUse::Reused(path.clone()));
    let images = |d: &neurite::data::FolderData| d.train.in_memory().unwrap().images.clone();
    assert_eq!(images(&first), images(&second));
    // Touch a file: rebuilt.
    let file = std::fs::File::options()
        .append(true)
        .open(root.join("a").join("0.png"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    let third = load_folder(&root, &opts).unwrap();
    assert_eq!(third.description.cache, CacheUse::Written(path.clone()));
    // Damage the cache: ignored and rebuilt, same images.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let fourth = load_folder(&root, &opts).unwrap();
    assert_eq!(fourth.description.cache, CacheUse::Written(path.clone()));
    assert_eq!(images(&fourth), images(&first));
    assert_eq!(
        load_folder(&root, &opts).unwrap().description.cache,
        CacheUse::Reused(path)
    );
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn over_the_memory_budget_images_are_decoded_on_demand_to_the_same_bytes() {
    let root = temp_dir("lazy");
    write_fashion_folder(&root, 6);
    let eager = load_folder(&root, &quiet()).unwrap();
    let lazy = load_folder(
        &root,
        &FolderOptions {
            memory_budget: Some(10_000),
            ..quiet()
        },
    )
    .unwrap();
    assert!(lazy.description.lazy);
    assert!(matches!(lazy.train, FolderSplit::Lazy(_)));
    assert_eq!(lazy.train.shape(), [3, 28, 28]);
    for (a, b) in [(&eager.train, &lazy.train), (&eager.test, &lazy.test)] {
        assert_eq!(a.len(), b.len());
        let (mut x, mut y) = (vec![0u8; 2352], vec![0u8; 2352]);
        for i in 0..a.len() {
            a.read(i, &mut x).unwrap();
            b.read(i, &mut y).unwrap();
            assert_eq!((a.label(i), &x), (b.label(i), &y), "image {i}");
        }
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_throughput_function_prepares_every_image_of_every_pass() {
    let root = temp_dir("speed");
    let written = write_fashion_folder(&root, 2);
    let files: Vec<_> = written.iter().map(|w| w.path.clone()).collect();
    let t = decode_throughput(&files, [1, 28, 28], &Augment::crop_flip(), 2, 3).unwrap();
    assert_eq!(t.images, 60);
    assert!(t.images_per_second > 0.0);
    std::fs::remove_dir_all(&root).unwrap();
}

/// `NEURITE_FOLDER_BENCH=DIR cargo test --release --test folder -- --ignored --nocapture`:
/// images/s of decode + resize to 28 x 28 (gray) + crop/flip on 2 threads, over DIR's images
/// (`NEURITE_FOLDER_PASSES` passes, default 3, after one warm-up pass). The PyTorch side:
/// `bench/pytorch/imagefolder_loader.py DIR`.
#[test]
#[ignore]
fn folder_decode_throughput_on_two_threads() {
    let Ok(dir) = std::env::var("NEURITE_FOLDER_BENCH") else {
        eprintln!("set NEURITE_FOLDER_BENCH=DIR");
        return;
    };
    let passes = std::env::var("NEURITE_FOLDER_PASSES").map_or(3, |p| p.parse().unwrap());
    let scan = neurite::data::folder::scan::scan(Path::new(&dir)).unwrap();
    let files: Vec<_> = scan.train.iter().map(|f| f.path.clone()).collect();
    decode_throughput(&files, [1, 28, 28], &Augment::crop_flip(), 2, 1).unwrap(); // warm-up
    let t = decode_throughput(&files, [1, 28, 28], &Augment::crop_flip(), 2, passes).unwrap();
    println!(
        "neurite folder decode+resize+crop/flip, 2 threads: {} images in {:.2} s: {:.0} images/s",
        t.images, t.seconds, t.images_per_second
    );
}
