//! `weir bench --kafka HOST:PORT`: the same pipeline from a Kafka topic to a Kafka topic, next
//! to the file-to-file run and the raw parsing baseline of the same `weir bench` run.

use std::io::BufRead;
use std::time::Instant;

use anyhow::Context as _;
use serde::Deserialize;
use weir_engine::prelude::*;
use weir_engine::sink::kafka::KafkaSink;
use weir_engine::source::kafka::client::{self, Outgoing};
use weir_engine::source::kafka::{KafkaSource, StopAt};
use weir_pipelines::window_stats::{ItemEvent, window_stats};

/// The fields a message needs besides its payload: its key and its timestamp.
#[derive(Deserialize)]
struct KeyAndTime<'a> {
    ts: i64,
    #[serde(borrow)]
    item: &'a str,
}

const PARTITIONS: usize = 4;

/// Writes `input` to a fresh 4-partition topic, then runs window-stats topic → topic for each
/// worker count; prints rows in the table `bench` started. `baseline_rate`: raw parse events/s.
pub fn bench_kafka(bootstrap: &str, input: &std::path::Path, events: u64, workers: &[usize], repeat: usize, baseline_rate: f64) -> anyhow::Result<()> {
    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let topic = format!("weir-bench-clicks-{run_id}");
    client::ensure_topic(bootstrap, &topic, PARTITIONS)?;
    let lines: Vec<String> = std::io::BufReader::new(std::fs::File::open(input)?).lines().collect::<Result<_, _>>()?;
    let parsed: Vec<KeyAndTime> = lines.iter().map(|l| serde_json::from_str(l)).collect::<Result<_, _>>().context("the bench input must parse")?;
    let started = Instant::now();
    let messages = lines.iter().zip(&parsed).map(|(line, e)| Outgoing {
        key: Some(e.item.as_bytes()),
        payload: line.as_bytes(),
        timestamp: Some(e.ts),
        partition: None,
    });
    let produced = client::produce(bootstrap, &topic, messages)?;
    anyhow::ensure!(produced == events, "produced {produced} of {events} events");
    let produce_secs = started.elapsed().as_secs_f64();
    println!(
        "{:<40} {:>12.0} {:>10.3} {:>8}",
        format!("produce to {topic} ({PARTITIONS} partitions)"),
        events as f64 / produce_secs,
        produce_secs,
        "-"
    );
    for &workers in workers {
        let mut best = f64::MAX;
        let mut outputs = 0;
        for attempt in 0..repeat {
            let source = KafkaSource::new(bootstrap, &topic).group(format!("weir-bench-{run_id}-{workers}-{attempt}")).until(StopAt::End).state_horizon_ms(61_000);
            let sink = KafkaSink::new(bootstrap, format!("weir-bench-stats-{run_id}-{workers}-{attempt}")).key("item");
            let report = Pipeline::new(Execution::Threads(workers)).run::<ItemEvent, _, _>(Source::Kafka(source), Sink::Kafka(sink), window_stats)?;
            anyhow::ensure!(report.metrics.events_in == events, "the pipeline read {} events", report.metrics.events_in);
            best = best.min(report.elapsed.as_secs_f64());
            outputs = report.metrics.events_out;
        }
        let rate = events as f64 / best;
        println!(
            "{:<40} {:>12.0} {:>10.3} {:>8.2}",
            format!("topic→window-stats→topic, {workers}w ({outputs} rows)"),
            rate,
            best,
            rate / baseline_rate
        );
    }
    Ok(())
}
