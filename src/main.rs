//! The `weir` command-line tool: run pipelines, generate data, benchmark.

mod bench;
mod bench_kafka;
mod cli;
mod generate;
mod run;
mod train;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let result = match args.command {
        cli::Command::Run(options) => run::run(options),
        cli::Command::Gen(options) => generate::generate(options),
        cli::Command::Bench(options) => bench::bench(options),
        cli::Command::Train(options) => train::train(options),
    };
    if let Err(error) = result {
        eprintln!("weir: error: {error:#}");
        std::process::exit(1);
    }
}
