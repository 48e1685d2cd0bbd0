//! The fuzzing loop: mutate a corpus entry, run the target under `catch_unwind`, count
//! executions and crashes, keep inputs that show a new behaviour.
//!
//! Without compiler instrumentation there is no coverage map; the loop keeps an input in the
//! corpus when the target's outcome is new: `Ok`, or an error message not seen before once
//! its numbers are dropped (so "promises 24" and "promises 25" are the same outcome). That
//! lets the corpus walk past one check to the next. A panic is a crash: its input is kept
//! (and written to `crash_dir`), one per panic location.

use super::mutate::Mutator;
use super::targets::Target;
use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How to fuzz a target.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// Executions to run (the seeds count).
    pub runs: u64,
    /// The mutator's seed.
    pub seed: u64,
    /// Where to write crashing inputs (`crash-N.bin` and its message in `crash-N.txt`).
    pub crash_dir: Option<PathBuf>,
    /// The most entries the corpus grows to.
    pub max_corpus: usize,
    /// Print a progress line this often (none when `None`).
    pub progress: Option<Duration>,
}

impl Default for FuzzOptions {
    fn default() -> FuzzOptions {
        FuzzOptions {
            runs: 10_000,
            seed: 1,
            crash_dir: None,
            max_corpus: 512,
            progress: None,
        }
    }
}

/// A crashing input: the panic message and where it was raised.
#[derive(Clone, Debug)]
pub struct Crash {
    /// `file:line` of the panic.
    pub location: String,
    /// The panic message.
    pub message: String,
    /// The input.
    pub input: Vec<u8>,
    /// Whether the crash is one of the target's known, separately tracked issues.
    pub known: bool,
}

/// What a fuzzing run found.
#[derive(Clone, Debug, Default)]
pub struct FuzzReport {
    /// Executions of the target.
    pub executions: u64,
    /// Executions that returned `Ok` (the input was accepted).
    pub accepted: u64,
    /// Executions that returned an error (the input was refused cleanly).
    pub refused: u64,
    /// Executions that panicked.
    pub crashes: u64,
    /// Of those, executions whose input the target marks as a known issue.
    pub known_crashes: u64,
    /// One crash per panic location.
    pub unique: Vec<Crash>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The corpus size at the end.
    pub corpus: usize,
    /// The slowest execution, in seconds.
    pub slowest: f64,
}

thread_local! {
    /// The last panic's location and message, recorded by the fuzzing panic hook.
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// A signature of an outcome: `ok`, or the error without its numbers (words holding a
/// digit, two-letter hex bytes), 160 chars at most.
fn outcome_key(result: &Result<(), String>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(e) => e
            .split_whitespace()
            .filter(|w| {
                let number = w.chars().any(|c| c.is_ascii_digit());
                let hex_byte = w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit());
                !number && !hex_byte
            })
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(160)
            .collect(),
    }
}

/// Runs `target` for `opts.runs` executions: its seeds first, then mutations of the corpus.
pub fn fuzz(target: &mut Target, opts: &FuzzOptions) -> FuzzReport {
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut seen_inputs: HashSet<Vec<u8>> = HashSet::new();
    for s in target.seeds.drain(..) {
        if seen_inputs.insert(s.clone()) {
            corpus.push(s);
        }
    }
    let mut outcomes: HashSet<String> = HashSet::new();
    let mut mutator = Mutator::new(opts.seed, target.max_len);
    mutator.dictionary = target.dictionary.clone();
    let mut report = FuzzReport::default();
    let mut crash_locations: HashSet<String> = HashSet::new();
    let start = Instant::now();
    let mut last_print = Instant::now();

    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some((location, message)));
    }));

    let seeds = corpus.len();
    for i in 0..opts.runs {
        let input = if (i as usize) < seeds {
            corpus[i as usize].clone()
        } else if corpus.is_empty() {
            mutator.mutate(&[], &[])
        } else {
            let a = mutator.below(corpus.len());
            let b = mutator.below(corpus.len());
            let structured = if target.safetensors && mutator.below(2) == 0 {
                super::safetensors_edit::edit(&mut mutator, &corpus[a])
            } else {
                None
            };
            structured.unwrap_or_else(|| mutator.mutate(&corpus[a], &corpus[b]))
        };
        let t0 = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        report.slowest = report.slowest.max(t0.elapsed().as_secs_f64());
        report.executions += 1;
        match result {
            Ok(outcome) => {
                if outcome.is_ok() {
                    report.accepted += 1;
                } else {
                    report.refused += 1;
                }
                let key = outcome_key(&outcome);
                if !outcomes.contains(&key) {
                    outcomes.insert(key);
                    if corpus.len() < opts.max_corpus && seen_inputs.insert(input.clone()) {
                        corpus.push(input);
                    }
                }
            }
            Err(_) => {
                report.crashes += 1;
                let known = (target.known_issue)(&input);
                if known {
                    report.known_crashes += 1;
                }
                let (location, message) = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_default();
                if crash_locations.insert(format!("{known}{location}")) {
                    if let Some(dir) = &opts.crash_dir {
                        save_crash(dir, report.unique.len(), &input, &location, &message);
                    }
                    report.unique.push(Crash {
                        location,
                        message,
                        input,
                        known,
                    });
                }
            }
        }
        if let Some(every) = opts.progress {
            if last_print.elapsed() >= every {
                last_print = Instant::now();
                eprintln!(
                    "{}: {} executions, {} crashes, corpus {}, {:.0}/s",
                    target.name,
                    report.executions,
                    report.crashes,
                    corpus.len(),
                    report.executions as f64 / start.elapsed().as_secs_f64()
                );
            }
        }
    }
    std::panic::set_hook(previous_hook);
    report.seconds = start.elapsed().as_secs_f64();
    report.corpus = corpus.len();
    report
}

/// Writes a crashing input and its message; a failure to write is reported, not fatal.
fn save_crash(dir: &std::path::Path, n: usize, input: &[u8], location: &str, message: &str) {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(format!("crash-{n}.bin")), input)?;
        std::fs::write(
            dir.join(format!("crash-{n}.txt")),
            format!("panicked at {location}: {message}\n"),
        )
    };
    if let Err(e) = write() {
        eprintln!("warning: cannot save a crash under {}: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_differ_by_words_not_numbers() {
        let key = |s: &str| outcome_key(&Err(s.to_string()));
        assert_eq!(
            key("holds 3 bytes, promises 24"),
            key("holds 7 bytes, promises 25")
        );
        assert_eq!(
            key("starts with ab cd 0f 1e"),
            key("starts with 00 01 02 ff")
        );
        assert_ne!(key("cut short"), key("trailing data"));
        assert_eq!(outcome_key(&Ok(())), "ok");
    }

    #[test]
    fn a_panicking_target_is_counted_and_new_outcomes_grow_the_corpus() {
        // Panics on inputs starting with 0xAB; errors name the first byte's parity.
        let mut t = Target {
            name: "test",
            seeds: vec![vec![0xAB], vec![1, 2], vec![2]],
            max_len: 16,
            dictionary: vec![],
            run: Box::new(|b: &[u8]| {
                if b.first() == Some(&0xAB) {
                    panic!("boom");
                }
                match b.first() {
                    Some(x) if x % 2 == 1 => Err("odd".into()),
                    Some(_) => Err("even".into()),
                    None => Ok(()),
                }
            }),
            known_issue: Box::new(|_| false),
            safetensors: false,
        };
        let r = fuzz(
            &mut t,
            &FuzzOptions {
                runs: 3,
                ..FuzzOptions::default()
            },
        );
        assert_eq!((r.executions, r.crashes, r.known_crashes), (3, 1, 0));
        assert_eq!((r.accepted, r.refused), (0, 2));
        assert_eq!(r.unique.len(), 1);
        assert_eq!(r.unique[0].message, "boom");
        assert!(
            r.unique[0].location.contains("runner.rs"),
            "{}",
            r.unique[0].location
        );
        assert_eq!(r.unique[0].input, vec![0xAB]);
        // The seeds are the corpus; "odd" and "even" were new outcomes but already in it.
        assert_eq!(r.corpus, 3);
    }
}
