//! `weir run`: runs a pipeline with a progress bar and a final summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use weir_engine::format::FileFormat;
use weir_engine::metrics::Metrics;
use weir_engine::sink::kafka::KafkaSink;
use weir_engine::source::kafka::KafkaSource;
use weir_engine::prelude::*;
use weir_operators::runtime::{Device, DeviceRequest, SessionOptions};
use weir_operators::score::{OnnxModel, PreparedModel, ScoreConfig};
use weir_pipelines::ctr_score::{CtrFeatures, CtrInput, CtrScore, ctr_score};
use weir_pipelines::window_stats::{ItemEvent, ItemWindowStats, window_stats_with};

use crate::cli::{PipelineName, RunOptions};

/// Builds the pipeline settings from the options (shared with `weir bench`).
pub fn pipeline(options: &RunOptions) -> anyhow::Result<Pipeline> {
    let execution = match &options.hostfile {
        Some(hostfile) => Execution::from_hostfile(options.workers, options.process, options.processes, hostfile)?,
        None if options.processes > 1 => anyhow::bail!("--processes {} needs --hostfile", options.processes),
        None => Execution::Threads(options.workers.max(1)),
    };
    let mut pipeline = Pipeline::new(execution).tick(TickSpec::new(options.tick_ms.max(1)));
    if let Some(path) = dead_letter_path(options) {
        pipeline = pipeline.dead_letters(path);
    }
    if let Some(late) = &options.late {
        pipeline = pipeline.late_output(late);
    }
    Ok(pipeline)
}

fn dead_letter_path(options: &RunOptions) -> Option<PathBuf> {
    let to_file = options.output != "-" && !options.output.starts_with("kafka://");
    options.dead_letters.clone().or_else(|| to_file.then(|| PathBuf::from(format!("{}.deadletters.jsonl", strip_scheme(&options.output)))))
}

fn strip_scheme(uri: &str) -> &str {
    uri.strip_prefix("file://").unwrap_or(uri)
}

pub fn source<T>(options: &RunOptions) -> anyhow::Result<Source<T>> {
    let time = TimeSpec::new(&options.time_field, options.time_format);
    if let Some(mut kafka) = KafkaSource::from_uri(&options.input, &time)? {
        kafka.out_of_orderness_ms = options.disorder_ms;
        kafka.max_ahead_ms = Some(options.max_ahead_ms);
        kafka.speed = options.speed;
        // A record's results are written at most one window (plus a tick) after it.
        kafka.state_horizon_ms = Some(options.window_ms.max(0) as u64 + options.tick_ms);
        if let Some(files) = kafka.backfill.as_mut() {
            files.format = options.format;
            files.disorder = Disorder::Bounded(options.disorder_ms);
        }
        return Ok(Source::Kafka(kafka));
    }
    let mut replay = ReplaySource::new(strip_scheme(&options.input), TimeSpec::new(&options.time_field, options.time_format));
    replay.format = options.format;
    replay.disorder = if options.sort_files { Disorder::SortFile } else { Disorder::Bounded(options.disorder_ms) };
    replay.speed = options.speed;
    replay.max_ahead_ms = Some(options.max_ahead_ms);
    Ok(Source::Replay(replay))
}

pub fn sink<T>(options: &RunOptions) -> anyhow::Result<Sink<T>> {
    if options.output == "-" || options.output == "stdout" {
        return Ok(Sink::Stdout);
    }
    if let Some(kafka) = KafkaSink::from_uri(&options.output)? {
        return Ok(Sink::Kafka(kafka));
    }
    let path = strip_scheme(&options.output);
    let format = FileFormat::from_path(path).with_context(|| format!("output {path:?} must end in .jsonl, .csv or .parquet"))?;
    Ok(Sink::File { path: path.into(), format })
}

/// Runs the chosen pipeline; returns its report.
pub fn execute(options: &RunOptions, pipeline: &Pipeline) -> anyhow::Result<RunReport> {
    let spec = WindowSpec::sliding(options.window_ms, options.slide_ms.unwrap_or(options.window_ms));
    let report = match options.pipeline {
        PipelineName::WindowStats => pipeline.run::<ItemEvent, ItemWindowStats, _>(source(options)?, sink(options)?, move |events, ctx| {
            window_stats_with(events, ctx, spec)
        })?,
        PipelineName::CtrScore => {
            let prepared = ctr_model(options)?;
            pipeline.run::<CtrInput, CtrScore, _>(source(options)?, sink(options)?, ctr_score(prepared))?
        }
    };
    Ok(report)
}

/// Loads and checks the `ctr-score` model before any worker starts.
fn ctr_model(options: &RunOptions) -> anyhow::Result<PreparedModel> {
    let path = options.model.as_deref().context("ctr-score needs --model, e.g. --model models/ctr/ctr_mlp.onnx")?;
    let device: Device = options.device.parse()?;
    let config = ScoreConfig {
        max_batch: options.max_batch,
        session: SessionOptions { device: DeviceRequest { device, strict: false }, ..SessionOptions::default() },
        tick: TickSpec::new(options.tick_ms.max(1)),
        ..ScoreConfig::default()
    };
    let model = OnnxModel::from_file(path)?;
    Ok(PreparedModel::prepare(&model, &CtrFeatures::default(), &config)?)
}

pub fn run(options: RunOptions) -> anyhow::Result<()> {
    let pipeline = pipeline(&options)?;
    let done = Arc::new(AtomicBool::new(false));
    let progress = (!options.quiet).then(|| spawn_progress(pipeline.metrics.clone(), done.clone()));
    let result = execute(&options, &pipeline);
    done.store(true, Ordering::Relaxed);
    if let Some(handle) = progress {
        let _ = handle.join();
    }
    let report = result.with_context(|| format!("pipeline {:?} failed", options.pipeline))?;
    let m = report.metrics;
    eprintln!(
        "weir run: process {}: {} events in, {} out, {} late, {} dead letters; {:.0} events/s; wall {:.2?}",
        report.process,
        m.events_in,
        m.events_out,
        m.late,
        m.dead_letters,
        report.events_per_second(),
        report.elapsed
    );
    if m.dead_letters > 0 {
        if let Some(path) = dead_letter_path(&options) {
            eprintln!("weir run: dead letters with reasons are in {}", path.display());
        }
    }
    Ok(())
}

fn spawn_progress(metrics: Metrics, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")
                .expect("a valid template"),
        );
        while !done.load(Ordering::Relaxed) {
            let m = metrics.snapshot();
            bar.set_length(m.bytes_total);
            bar.set_position(m.bytes_read.min(m.bytes_total));
            bar.set_message(format!("{} events, {} late, {} dead", m.events_in, m.late, m.dead_letters));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    })
}
