//! A short fuzz of every parser a user can feed (see `docs/reliability-fuzzing.md`): each
//! target runs its seeds and mutations of them, and none may panic.

use neurite::fuzz::{fuzz, target, FuzzOptions, TARGETS};
use std::path::PathBuf;

/// Executions per target: about a second or two each in release, on one core.
const RUNS: u64 = 3_000;

#[test]
fn every_parser_survives_a_short_fuzz() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut failures = Vec::new();
    for name in TARGETS {
        let mut t = target(name, Some(&corpus.join(name))).expect("a listed target");
        let seeds = t.seeds.len();
        assert!(seeds >= 3, "{name}: only {seeds} seeds");
        let r = fuzz(
            &mut t,
            &FuzzOptions {
                runs: RUNS,
                seed: 2024,
                ..FuzzOptions::default()
            },
        );
        assert_eq!(r.executions, RUNS, "{name}");
        assert_eq!(r.accepted + r.refused + r.crashes, RUNS, "{name}");
        // Both sides of the parser were reached: inputs it accepts and inputs it refuses.
        assert!(r.accepted > 0, "{name}: no input accepted");
        assert!(r.refused > 0, "{name}: no input refused");
        assert!(
            r.corpus >= seeds,
            "{name}: corpus {} from {seeds} seeds",
            r.corpus
        );
        for c in r.unique.iter().filter(|c| !c.known) {
            failures.push(format!(
                "{name}: panic at {}: {} (input of {} bytes)",
                c.location,
                c.message,
                c.input.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The targets that read a path removed their scratch files when dropped.
    let prefix = format!("neurite-fuzz-{}-", std::process::id());
    for dir in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "scratch files left: {left:?}");
    }
}

#[test]
fn an_unknown_target_is_none() {
    assert!(target("no-such-parser", None).is_none());
    assert!(target("checkpoint-gpt2", None).is_none());
}
