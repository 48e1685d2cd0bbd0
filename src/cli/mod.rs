//! The `neurite` command: argument parsing and one module per subcommand.

mod bench;
mod classic;
mod compare;
mod eval;
mod gradcheck;
mod lm;
pub mod predict;
mod train;

use clap::{Parser, Subcommand};

/// neurite: train and check neural networks on the CPU.
#[derive(Parser, Debug)]
#[command(name = "neurite", version, about)]
struct Cli {
    /// Worker threads for the kernels (default: $NEURITE_NUM_THREADS, else all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every op's gradient against finite differences and print a table.
    Gradcheck(gradcheck::Args),
    /// Measure the speed of a benchmark workload (see shared spec: W1-W7).
    Bench(bench::Args),
    /// Train a zoo model (mlp, lenet5, resnet20, vit) on Fashion-MNIST.
    Train(train::Args),
    /// Test accuracy and loss of saved weights.
    Eval(eval::Args),
    /// The top classes of PNG or JPEG images.
    Predict(predict::Args),
    /// The classical methods: perceptron, linear SVM, kernel SVM (and `eval` of a saved one).
    Classic(classic::Args),
    /// Character-level GPT: train, sample, eval.
    Lm(lm::Args),
    /// Every method at several training-set sizes: table, JSON and plot.
    Compare(compare::Args),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    crate::kernels::parallel::init_threads(cli.threads);
    // On a worker thread: each parallel kernel starts without waking this thread up again
    // (see `run_on_worker`).
    let result = crate::kernels::parallel::run_on_worker(move || match cli.command {
        Command::Gradcheck(args) => gradcheck::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Classic(args) => classic::run(args),
        Command::Lm(args) => lm::run(args),
        Command::Compare(args) => compare::run(args),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
