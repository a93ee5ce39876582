//! `weir bench`: a pipeline's events/s next to a raw baseline measured in the same run.

use std::io::BufRead;
use std::time::Instant;

use anyhow::Context as _;
use serde::Deserialize;

use crate::cli::{BenchOptions, GenFormat, GenOptions, PipelineName, RunOptions};

/// What the raw baseline parses: the same fields as the pipeline, borrowed, no engine.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[allow(dead_code)]
    ts: i64,
    #[allow(dead_code)]
    event: &'a str,
    #[serde(borrow)]
    #[allow(dead_code)]
    item: &'a str,
}

/// Reads and parses every line of `path` with typed serde_json on one thread.
fn raw_parse(path: &std::path::Path) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let file = std::fs::File::open(path)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut count = 0u64;
    while reader.read_until(b'\n', &mut line)? > 0 {
        let event: RawEvent = serde_json::from_slice(&line).context("the bench input must parse")?;
        std::hint::black_box(&event);
        count += 1;
        line.clear();
    }
    Ok((count, started.elapsed().as_secs_f64()))
}

pub fn bench(options: BenchOptions) -> anyhow::Result<()> {
    let PipelineName::WindowStats = options.pipeline;
    std::fs::create_dir_all(&options.dir)?;
    let input = options.dir.join(format!("clicks-{}.jsonl", options.events));
    if !input.exists() {
        crate::generate::generate(GenOptions { events: options.events, seed: 7, out: input.clone(), format: GenFormat::Jsonl, truth: None, rate: None })?;
    }
    let size = std::fs::metadata(&input)?.len();
    println!("window-stats benchmark: {} events, {:.1} MB JSONL ({}), best of {}", options.events, size as f64 / 1e6, input.display(), options.repeat);

    let mut baseline = f64::MAX;
    for _ in 0..options.repeat {
        let (count, secs) = raw_parse(&input)?;
        anyhow::ensure!(count == options.events, "baseline read {count} lines");
        baseline = baseline.min(secs);
    }
    let baseline_rate = options.events as f64 / baseline;
    println!("{:<40} {:>12} {:>10} {:>8}", "variant", "events/s", "seconds", "ratio");
    println!("{:<40} {:>12.0} {:>10.3} {:>8.2}", "raw serde_json parse, 1 thread", baseline_rate, baseline, 1.0);

    for &workers in &options.workers {
        let run_options = RunOptions {
            pipeline: options.pipeline,
            input: input.display().to_string(),
            output: options.dir.join(format!("window-stats-{workers}w.jsonl")).display().to_string(),
            format: None,
            workers,
            processes: 1,
            process: 0,
            hostfile: None,
            time_field: "ts".into(),
            time_format: weir_engine::time::TimeFormat::EpochMillis,
            tick_ms: 1000,
            disorder_ms: 5000,
            sort_files: false,
            speed: None,
            max_ahead_ms: 3_600_000,
            window_ms: 60_000,
            slide_ms: None,
            dead_letters: None,
            late: None,
            quiet: true,
        };
        let mut best = f64::MAX;
        let mut outputs = 0;
        for _ in 0..options.repeat {
            let pipeline = crate::run::pipeline(&run_options)?;
            let report = crate::run::execute(&run_options, &pipeline)?;
            anyhow::ensure!(report.metrics.events_in == options.events, "pipeline read {} events", report.metrics.events_in);
            best = best.min(report.elapsed.as_secs_f64());
            outputs = report.metrics.events_out;
        }
        let rate = options.events as f64 / best;
        println!(
            "{:<40} {:>12.0} {:>10.3} {:>8.2}",
            format!("window-stats, {workers} worker(s) ({outputs} rows out)"),
            rate,
            best,
            rate / baseline_rate
        );
    }
    if let Some(bootstrap) = &options.kafka {
        crate::bench_kafka::bench_kafka(bootstrap, &input, options.events, &options.workers, options.repeat, baseline_rate)?;
    }
    Ok(())
}
