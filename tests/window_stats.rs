//! window-stats end to end: golden fixture, reference loop, worker counts, increments, formats.

mod common;

use common::*;
use weir::pipelines::clickstream::ClickEvent;
use weir::pipelines::window_stats::{ItemEvent, ItemWindowStats, window_stats};
use weir::prelude::*;
use weir_engine::deadletter::DeadLetter;
use weir_engine::sink::{Sink, open_writer};

fn replay(path: &std::path::Path) -> ReplaySource {
    ReplaySource::new(path.display().to_string(), TimeSpec::millis("ts"))
}

fn run_to_file(source: Source<ItemEvent>, out: &std::path::Path, workers: usize) -> RunReport {
    Pipeline::new(Execution::Threads(workers))
        .run(source, Sink::file(out).unwrap(), window_stats)
        .expect("the pipeline runs")
}

#[test]
fn fixture_matches_golden_output_and_dead_letters_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clicks.jsonl");
    let out = dir.path().join("stats.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let report = Pipeline::new(Execution::Threads(1))
        .dead_letters(&dead)
        .run(Source::Replay(replay(&fixture)), Sink::file(&out).unwrap(), window_stats)
        .unwrap();
    let expected = std::fs::read_to_string(fixture.with_file_name("window_stats.expected.jsonl")).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
    assert_eq!(report.metrics.events_in, 10, "every good line is processed");
    assert_eq!(report.metrics.dead_letters, 4);
    assert_eq!(report.metrics.events_out, 5);

    let letters: Vec<DeadLetter> = read_jsonl(&dead);
    let reasons: Vec<(&str, &str)> = letters.iter().map(|l| (l.position.as_str(), l.reason.as_str())).collect();
    assert_eq!(letters.len(), 4, "{reasons:?}");
    assert!(letters[0].position.starts_with("line 6 ") && letters[0].reason.starts_with("invalid JSON"), "{reasons:?}");
    assert!(letters[1].position.starts_with("line 8 ") && letters[1].reason.contains("missing time field \"ts\""), "{reasons:?}");
    assert!(letters[2].position.starts_with("line 9 ") && letters[2].reason.contains("not a number"), "{reasons:?}");
    assert!(letters[3].position.starts_with("line 11 ") && letters[3].reason.contains("teleport"), "{reasons:?}");
    assert_eq!(letters[0].raw, "this is not json");
    assert!(letters.iter().all(|l| l.source.ends_with("clicks.jsonl")));
}

#[test]
fn generated_events_match_a_plain_loop() {
    let dir = tempfile::tempdir().unwrap();
    let events = generated(30_000, 11);
    let input = dir.path().join("clicks.jsonl");
    write_jsonl(&input, &events);
    let out = dir.path().join("stats.jsonl");
    let report = run_to_file(Source::Replay(replay(&input)), &out, 1);
    let got: Vec<ItemWindowStats> = read_jsonl(&out);
    let expected = reference_for(&events);
    assert!(expected.len() > 1000, "the test needs many groups, got {}", expected.len());
    assert_eq!(got, expected);
    assert_eq!(report.metrics.events_in, 30_000);
    assert_eq!(report.metrics.late, 0);
}

#[test]
fn one_two_and_four_workers_write_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let events = generated(40_000, 5);
    let input = dir.path().join("clicks.jsonl");
    write_jsonl(&input, &events);
    let mut outputs = Vec::new();
    for workers in [1, 2, 4] {
        let out = dir.path().join(format!("stats-{workers}.jsonl"));
        // Small segments so that every worker really reads part of the file.
        let source = Source::Replay(replay(&input).segment_bytes(256 * 1024));
        run_to_file(source, &out, workers);
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert!(!outputs[0].is_empty());
    assert_eq!(outputs[0], outputs[1], "1 vs 2 workers");
    assert_eq!(outputs[0], outputs[2], "1 vs 4 workers");
}

#[test]
fn all_at_once_and_small_increments_agree() {
    let events = timed(&generated(20_000, 3));
    let mut results = Vec::new();
    for chunk in [usize::MAX, 1, 7, 1000] {
        let captured = MemorySink::new();
        Pipeline::new(Execution::Threads(2))
            .run(Source::Memory(MemorySource::new(events.clone()).chunk(chunk)), Sink::Memory(captured.clone()), window_stats)
            .unwrap();
        results.push(captured.stamped());
    }
    assert!(!results[0].is_empty());
    for (i, result) in results.iter().enumerate().skip(1) {
        assert_eq!(&results[0], result, "increment variant {i}");
    }
}

#[test]
fn segment_size_does_not_change_results() {
    let dir = tempfile::tempdir().unwrap();
    let events = generated(20_000, 8);
    let input = dir.path().join("clicks.jsonl");
    write_jsonl(&input, &events);
    let whole = dir.path().join("whole.jsonl");
    let pieces = dir.path().join("pieces.jsonl");
    run_to_file(Source::Replay(replay(&input)), &whole, 2);
    run_to_file(Source::Replay(replay(&input).segment_bytes(10_000)), &pieces, 2);
    assert_eq!(std::fs::read(&whole).unwrap(), std::fs::read(&pieces).unwrap());
}

#[test]
fn csv_parquet_and_a_directory_of_files_give_the_jsonl_results() {
    let dir = tempfile::tempdir().unwrap();
    let events = generated(15_000, 21);
    let jsonl = dir.path().join("clicks.jsonl");
    write_jsonl(&jsonl, &events);
    for format in [FileFormat::Csv, FileFormat::Parquet] {
        let path = dir.path().join(format!("clicks.{}", if format == FileFormat::Csv { "csv" } else { "parquet" }));
        let mut writer = open_writer::<ClickEvent>(&Sink::File { path: path.clone(), format }).unwrap();
        for event in &events {
            writer.write(0, "", event.clone()).unwrap();
        }
        writer.finish().unwrap();
    }
    // Dated files in a directory: the same events split in three.
    let daily = dir.path().join("daily");
    std::fs::create_dir(&daily).unwrap();
    for (i, part) in events.chunks(5_000).enumerate() {
        write_jsonl(&daily.join(format!("2026-01-0{}.jsonl", i + 1)), part);
    }
    let reference = dir.path().join("from-jsonl.jsonl");
    run_to_file(Source::Replay(replay(&jsonl)), &reference, 1);
    let expected = std::fs::read(&reference).unwrap();
    for (name, input) in [("csv", dir.path().join("clicks.csv")), ("parquet", dir.path().join("clicks.parquet")), ("dir", daily)] {
        let out = dir.path().join(format!("from-{name}.jsonl"));
        let report = run_to_file(Source::Replay(replay(&input)), &out, 2);
        assert_eq!(report.metrics.events_in, 15_000, "{name}");
        assert_eq!(report.metrics.dead_letters, 0, "{name}");
        assert_eq!(std::fs::read(&out).unwrap(), expected, "{name}");
    }
}

#[test]
fn csv_and_parquet_outputs_hold_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let events = generated(5_000, 2);
    let input = dir.path().join("clicks.jsonl");
    write_jsonl(&input, &events);
    let expected = reference_for(&events);
    let csv_out = dir.path().join("stats.csv");
    run_to_file(Source::Replay(replay(&input)), &csv_out, 1);
    let mut reader = csv::Reader::from_path(&csv_out).unwrap();
    let rows: Vec<ItemWindowStats> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows, expected);

    let parquet_out = dir.path().join("stats.parquet");
    run_to_file(Source::Replay(replay(&input)), &parquet_out, 1);
    // Read it back through the engine's own Parquet source, keyed by window end.
    let back: Vec<ItemWindowStats> = {
        let captured = MemorySink::new();
        let source = Source::Replay(ReplaySource::new(parquet_out.display().to_string(), TimeSpec::millis("window_start")));
        Pipeline::new(Execution::Threads(1))
            .run(source, Sink::Memory(captured.clone()), |events: EventStream<'_, ItemWindowStats>, _ctx: &Context| {
                use weir::engine::timely::dataflow::operators::vec::Map;
                events.map(|timed| timed.data)
            })
            .unwrap();
        captured.records()
    };
    let mut sorted = back.clone();
    sorted.sort_by(|a, b| (a.window_start, &a.item).cmp(&(b.window_start, &b.item)));
    assert_eq!(sorted, expected);
}
