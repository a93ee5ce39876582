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

/// CPU seconds this process has used so far (all threads, user + system), from `/proc`.
///
/// On a shared, loaded machine wall time swings with the neighbours; CPU time per event is far
/// steadier, so the benchmark reports both.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else { return f64::NAN };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

/// Wall and CPU seconds of one measured run.
#[derive(Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

impl Timing {
    fn measure<R>(run: impl FnOnce() -> anyhow::Result<R>) -> anyhow::Result<(R, Timing)> {
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        let result = run()?;
        Ok((result, Timing { wall: wall.elapsed().as_secs_f64(), cpu: cpu_seconds() - cpu }))
    }
    fn best(self, other: Timing) -> Timing {
        Timing { wall: self.wall.min(other.wall), cpu: self.cpu.min(other.cpu) }
    }
}

/// Reads and parses every line of `path` with typed serde_json on one thread.
fn raw_parse(path: &std::path::Path) -> anyhow::Result<u64> {
    raw_decode(path, |line| Ok(serde_json::from_slice(line)?))
}

/// The same loop with the decoder the replay uses ([`weir_engine::format::flat_json`]).
fn raw_flat_json(path: &std::path::Path) -> anyhow::Result<u64> {
    raw_decode(path, |line| Ok(weir_engine::format::flat_json::from_line(line)?))
}

fn raw_decode(path: &std::path::Path, decode: impl for<'a> Fn(&'a [u8]) -> anyhow::Result<RawEvent<'a>>) -> anyhow::Result<u64> {
    let file = std::fs::File::open(path)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut count = 0u64;
    while reader.read_until(b'\n', &mut line)? > 0 {
        let event = decode(&line).context("the bench input must parse")?;
        std::hint::black_box(&event);
        count += 1;
        line.clear();
    }
    Ok(count)
}

pub fn bench(options: BenchOptions) -> anyhow::Result<()> {
    if let PipelineName::CtrScore = options.pipeline {
        anyhow::bail!("weir bench measures window-stats; the scoring benchmarks are `cargo bench --bench scoring`");
    }
    std::fs::create_dir_all(&options.dir)?;
    let input = options.dir.join(format!("clicks-{}.jsonl", options.events));
    if !input.exists() {
        crate::generate::generate(GenOptions { events: options.events, seed: 7, out: input.clone(), format: GenFormat::Jsonl, truth: None, rate: None })?;
    }
    let size = std::fs::metadata(&input)?.len();
    println!("window-stats benchmark: {} events, {:.1} MB JSONL ({}), best of {}", options.events, size as f64 / 1e6, input.display(), options.repeat);

    // The two raw loops alternate, so that both see the same neighbours on a shared machine.
    let (mut baseline, mut flat): (Option<Timing>, Option<Timing>) = (None, None);
    for _ in 0..options.repeat {
        let (count, timing) = Timing::measure(|| raw_parse(&input))?;
        anyhow::ensure!(count == options.events, "baseline read {count} lines");
        baseline = Some(baseline.map_or(timing, |b| b.best(timing)));
        let (_, timing) = Timing::measure(|| raw_flat_json(&input))?;
        flat = Some(flat.map_or(timing, |b| b.best(timing)));
    }
    let baseline = baseline.context("--repeat must be at least 1")?;
    let events = options.events as f64;
    println!("{:<44} {:>12} {:>8} {:>8} {:>14} {:>9}", "variant", "events/s", "wall s", "ratio", "events/cpu-s", "cpu ratio");
    let row = |name: &str, t: Timing| {
        println!(
            "{:<44} {:>12.0} {:>8.3} {:>8.2} {:>14.0} {:>9.2}",
            name,
            events / t.wall,
            t.wall,
            baseline.wall / t.wall,
            events / t.cpu,
            baseline.cpu / t.cpu
        )
    };
    row("raw serde_json parse, 1 thread", baseline);
    row("raw flat_json parse (the replay's decoder)", flat.context("--repeat must be at least 1")?);

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
            model: None,
            max_batch: 1024,
            device: "cpu".into(),
            quiet: true,
        };
        let mut best: Option<Timing> = None;
        let mut outputs = 0;
        for _ in 0..options.repeat {
            let pipeline = crate::run::pipeline(&run_options)?;
            let (report, timing) = Timing::measure(|| crate::run::execute(&run_options, &pipeline))?;
            anyhow::ensure!(report.metrics.events_in == options.events, "pipeline read {} events", report.metrics.events_in);
            best = Some(best.map_or(timing, |b| b.best(timing)));
            outputs = report.metrics.events_out;
        }
        row(&format!("window-stats, {workers} worker(s) ({outputs} rows out)"), best.context("--repeat must be at least 1")?);
    }
    if let Some(bootstrap) = &options.kafka {
        crate::bench_kafka::bench_kafka(bootstrap, &input, options.events, &options.workers, options.repeat, events / baseline.wall)?;
    }
    println!("ratio: the variant's speed over the raw parse (wall, then CPU time; CPU time is steadier on a busy machine)");
    Ok(())
}
