//! Fuzzes one parser: `cargo run --release --example fuzz -- TARGET [--runs N] [--seed S]`,
//! or `--write-seeds` to (re)write the small seeds under `fuzz/corpus/TARGET/`.
//!
//! Prints `target, executions, crashes, seconds` (and more) as one CSV line; crashing
//! inputs go to `fuzz/crashes/TARGET/`. Exits 1 when a crash that is not a known issue was
//! found, 2 on a usage error.

use neurite::fuzz::{fuzz, target, FuzzOptions, TARGETS};
use std::path::PathBuf;
use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "error: usage: fuzz TARGET [--runs N] [--seed S] [--write-seeds]; TARGET is one of: {}, all",
        TARGETS.join(", ")
    );
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first().cloned() else {
        usage()
    };
    let mut opts = FuzzOptions {
        runs: 1_000_000,
        progress: Some(Duration::from_secs(30)),
        ..FuzzOptions::default()
    };
    let mut write_seeds = false;
    let mut i = 1;
    while i < args.len() {
        let value = || {
            args.get(i + 1)
                .and_then(|v| v.replace('_', "").parse::<u64>().ok())
        };
        match args[i].as_str() {
            "--runs" => opts.runs = value().unwrap_or_else(|| usage()),
            "--seed" => opts.seed = value().unwrap_or_else(|| usage()),
            "--write-seeds" => {
                write_seeds = true;
                i -= 1;
            }
            _ => usage(),
        }
        i += 2;
    }
    let names: Vec<&str> = if name == "all" {
        TARGETS.to_vec()
    } else {
        vec![TARGETS
            .iter()
            .copied()
            .find(|t| *t == name)
            .unwrap_or_else(|| usage())]
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut new_crashes = false;
    println!(
        "target,executions,accepted,refused,crashes,known_crashes,unique,seconds,exec_per_s,corpus,slowest_s"
    );
    for name in names {
        let corpus_dir = root.join("corpus").join(name);
        if write_seeds {
            let t = target(name, None).expect("a listed target");
            std::fs::create_dir_all(&corpus_dir).expect("create the corpus directory");
            for (k, s) in neurite::fuzz::targets::small_seeds(&t).iter().enumerate() {
                std::fs::write(corpus_dir.join(format!("seed-{k}")), s).expect("write a seed");
            }
            continue;
        }
        let mut t = target(name, Some(&corpus_dir)).expect("a listed target");
        let r = fuzz(
            &mut t,
            &FuzzOptions {
                crash_dir: Some(root.join("crashes").join(name)),
                ..opts.clone()
            },
        );
        println!(
            "{name},{},{},{},{},{},{},{:.1},{:.0},{},{:.3}",
            r.executions,
            r.accepted,
            r.refused,
            r.crashes,
            r.known_crashes,
            r.unique.len(),
            r.seconds,
            r.executions as f64 / r.seconds.max(1e-9),
            r.corpus,
            r.slowest
        );
        for c in &r.unique {
            eprintln!(
                "{name}: {}crash at {}: {}",
                if c.known { "known " } else { "" },
                c.location,
                c.message
            );
            new_crashes |= !c.known;
        }
    }
    std::process::exit(i32::from(new_crashes));
}
