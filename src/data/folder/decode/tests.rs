//! Tests of reading and preparing one image file.

use super::*;
use image::{GrayImage, Luma, Rgba, RgbaImage};

#[test]
fn a_file_that_is_not_an_image_is_named() {
    let path = std::env::temp_dir().join(format!("neurite-not-image-{}.png", std::process::id()));
    std::fs::write(&path, b"hello, I am text").unwrap();
    let err = format!("{:#}", read_image(&path).unwrap_err());
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(!err.contains('\n'));
    std::fs::remove_file(&path).unwrap();
}

/// A PNG file of `w` x `h` gray pixels cut after its header: signature, IHDR and an
/// empty IDAT chunk (the decoder reads up to the first IDAT for the size).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit gray, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for chunk in [ihdr, b"IDAT".to_vec()] {
        out.extend_from_slice(&(chunk.len() as u32 - 4).to_be_bytes());
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    out
}

/// The CRC-32 of PNG chunks (IEEE, reflected).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_huge_image_is_refused_from_its_header() {
    // 20000 x 20000 = 400 megapixels, claimed by a 33-byte header with no data.
    let err = decode_image(std::io::Cursor::new(png_header(20000, 20000)), "big.png")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("big.png is a 20000 x 20000 image (400.0 megapixels)"),
        "{err}"
    );
    assert!(err.contains("at most 50 megapixels"), "{err}");
    // The same file on disk: the error names it.
    let path = std::env::temp_dir().join(format!("neurite-big-{}.png", std::process::id()));
    std::fs::write(&path, png_header(20000, 20000)).unwrap();
    let err = format!("{:#}", read_image(&path).unwrap_err());
    assert!(
        err.contains(&format!("{} is a 20000 x 20000", path.display())),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
    // Just under the limit the header passes and the missing data is the error.
    let err = decode_image(std::io::Cursor::new(png_header(10000, 5000)), "ok.png")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("ok.png is not a PNG or JPEG image"),
        "{err}"
    );
}

#[test]
fn colour_becomes_pillow_luma_or_rgb_planes_and_alpha_goes_over_white() {
    // Four pixels: pure red, green, blue (opaque), and black at half opacity.
    let img = RgbaImage::from_fn(4, 1, |x, _| {
        Rgba(match x {
            0 => [255, 0, 0, 255],
            1 => [0, 255, 0, 255],
            2 => [0, 0, 255, 255],
            _ => [0, 0, 0, 128],
        })
    });
    let img = DynamicImage::ImageRgba8(img);
    // Pillow: L(255,0,0) = 76, L(0,255,0) = 150, L(0,0,255) = 29. Black at a = 128 over
    // white: 255 * 127 / 255 = 127.
    assert_eq!(to_planes(&img, 1), vec![76, 150, 29, 127]);
    assert_eq!(
        to_planes(&img, 3),
        vec![255, 0, 0, 127, 0, 255, 0, 127, 0, 0, 255, 127]
    );
    assert_eq!((luma(10, 10, 10), luma(255, 255, 255)), (10, 255));
}

#[test]
fn gray_is_repeated_into_three_channels_and_kept_as_one() {
    let img = DynamicImage::ImageLuma8(GrayImage::from_fn(3, 2, |x, y| Luma([(x * 10 + y) as u8])));
    let one = to_planes(&img, 1);
    assert_eq!(one, vec![0, 10, 20, 1, 11, 21]);
    assert_eq!(to_planes(&img, 3), [one.clone(), one.clone(), one].concat());
}

#[test]
fn a_file_is_prepared_as_decoded_converted_and_resized() {
    let dir = std::env::temp_dir().join(format!("neurite-prep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("half.png");
    // 4 x 2, left half black, right half white, saved as RGB.
    let img = image::RgbImage::from_fn(4, 2, |x, _| image::Rgb([if x < 2 { 0 } else { 255 }; 3]));
    img.save(&path).unwrap();
    // Shrunk to 2 x 1 (rows kept): the widened triangle of output 0 (centre 1.0) weighs
    // inputs 0, 1, 2 by 0.75, 0.75, 0.25 (over 1.75), so 255 * 0.25 / 1.75 = 36.4 -> 36;
    // output 1 mirrors it: 255 - 36 = 219.
    assert_eq!(preprocess_file(&path, [1, 1, 2]).unwrap(), vec![36, 219]);
    assert_eq!(
        preprocess_file(&path, [3, 1, 2]).unwrap(),
        vec![36, 219, 36, 219, 36, 219]
    );
    let header = read_header(&path).unwrap();
    assert_eq!((header.width, header.height, header.colour), (4, 2, true));
    let err = preprocess_file(&path, [2, 1, 2]).unwrap_err().to_string();
    assert!(err.contains("1 or 3 channels"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
