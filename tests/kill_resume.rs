//! `kill -9` at random moments of `neurite train lenet5` and `neurite lm train`, each run
//! resumed until it finishes: every state a kill leaves can be resumed, no file is ever
//! corrupt, no temporary file outlives the next run, and the final model is bitwise the
//! model of an uninterrupted run, with the same metrics (both loops share the run scaffold,
//! `neurite::train::run`).
//!
//! `NEURITE_KILLS` sets the number of kills per command (default 6; the closing note of the
//! reliability issue ran 100), `NEURITE_KILL_SEED` the seed of the kill times.

mod common;

use common::{temp_dir, write_split};
use neurite::checkpoint::Checkpoint;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator for the kill times.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// An MNIST-layout directory: `n` noisy images per split, of 10 classes (a bright column
/// band whose place is the class), so that lenet5 has something to learn.
fn data_dir(dir: &Path, n_train: u32, n_test: u32) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let mut images = Vec::with_capacity(n as usize * 784);
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        for &label in &labels {
            for _y in 0..28 {
                for x in 0..28u64 {
                    let band = x / 3 == label as u64;
                    images.push((rng.below(80) + if band { 150 } else { 0 }) as u8);
                }
            }
        }
        write_split(dir, prefix, &images, &labels);
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_neurite"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn temporary_files(out: &Path) -> Vec<String> {
    std::fs::read_dir(out)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// What a kill loop saw.
#[derive(Debug, Default)]
struct Kills {
    /// Kills of a running process.
    kills: usize,
    /// Of those, kills that left a temporary file (the process was writing a file).
    into_writes: usize,
    /// Runs started (the first, and one resume after each kill).
    runs: usize,
}

/// Runs `args` (fresh, then with `--resume`), killing it `kills` times after a random delay
/// below `max_delay`, then lets it finish. After each kill, every file is whole. A run that
/// finishes before its kill while kills remain is started over (`--overwrite`).
fn kill_loop(
    args: &[String],
    out: &Path,
    kills: usize,
    max_delay: Duration,
    rng: &mut Rng,
) -> Kills {
    let mut seen = Kills::default();
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut start_over = false;
    loop {
        assert!(
            Instant::now() < deadline,
            "the kill loop did not finish: {seen:?}"
        );
        let mut run_args = args.to_vec();
        if start_over {
            run_args.push("--overwrite".into());
        } else if out.join("checkpoint.safetensors").exists() {
            run_args.push("--resume".into());
        }
        let mut child = spawn(&run_args);
        seen.runs += 1;
        if seen.kills < kills {
            let delay = rng.below(max_delay.as_millis() as u64 + 1);
            std::thread::sleep(Duration::from_millis(delay));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                child.wait().unwrap();
                seen.kills += 1;
                start_over = false;
                if !temporary_files(out).is_empty() {
                    seen.into_writes += 1;
                }
                // Whatever the moment, the checkpoint is whole (or not there yet).
                let ck = out.join("checkpoint.safetensors");
                if ck.exists() {
                    let ck = Checkpoint::load(&ck).unwrap();
                    ck.check_finite("checkpoint").unwrap();
                }
                continue;
            }
        }
        let result = child.wait_with_output().unwrap();
        assert!(
            result.status.success(),
            "{run_args:?} after {seen:?}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        if seen.kills == kills {
            return seen;
        }
        start_over = true;
    }
}

/// The same command once uninterrupted, once through the kill loop: same model bytes.
fn check(name: &str, args: impl Fn(&Path) -> Vec<String>) {
    let kills = env_number("NEURITE_KILLS", 6) as usize;
    let mut rng = Rng(env_number("NEURITE_KILL_SEED", 0x2545_F491_4F6C_DD1D) | 1);
    let dir = temp_dir(&format!("kill-{name}"));
    let straight = dir.join("straight");
    let started = Instant::now();
    let out = spawn(&args(&straight)).wait_with_output().unwrap();
    // Kills fall anywhere in a run's time.
    let max_delay = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let killed = dir.join("killed");
    let seen = kill_loop(&args(&killed), &killed, kills, max_delay, &mut rng);
    eprintln!("{name}: {seen:?}");
    assert_eq!(seen.kills, kills, "{seen:?}");
    assert_eq!(temporary_files(&killed), Vec::<String>::new());
    assert!(
        std::fs::read(straight.join("model.safetensors")).unwrap()
            == std::fs::read(killed.join("model.safetensors")).unwrap(),
        "{name}: model.safetensors differs from the uninterrupted run's"
    );
    // The checkpoints too, the optimizer's state included; only the timings in their
    // metrics differ.
    let a = Checkpoint::load(&straight.join("checkpoint.safetensors")).unwrap();
    let b = Checkpoint::load(&killed.join("checkpoint.safetensors")).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    for ((na, ta), (nb, tb)) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!(na, nb);
        assert!(ta.to_vec() == tb.to_vec(), "{name}: {na} differs");
    }
    let untimed = |ck: &Checkpoint| {
        let mut m = ck.metadata.clone();
        m.remove("metrics");
        m
    };
    assert_eq!(untimed(&a), untimed(&b));
    // The metrics of every evaluation, in the checkpoint and in the log, apart from timings.
    let metrics = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let record = v.as_object_mut().unwrap();
                for timing in [
                    "seconds",
                    "images_per_second",
                    "tokens_per_second",
                    "data_wait_seconds",
                ] {
                    record.remove(timing);
                }
                v
            })
            .collect()
    };
    let log = |dir: &Path| std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let straight_log = metrics(&log(&straight));
    assert!(!straight_log.is_empty());
    assert_eq!(
        straight_log,
        metrics(&log(&killed)),
        "{name}: metrics.jsonl"
    );
    assert_eq!(
        straight_log,
        metrics(&b.metadata["metrics"]),
        "{name}: metrics"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lenet5_killed_at_random_resumes_to_the_same_model() {
    let dir = temp_dir("kill-lenet5-data");
    data_dir(&dir, 1200, 200);
    let data = dir.to_str().unwrap().to_string();
    check("lenet5", |out| {
        [
            "train",
            "lenet5",
            "--data",
            &data,
            "--epochs",
            "6",
            "--batch-size",
            "32",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lm_killed_at_random_resumes_to_the_same_model() {
    let dir = temp_dir("kill-lm-text");
    let text: String = (0..300)
        .map(|i| format!("Line {i}: the quick brown fox jumps over the lazy dog.\n"))
        .collect();
    let path = dir.join("text.txt");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_string();
    check("lm", |out| {
        [
            "lm",
            "train",
            &path,
            "--steps",
            "120",
            "--eval-interval",
            "10",
            "--batch-size",
            "4",
            "--n-layer",
            "1",
            "--n-head",
            "2",
            "--n-embd",
            "32",
            "--block-size",
            "32",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
