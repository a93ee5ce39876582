//! Engine semantics: late records, table joins with retractions, the differential window path.

mod common;

use std::collections::BTreeMap;

use common::*;
use weir::pipelines::clickstream::EventKind;
use weir::pipelines::window_stats::{ItemEvent, ItemWindowStats, window_stats};
use weir::prelude::*;
use weir_engine::differential_dataflow::input::Input as _;
use weir_engine::timely::dataflow::operators::capture::Extract;
use weir_engine::timely::dataflow::operators::{Capture, Input};

fn item(time: i64, event: EventKind, item: &str) -> Timed<ItemEvent> {
    Timed::new(time, ItemEvent { event, item: item.into() })
}

#[test]
fn late_records_go_to_the_late_output_and_are_counted() {
    use EventKind::*;
    let records = vec![
        item(10_000, Impression, "a"),
        item(20_000, Impression, "a"),
        item(14_000, Click, "a"), // watermark is 20_000 - 5_000 = 15_000: late
        item(16_000, Impression, "b"), // within the allowed disorder: on time
        item(70_000, Impression, "a"),
        item(64_000, Click, "b"), // watermark 65_000: late
        item(66_000, Click, "a"), // on time
    ];
    let dir = tempfile::tempdir().unwrap();
    let late_path = dir.path().join("late.jsonl");
    let captured = MemorySink::new();
    let report = Pipeline::new(Execution::Threads(2))
        .late_output(&late_path)
        .run(Source::Memory(MemorySource::new(records).disorder(Disorder::Bounded(5_000))), Sink::Memory(captured.clone()), window_stats)
        .unwrap();
    assert_eq!(report.metrics.events_in, 7);
    assert_eq!(report.metrics.late, 2);
    let late: Vec<Timed<ItemEvent>> = read_jsonl(&late_path);
    assert_eq!(late, vec![item(14_000, Click, "a"), item(64_000, Click, "b")]);
    // Late records never reach the windows.
    let on_time: Vec<(i64, EventKind, String)> =
        [(10_000, Impression, "a"), (20_000, Impression, "a"), (16_000, Impression, "b"), (70_000, Impression, "a"), (66_000, Click, "a")]
            .into_iter()
            .map(|(t, k, i)| (t, k, i.to_string()))
            .collect();
    assert_eq!(captured.records(), reference_window_stats(&on_time, 60_000));
}

#[test]
fn sorting_whole_files_makes_nothing_late() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = generated(5_000, 4);
    let expected = reference_for(&events);
    events.reverse(); // wildly out of order
    let input = dir.path().join("reversed.jsonl");
    write_jsonl(&input, &events);
    let captured = MemorySink::new();
    let source = Source::Replay(ReplaySource::new(input.display().to_string(), TimeSpec::millis("ts")).disorder(Disorder::SortFile));
    let report = Pipeline::new(Execution::Threads(2)).run(source, Sink::Memory(captured.clone()), window_stats).unwrap();
    assert_eq!(report.metrics.late, 0);
    assert_eq!(captured.records(), expected);
}

/// Events `(user, item)` joined with an item catalog that changes at tick 3000.
#[test]
fn a_table_update_retracts_and_re_emits_exactly_the_affected_join_rows() {
    let captured = weir_engine::timely::execute_directly(|worker| {
        let (mut events, mut table, captured) = worker.dataflow::<Tick, _, _>(|scope| {
            let (events_in, events) = scope.new_input::<Vec<Timed<(String, String)>>>();
            let (table_in, table) = scope.new_collection::<(String, String), isize>();
            let changes = events.join_table(table, |e: &(String, String)| e.1.clone()).changes();
            (events_in, table_in, changes.capture())
        });
        let event = |t: i64, user: &str, item: &str| Timed::new(t, (user.to_string(), item.to_string()));
        table.advance_to(1000);
        table.insert(("i1".into(), "shoes".into()));
        table.insert(("i2".into(), "hats".into()));
        events.advance_to(1000);
        events.send(event(900, "u1", "i1"));
        events.send(event(950, "u2", "i2"));
        events.advance_to(2000);
        events.send(event(1500, "u3", "i1"));
        table.advance_to(3000);
        table.remove(("i1".into(), "shoes".into()));
        table.insert(("i1".into(), "boots".into()));
        events.advance_to(4000);
        table.advance_to(4000);
        table.close();
        events.close();
        while worker.step() {}
        captured
    });
    let mut changes: Vec<Change<(Timed<(String, String)>, String)>> = captured.extract().into_iter().flat_map(|(_, d)| d).collect();
    changes.sort();
    let change = |time: Tick, diff: isize, t: i64, user: &str, item: &str, category: &str| Change {
        time,
        diff,
        data: (Timed::new(t, (user.to_string(), item.to_string())), category.to_string()),
    };
    let mut expected = vec![
        change(1000, 1, 900, "u1", "i1", "shoes"),
        change(1000, 1, 950, "u2", "i2", "hats"),
        change(2000, 1, 1500, "u3", "i1", "shoes"),
        change(3000, -1, 900, "u1", "i1", "shoes"),
        change(3000, -1, 1500, "u3", "i1", "shoes"),
        change(3000, 1, 900, "u1", "i1", "boots"),
        change(3000, 1, 1500, "u3", "i1", "boots"),
    ];
    expected.sort();
    assert_eq!(changes, expected);
}

#[test]
fn differential_window_counts_equal_the_timely_fast_path() {
    let events = timed(&generated(8_000, 9));
    let spec = WindowSpec::sliding(60_000, 20_000);
    let tick = TickSpec::new(1000);
    let (fast, slow) = weir_engine::timely::execute_directly(move |worker| {
        let (mut input, fast, slow, probe) = worker.dataflow::<Tick, _, _>(|scope| {
            let (input, events) = scope.new_input::<Vec<Timed<ItemEvent>>>();
            let fast = events
                .clone()
                .window_fold(spec, tick, |e: &ItemEvent| e.item.to_string(), |n: &mut isize, _| *n += 1)
                .capture();
            let (probe, slow) = events.to_collection().window_count(spec, |e: &ItemEvent| e.item.to_string()).probe();
            (input, fast, slow.inner.capture(), probe)
        });
        for event in events {
            let at = tick.tick_of(event.time);
            if *input.time() < at {
                input.advance_to(at);
            }
            input.send(event);
        }
        input.close();
        while worker.step() {}
        assert!(probe.done());
        (fast, slow)
    });
    let fast: BTreeMap<(String, Window), isize> =
        fast.extract().into_iter().flat_map(|(_, d)| d).map(|r| ((r.key, r.window), r.value)).collect();
    let mut slow_counts: BTreeMap<((String, Window), isize), isize> = BTreeMap::new();
    for (data, _time, diff) in slow.extract().into_iter().flat_map(|(_, d)| d) {
        *slow_counts.entry(data).or_default() += diff;
    }
    let slow: BTreeMap<(String, Window), isize> = slow_counts.into_iter().filter(|(_, diff)| *diff != 0).map(|((key, count), diff)| {
        assert_eq!(diff, 1, "a final count appears exactly once");
        (key, count)
    }).collect();
    assert!(fast.len() > 500);
    assert_eq!(fast, slow);
}

#[test]
fn running_aggregates_emit_final_values_per_tick() {
    let records: Vec<Timed<ItemEvent>> = (0..100).map(|i| item(i * 100, EventKind::Impression, if i % 3 == 0 { "a" } else { "b" })).collect();
    let captured = MemorySink::new();
    Pipeline::new(Execution::Threads(2))
        .run(Source::Memory(MemorySource::new(records)), Sink::Memory(captured.clone()), |events: EventStream<'_, ItemEvent>, _ctx: &Context| {
            events.running_fold(|e: &ItemEvent| e.item.to_string(), |n: &mut u64, _| *n += 1)
        })
        .unwrap();
    let rows = captured.records();
    let last_a = rows.iter().filter(|r| r.key == "a").last().unwrap();
    let last_b = rows.iter().filter(|r| r.key == "b").last().unwrap();
    assert_eq!((last_a.value, last_b.value), (34, 66));
    // One row per key per tick that touched it.
    let tick = TickSpec::default();
    let a_ticks: std::collections::BTreeSet<Tick> = (0..100).filter(|i| i % 3 == 0).map(|i| tick.tick_of(i * 100)).collect();
    assert_eq!(rows.iter().filter(|r| r.key == "a").count(), a_ticks.len());
    assert!(rows.windows(2).all(|w| w[0].as_of <= w[1].as_of));
}

#[test]
fn window_stats_with_different_ticks_agree() {
    let events = timed(&generated(10_000, 12));
    let mut outputs: Vec<Vec<ItemWindowStats>> = Vec::new();
    for tick_ms in [1, 1000, 60_000] {
        let captured = MemorySink::new();
        Pipeline::new(Execution::Threads(2))
            .tick(TickSpec::new(tick_ms))
            .run(Source::Memory(MemorySource::new(events.clone())), Sink::Memory(captured.clone()), window_stats)
            .unwrap();
        outputs.push(captured.records());
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

#[test]
fn a_replay_with_speed_is_paced_by_event_time() {
    // 1.2 s of event time replayed at 4x real time cannot finish in less than 0.3 s of wall
    // time (a lower bound only: a busy machine may make it slower, never faster).
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("paced.jsonl");
    let lines: Vec<String> = (0..=12).map(|i| format!("{{\"ts\":{},\"event\":\"impression\",\"item\":\"a\"}}\n", 1_000 + i * 100)).collect();
    std::fs::write(&input, lines.concat()).unwrap();
    let captured = MemorySink::new();
    let source = Source::Replay(ReplaySource::new(input.display().to_string(), TimeSpec::millis("ts")).speed(4.0));
    let started = std::time::Instant::now();
    let report = Pipeline::new(Execution::Threads(1)).run(source, Sink::Memory(captured.clone()), window_stats).unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(300), "took only {:?}", started.elapsed());
    assert_eq!(report.metrics.events_in, 13);
    assert_eq!(captured.records()[0].views, 13);
}
