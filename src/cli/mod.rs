//! The `neurite` command: argument parsing and one module per subcommand.

mod bench;
mod classic;
mod compare;
pub mod data;
mod eval;
mod gradcheck;
mod lm;
pub mod predict;
mod summary;
mod train;

use clap::{Parser, Subcommand};

/// neurite: train and check neural networks on the CPU.
#[derive(Parser, Debug)]
#[command(name = "neurite", version, about)]
struct Cli {
    /// Worker threads for the kernels (default: $NEURITE_NUM_THREADS, else all cores); more
    /// than 4 per CPU are capped there with a warning.
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every op's gradient against finite differences and print a table.
    Gradcheck(gradcheck::Args),
    /// Measure the speed of a benchmark workload (W1-W7, defined in docs/models.md).
    Bench(bench::Args),
    /// Train a zoo model on Fashion-MNIST, a folder of images or a CSV table (`neurite
    /// train --help` lists the models).
    Train(Box<train::Args>),
    /// Test accuracy and loss (or RMSE and MAE) of saved weights.
    Eval(eval::Args),
    /// The top classes of PNG or JPEG images, or predictions for the rows of a CSV table.
    Predict(predict::Args),
    /// The classical methods: perceptron, linear SVM, kernel SVM (and `eval` of a saved one).
    Classic(classic::Args),
    /// Character-level GPT: train, sample, eval.
    Lm(lm::Args),
    /// Every method at several training-set sizes: table, JSON and plot.
    Compare(compare::Args),
    /// A zoo model's layers, output shapes and parameter counts, totals and memory.
    Summary(summary::Args),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    // Before any thread starts: OpenBLAS on the widest kernels this CPU runs.
    crate::kernels::gemm::ensure_fast_kernels();
    let cli = Cli::parse();
    let threads = match requested_threads(cli.threads) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    crate::runtime::threads::init_threads(threads);
    // On a worker thread: each parallel kernel starts without waking this thread up again
    // (see `run_on_worker`).
    let result = crate::run_on_worker(move || match cli.command {
        Command::Gradcheck(args) => gradcheck::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Classic(args) => classic::run(args),
        Command::Lm(args) => lm::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Summary(args) => summary::run(args),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // Under mpirun, the rank that failed (rank 0 speaks for the job unprefixed).
            match ["OMPI_COMM_WORLD_RANK", "PMI_RANK"]
                .iter()
                .find_map(|k| std::env::var(k).ok())
                .filter(|r| r.trim() != "0")
            {
                Some(rank) => eprintln!("error: rank {}: {e:#}", rank.trim()),
                None => eprintln!("error: {e:#}"),
            }
            1
        }
    }
}

/// The thread count asked for: `--threads`, else `$NEURITE_NUM_THREADS` (unset or empty:
/// `None`, all cores). 0 or a variable that is not a whole number is an error.
fn requested_threads(flag: Option<usize>) -> anyhow::Result<Option<usize>> {
    if let Some(n) = flag {
        if n == 0 {
            anyhow::bail!("--threads must be at least 1 (leave it out to use every core)");
        }
        return Ok(Some(n));
    }
    let Ok(v) = std::env::var("NEURITE_NUM_THREADS") else {
        return Ok(ranks_share_of_cores());
    };
    if v.trim().is_empty() {
        return Ok(ranks_share_of_cores());
    }
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => anyhow::bail!(
            "NEURITE_NUM_THREADS={v:?} is not a whole number of at least 1; set it to a \
             thread count such as 4, or unset it to use every core"
        ),
    }
}

/// Under a launcher that started several ranks on this machine (`mpirun -np N`): this
/// rank's share of the cores (at least 1), so that N ranks do not each start a thread per
/// core. `None` (every core) otherwise.
fn ranks_share_of_cores() -> Option<usize> {
    let local: usize = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.trim().parse().ok())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (local > 1).then(|| (cores / local).max(1))
}

/// Errors when a split the command reads has no images: training on none, or scoring
/// none, must not pass for a result. `dir` is the data directory; `train` and `test` are
/// the splits to check.
pub(crate) fn check_splits(
    dir: &std::path::Path,
    train: Option<&crate::data::ImageDataset>,
    test: Option<&crate::data::ImageDataset>,
) -> anyhow::Result<()> {
    for (set, file) in [
        (train, "train-images-idx3-ubyte"),
        (test, "t10k-images-idx3-ubyte"),
    ] {
        if set.is_some_and(|s| s.n == 0) {
            anyhow::bail!(
                "{}: {file} holds 0 images; put the full Fashion-MNIST files there (or point \
                 --data at a directory that has them)",
                dir.display()
            );
        }
    }
    Ok(())
}
