//! Two and three `neurite train` processes started together on one `--out`: exactly one
//! runs, the others stop at once with an error that names the holder, and the directory
//! holds the files of that one run only.
//!
//! `NEURITE_TRIES` sets the tries per group size (default 3; the reliability issue's
//! closing note ran 40).

mod common;

use common::{temp_dir, write_split};
use neurite::checkpoint::Checkpoint;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An MNIST-layout directory of `n` noisy images per split.
fn data_dir(dir: &Path, n: u32) {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for prefix in ["train", "t10k"] {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let images: Vec<u8> = (0..n as usize * 784)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        write_split(dir, prefix, &images, &labels);
    }
}

/// Starts `count` identical runs on `out` but for their seeds, and returns each one's output
/// and wall time.
fn race(count: usize, data: &Path, out: &Path) -> Vec<(Output, Duration, u64)> {
    let children: Vec<_> = (0..count as u64)
        .map(|seed| {
            let child = Command::new(env!("CARGO_BIN_EXE_neurite"))
                .args([
                    "train",
                    "lenet5",
                    "--epochs",
                    "3",
                    "--batch-size",
                    "32",
                    "--json",
                ])
                .args(["--seed", &seed.to_string()])
                .arg("--data")
                .arg(data)
                .arg("--out")
                .arg(out)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, Instant::now(), seed)
        })
        .collect();
    children
        .into_iter()
        .map(|(child, started, seed)| {
            let output = child.wait_with_output().unwrap();
            (output, started.elapsed(), seed)
        })
        .collect()
}

#[test]
fn one_run_per_output_directory() {
    let tries = std::env::var("NEURITE_TRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = temp_dir("concurrent-runs");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    data_dir(&data, 600);
    let (mut refused_at_once, mut refused_later) = (0, 0);
    for count in [2, 3] {
        for t in 0..tries {
            let out = dir.join(format!("out-{count}-{t}"));
            let results = race(count, &data, &out);
            let winners: Vec<_> = results
                .iter()
                .filter(|(o, _, _)| o.status.success())
                .collect();
            assert_eq!(winners.len(), 1, "{count} runs, try {t}: {results:?}");
            let winner_seed = winners[0].2;
            for (o, took, _) in results.iter().filter(|(o, _, _)| !o.status.success()) {
                let stderr = String::from_utf8_lossy(&o.stderr);
                assert_eq!(o.status.code(), Some(1), "{stderr}");
                assert!(stderr.starts_with("error: "), "{stderr}");
                assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
                // Refused by the lock while the winner runs, or, when it started after the
                // winner had finished, by the winner's finished run.
                if stderr.contains("is writing to") {
                    assert!(stderr.contains("(pid "), "{stderr}");
                    refused_at_once += 1;
                    assert!(*took < Duration::from_secs(2), "refused after {took:?}");
                } else {
                    assert!(stderr.contains("already holds a lenet5 run"), "{stderr}");
                    refused_later += 1;
                }
            }
            // The directory is the winner's alone: its seed in the checkpoint, the model
            // file equal to the checkpoint's weights, one metrics line per epoch.
            let ck = Checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
            assert_eq!(ck.metadata["train.seed"], winner_seed.to_string());
            let model = Checkpoint::load(&out.join("model.safetensors")).unwrap();
            for (name, t) in &model.tensors {
                assert_eq!(ck.get(name).unwrap().to_vec(), t.to_vec(), "{name}");
            }
            let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
            assert_eq!(metrics.lines().count(), 3);
            let leftovers: Vec<_> = std::fs::read_dir(&out)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }
    eprintln!(
        "{} tries of 2 and 3 runs: {refused_at_once} refused by the lock, {refused_later} by the finished run",
        2 * tries
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
