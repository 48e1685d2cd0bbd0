//! `neurite bench WORKLOAD`: throughput of the spec's benchmark workloads.

use crate::kernels::gemm::{sgemm, Gemm};
use crate::kernels::parallel::num_threads;
use anyhow::bail;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Workload id: W5 (matrix product); `all` runs every workload available.
    workload: String,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 9)]
    repeats: usize,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
}

/// One measured figure.
pub struct Measurement {
    pub id: String,
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
}

/// Median seconds of `repeats` runs of `f` after two warm-up runs.
pub fn median_seconds(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn bench_w5(repeats: usize) -> Vec<Measurement> {
    [(1024, 1024, 1024), (128, 1024, 4096)]
        .iter()
        .map(|&(m, k, n)| {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
            let mut c = vec![0.0; m * n];
            let secs = median_seconds(repeats, || sgemm(Gemm::new(m, n, k), &a, &b, &mut c));
            Measurement {
                id: "W5".into(),
                what: format!("sgemm {m}x{k}x{n}"),
                value: 2.0 * (m * k * n) as f64 / secs / 1e9,
                unit: "GFLOP/s",
            }
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let id = args.workload.to_uppercase();
    let results = match id.as_str() {
        "W5" => bench_w5(args.repeats),
        "ALL" => bench_w5(args.repeats),
        other => bail!("unknown workload '{other}'; available: W5, all"),
    };
    for m in &results {
        if args.json {
            println!(
                "{{\"id\":\"{}\",\"what\":\"{}\",\"value\":{:.2},\"unit\":\"{}\",\"threads\":{}}}",
                m.id,
                m.what,
                m.value,
                m.unit,
                num_threads()
            );
        } else {
            println!(
                "{:<4} {:<40} {:>10.2} {}  ({} threads)",
                m.id,
                m.what,
                m.value,
                m.unit,
                num_threads()
            );
        }
    }
    Ok(0)
}
