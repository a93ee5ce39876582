//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "weir", version, about = "Weir: stream processing with machine-learning operators built in")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a pipeline from an input to an output.
    Run(RunOptions),
    /// Generate a seeded e-commerce click-stream.
    Gen(GenOptions),
    /// Benchmark a pipeline against a raw parsing baseline.
    Bench(BenchOptions),
    /// Learn click-through rates online from delayed labels; publish model versions.
    Train(crate::train::TrainOptions),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PipelineName {
    /// Per-item views, clicks and CTR in tumbling event-time windows.
    WindowStats,
    /// Every event scored by the CTR model given with `--model` (ONNX).
    CtrScore,
}

#[derive(Args, Clone)]
pub struct RunOptions {
    /// The pipeline to run.
    #[arg(value_enum)]
    pub pipeline: PipelineName,
    /// Input: a file, a glob (quoted) or a directory (`file://` prefix optional), or a Kafka
    /// topic: `kafka://HOST:PORT/TOPIC?group=G&from=earliest|latest|TIME&until=end|TIME&dlq=TOPIC`.
    #[arg(long)]
    pub input: String,
    /// Output: a .jsonl, .csv or .parquet file, `-` for stdout, or `kafka://HOST:PORT/TOPIC?key=FIELD`.
    #[arg(long)]
    pub output: String,
    /// Input format (default: from each file's extension).
    #[arg(long)]
    pub format: Option<weir_engine::format::FileFormat>,
    /// Worker threads per process.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Processes in the cluster (with --process and --hostfile).
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// This process's index in the cluster.
    #[arg(long, default_value_t = 0)]
    pub process: usize,
    /// File with one `host:port` per process.
    #[arg(long)]
    pub hostfile: Option<PathBuf>,
    /// Field holding the event time.
    #[arg(long, default_value = "ts")]
    pub time_field: String,
    /// How the event time is written: epoch-ms, epoch-s or rfc3339.
    #[arg(long, default_value = "epoch-ms")]
    pub time_format: weir_engine::time::TimeFormat,
    /// Tick in ms: event times are rounded up to it for progress tracking.
    #[arg(long, default_value_t = 1000)]
    pub tick_ms: u64,
    /// Allowed out-of-orderness in ms; older records are late.
    #[arg(long, default_value_t = 5000)]
    pub disorder_ms: u64,
    /// Load each input file whole and sort it by event time (for small unsorted logs).
    #[arg(long)]
    pub sort_files: bool,
    /// Replay at this multiple of real time instead of as fast as possible.
    #[arg(long)]
    pub speed: Option<f64>,
    /// Event time the source may run ahead of the sink, in ms.
    #[arg(long, default_value_t = 3_600_000)]
    pub max_ahead_ms: u64,
    /// Window length in ms.
    #[arg(long, default_value_t = 60_000)]
    pub window_ms: i64,
    /// Window slide in ms (default: the length, i.e. tumbling windows).
    #[arg(long)]
    pub slide_ms: Option<i64>,
    /// Dead-letter file (default: `<output>.deadletters.jsonl`).
    #[arg(long)]
    pub dead_letters: Option<PathBuf>,
    /// File for late records (default: count and drop them).
    #[arg(long)]
    pub late: Option<PathBuf>,
    /// The ONNX model `ctr-score` scores with (e.g. `models/ctr/ctr_mlp.onnx`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// `ctr-score`: run the model once this many events wait.
    #[arg(long, default_value_t = 1024)]
    pub max_batch: usize,
    /// `ctr-score`: cpu or cuda:N (falls back to the CPU with a warning when CUDA is not there).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GenFormat {
    Jsonl,
    Parquet,
}

#[derive(Args)]
pub struct GenOptions {
    /// Number of events (impressions, clicks and purchases together).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: GenFormat,
    /// Also write each impression's true click probability here (JSONL).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Impressions per second of event time.
    #[arg(long)]
    pub rate: Option<f64>,
}

#[derive(Args)]
pub struct BenchOptions {
    #[arg(value_enum)]
    pub pipeline: PipelineName,
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Worker counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Runs per configuration; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Where the generated input and outputs go.
    #[arg(long, default_value = "target/bench")]
    pub dir: PathBuf,
    /// Also run topic → pipeline → topic against the Kafka broker at HOST:PORT.
    #[arg(long)]
    pub kafka: Option<String>,
}
