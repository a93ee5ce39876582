//! Kafka end to end, against a real Apache Kafka broker (`scripts/kafka/start.sh`; the test
//! command starts one). The broker is found at `WEIR_KAFKA_BOOTSTRAP` (default
//! `127.0.0.1:9092`); without one every test here fails with a message saying so. Each test
//! uses topics and groups of its own, so they run in parallel.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use weir::pipelines::clickstream::ClickEvent;
use weir::pipelines::window_stats::{ItemEvent, ItemWindowStats, window_stats};
use weir::prelude::*;
use weir_engine::sink::kafka::KafkaSink;
use weir_engine::source::kafka::client::{self, Outgoing};
use weir_engine::source::kafka::{KafkaDeadLetter, KafkaSource, StopAt};

/// The suite's broker; panics with instructions when none answers.
fn bootstrap() -> String {
    let address = std::env::var("WEIR_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    if let Err(error) = client::partition_count(&address, "weir-probe") {
        panic!("these tests need a Kafka broker at {address} (scripts/kafka/start.sh starts one; scripts/test.sh does it for you): {error}");
    }
    address
}

/// A topic or group name no other test or run uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Writes the events to a new topic, keyed by item, stamped with their event time.
fn produce_events(bootstrap: &str, topic: &str, partitions: usize, events: &[ClickEvent]) {
    client::ensure_topic(bootstrap, topic, partitions).unwrap();
    let lines: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    let messages = events.iter().zip(&lines).map(|(e, line)| Outgoing {
        key: Some(e.item.as_bytes()),
        payload: line.as_bytes(),
        timestamp: Some(e.ts),
        partition: None,
    });
    assert_eq!(client::produce(bootstrap, topic, messages).unwrap(), events.len() as u64);
}

/// The output topic's messages as JSON lines (one partition: the sink's canonical order).
fn topic_lines(bootstrap: &str, topic: &str) -> Vec<String> {
    client::read_topic(bootstrap, topic).unwrap().into_iter().map(|m| String::from_utf8(m.payload).unwrap()).collect()
}

/// window-stats from a file replay with 2 workers: the expected output, as lines.
fn file_replay_lines(dir: &Path, events: &[ClickEvent]) -> Vec<String> {
    let input = dir.join("clicks.jsonl");
    write_jsonl(&input, events);
    let out = dir.join("from-file.jsonl");
    Pipeline::new(Execution::Threads(2))
        .run(Source::Replay(ReplaySource::new(input.display().to_string(), TimeSpec::millis("ts"))), Sink::file(&out).unwrap(), window_stats)
        .unwrap();
    std::fs::read_to_string(&out).unwrap().lines().map(String::from).collect()
}

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// A child process that is killed when the test ends, also when it fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `weir run` child whose stderr goes to `log`, with the Kafka source's trace on, so that a
/// test that gives up on it can say what it was doing.
struct Traced {
    child: KillOnDrop,
    log: PathBuf,
}

impl Traced {
    /// `weir run window-stats` on two workers from the topic URI `input` to the topic URI
    /// `output`, with `extra` arguments.
    fn window_stats(input: String, output: String, extra: &[&str], log: &Path) -> Self {
        let mut command = weir();
        command.args(["run", "window-stats", "--quiet", "--workers", "2"]).args(extra).arg("--input").arg(input).arg("--output").arg(output);
        Traced::spawn(command, log)
    }

    fn spawn(mut command: Command, log: &Path) -> Self {
        command.env("WEIR_TRACE_KAFKA", "1").stderr(std::fs::File::create(log).unwrap());
        Traced { child: KillOnDrop(command.spawn().unwrap()), log: log.to_owned() }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Polls `condition` while the child runs; panics with its log when the child ends first
    /// or `limit` passes.
    fn wait_until(&mut self, what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
        let started = Instant::now();
        while !condition() {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                panic!("the run ended ({status}) before {what}; its log:\n{}", self.log());
            }
            assert!(started.elapsed() < limit, "timed out after {limit:?} waiting until {what}; the run's log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn still_running(&mut self) -> bool {
        self.child.0.try_wait().unwrap().is_none()
    }
}

/// Asserts that `got` holds every expected line and nothing else; returns the duplicates.
fn assert_complete(got: &[String], expected: &[String]) -> usize {
    let expected_set: BTreeSet<&String> = expected.iter().collect();
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for line in got {
        assert!(expected_set.contains(line), "an output row that the file replay does not have: {line}");
        *counts.entry(line).or_default() += 1;
    }
    let missing: Vec<&&String> = expected_set.iter().filter(|l| !counts.contains_key(**l)).collect();
    assert!(missing.is_empty(), "{} of {} rows missing, e.g. {:?}", missing.len(), expected.len(), missing.first());
    got.len() - expected.len()
}

/// How many messages of `topic` the group has committed, over all partitions.
fn committed_total(bootstrap: &str, group: &str, topic: &str) -> i64 {
    client::committed_offsets(bootstrap, group, topic).map(|c| c.iter().filter_map(|(o, _)| *o).sum()).unwrap_or(0)
}

#[test]
fn a_bounded_topic_replay_equals_the_file_replay_byte_for_byte() {
    let bootstrap = bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let events = generated(100_000, 31);
    let expected = file_replay_lines(dir.path(), &events);
    let (input, output) = (unique("clicks"), unique("stats"));
    produce_events(&bootstrap, &input, 4, &events);

    let source = KafkaSource::new(&bootstrap, &input).group(unique("g")).until(StopAt::End).state_horizon_ms(61_000);
    let sink = KafkaSink::new(&bootstrap, &output).key("item");
    let report = Pipeline::new(Execution::Threads(2)).run(Source::Kafka(source), Sink::Kafka(sink), window_stats).unwrap();
    assert_eq!(report.metrics.events_in, 100_000);
    assert_eq!((report.metrics.late, report.metrics.dead_letters, report.metrics.delivery_errors), (0, 0, 0));

    let got = client::read_topic(&bootstrap, &output).unwrap();
    assert!(expected.len() > 1000, "the test needs many rows, got {}", expected.len());
    let lines: Vec<String> = got.iter().map(|m| String::from_utf8(m.payload.clone()).unwrap()).collect();
    assert_eq!(lines.join("\n"), expected.join("\n"));
    // Keyed by item.
    let first: ItemWindowStats = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(got[0].key.as_deref(), Some(first.item.as_bytes()));
}

#[test]
fn a_killed_consumer_resumes_from_its_group_and_loses_nothing() {
    let bootstrap = bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let events = generated(100_000, 32);
    let expected = file_replay_lines(dir.path(), &events);
    let (input, output, group) = (unique("clicks"), unique("stats"), unique("g"));
    produce_events(&bootstrap, &input, 4, &events);
    let run = |extra: &[&str], log: &Path| {
        Traced::window_stats(format!("kafka://{bootstrap}/{input}?group={group}&until=end"), format!("kafka://{bootstrap}/{output}"), extra, log)
    };
    // ~450 s of event time at 30× real time: about 15 s, so it is still running when killed.
    let mut first = run(&["--speed", "30"], &dir.path().join("first.log"));
    first.wait_until("the first run has committed a fifth of the input", Duration::from_secs(90), || {
        committed_total(&bootstrap, &group, &input) >= 20_000
    });
    assert!(first.still_running(), "the first run ended before it could be killed");
    drop(first);
    let written = topic_lines(&bootstrap, &output).len();
    assert!(written > 0 && written < expected.len(), "killed mid-way: {written} of {} rows written", expected.len());

    let second_log = dir.path().join("second.log");
    let mut second = run(&[], &second_log);
    assert!(wait(&mut second.child.0, Duration::from_secs(120)).success(), "the restarted run failed:\n{}", second.log());
    // It resumed from the committed offsets rather than from the start.
    let summary = second.log();
    let read: u64 = summary.split(" events in").next().and_then(|s| s.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{summary}"));
    assert!(read > 0 && read < 100_000, "the restart read {read} events");
    // A finished bounded run commits everything it read (after its sink has written it all).
    assert_eq!(committed_total(&bootstrap, &group, &input), events.len() as i64, "the final commit");
    let got = topic_lines(&bootstrap, &output);
    let duplicates = assert_complete(&got, &expected);
    eprintln!("kill and restart: {written} rows before the kill, {read} events re-read, {} rows in all, {} expected, {duplicates} duplicates", got.len(), expected.len());
}

/// A broker of this test's own (other ports, other folder), so the suite's broker stays up.
struct OwnBroker {
    env: Vec<(&'static str, String)>,
}

impl OwnBroker {
    fn start(dir: &Path) -> Self {
        let env = vec![
            ("WEIR_KAFKA_PORT", free_port().to_string()),
            ("WEIR_KAFKA_CONTROLLER_PORT", free_port().to_string()),
            ("WEIR_KAFKA_DIR", dir.display().to_string()),
        ];
        let broker = OwnBroker { env };
        broker.script("start.sh", &[]);
        broker
    }
    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.env[0].1)
    }
    fn script(&self, name: &str, args: &[&str]) {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "scripts", "kafka", name].iter().collect();
        let status = Command::new(path).args(args).envs(self.env.iter().map(|(k, v)| (*k, v.as_str()))).status().unwrap();
        assert!(status.success(), "scripts/kafka/{name} failed");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.script("stop.sh", &[]);
    }
}

#[test]
fn a_pipeline_survives_a_broker_restart() {
    bootstrap(); // the suite's broker must be there too: the scripts it uses are the same
    let dir = tempfile::tempdir().unwrap();
    let broker = OwnBroker::start(&dir.path().join("broker"));
    let bootstrap = broker.bootstrap();
    let events = generated(100_000, 33);
    let expected = file_replay_lines(dir.path(), &events);
    let (input, output) = (unique("clicks"), unique("stats"));
    produce_events(&bootstrap, &input, 4, &events);

    let mut run = Traced::window_stats(format!("kafka://{bootstrap}/{input}?until=end"), format!("kafka://{bootstrap}/{output}"), &["--speed", "40"], &dir.path().join("run.log"));
    run.wait_until("the pipeline has written output", Duration::from_secs(90), || {
        client::read_topic(&bootstrap, &output).map(|m| !m.is_empty()).unwrap_or(false)
    });
    assert!(run.still_running(), "the pipeline ended before the broker restart");
    broker.script("stop.sh", &[]);
    broker.script("start.sh", &["--keep-data"]);
    let status = wait(&mut run.child.0, Duration::from_secs(180));
    assert!(status.success(), "the pipeline failed across the broker restart:\n{}", run.log());
    let got = topic_lines(&bootstrap, &output);
    let duplicates = assert_complete(&got, &expected);
    eprintln!("broker restart: {} rows, {duplicates} duplicates", got.len());
}

#[test]
fn malformed_messages_go_to_the_dead_letter_topic_and_good_ones_are_processed() {
    let bootstrap = bootstrap();
    let events = generated(2_000, 34);
    let (input, output, dlq) = (unique("clicks"), unique("stats"), unique("dlq"));
    client::ensure_topic(&bootstrap, &input, 2).unwrap();
    let good: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    let bad = [
        ("this is not json", "invalid JSON"),
        (r#"{"event":"click","item":"i1"}"#, "missing time field \"ts\""),
        (r#"{"ts":"yesterday","event":"click","item":"i1"}"#, "not a number"),
        (r#"{"ts":1767225600000,"event":"teleport","item":"i1"}"#, "teleport"),
        (r#"{"ts":1767225600000,"event":"click"}"#, "missing field `item`"),
    ];
    // Good events alternate between the partitions; bad ones go to partition 1, after the
    // first 100 good ones there, so their offsets are known.
    let mut messages = Vec::new();
    let mut expected_letters = Vec::new();
    let mut offsets = [0i64; 2];
    for (i, line) in good.iter().enumerate() {
        let partition = (i % 2) as i32;
        messages.push(Outgoing { key: None, payload: line.as_bytes(), timestamp: None, partition: Some(partition) });
        offsets[partition as usize] += 1;
        if i == 200 {
            for (raw, reason) in bad {
                messages.push(Outgoing { key: None, payload: raw.as_bytes(), timestamp: None, partition: Some(1) });
                expected_letters.push((offsets[1], reason, raw));
                offsets[1] += 1;
            }
        }
    }
    client::produce(&bootstrap, &input, messages).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let source = KafkaSource::new(&bootstrap, &input).until(StopAt::End).dead_letter_topic(&dlq);
    let report = Pipeline::new(Execution::Threads(2))
        .dead_letters(dir.path().join("dead.jsonl"))
        .run(Source::Kafka(source), Sink::Kafka(KafkaSink::new(&bootstrap, &output)), window_stats)
        .unwrap();
    assert_eq!(report.metrics.events_in, 2_000, "every good message is processed");
    assert_eq!(report.metrics.dead_letters, 5);
    let got: Vec<ItemWindowStats> = topic_lines(&bootstrap, &output).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got, reference_for(&events));

    let letters: Vec<KafkaDeadLetter> =
        client::read_topic(&bootstrap, &dlq).unwrap().iter().map(|m| serde_json::from_slice(&m.payload).unwrap()).collect();
    assert_eq!(letters.len(), 5, "{letters:?}");
    for (letter, (offset, reason, raw)) in letters.iter().zip(&expected_letters) {
        assert_eq!((letter.topic.as_str(), letter.partition, letter.offset, letter.raw.as_str()), (input.as_str(), 1, *offset, *raw));
        assert!(letter.reason.contains(reason), "{:?} should mention {reason:?}", letter.reason);
    }
    // The file copy has the same letters, with partition and offset in the position.
    let file: Vec<weir_engine::deadletter::DeadLetter> = read_jsonl(&dir.path().join("dead.jsonl"));
    assert_eq!(file.len(), 5);
    assert!(file[0].position.starts_with("partition 1 offset "), "{:?}", file[0]);
}

#[test]
fn no_reachable_broker_is_a_clear_error_within_seconds() {
    let port = free_port(); // nothing listens there
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = weir()
        .args(["run", "window-stats", "--quiet", "--input"])
        .arg(format!("kafka://127.0.0.1:{port}/clicks?until=end"))
        .arg("--output")
        .arg(dir.path().join("o.jsonl"))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot reach the Kafka broker (is it running? scripts/kafka/start.sh starts one) (Kafka at 127.0.0.1:{port})")), "{stderr}");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[test]
fn backfill_from_files_then_live_equals_a_pure_topic_replay() {
    let bootstrap = bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let events = generated(100_000, 35);
    let topic = unique("clicks");
    produce_events(&bootstrap, &topic, 4, &events);
    // The history archived to files: everything before the cut.
    let cut = events[50_000].ts;
    let history: Vec<ClickEvent> = events.iter().filter(|e| e.ts < cut).cloned().collect();
    assert!(history.len() >= 49_000 && history.len() <= 50_000);
    let files = dir.path().join("history.jsonl");
    write_jsonl(&files, &history);

    let run = |source: KafkaSource, name: &str| {
        let out = dir.path().join(name);
        let report = Pipeline::new(Execution::Threads(2)).run(Source::Kafka(source), Sink::file(&out).unwrap(), window_stats).unwrap();
        assert_eq!(report.metrics.events_in, 100_000, "{name}: each event read exactly once");
        std::fs::read(&out).unwrap()
    };
    let pure = run(KafkaSource::new(&bootstrap, &topic).group(unique("g")).until(StopAt::End), "pure.jsonl");
    let replay = ReplaySource::new(files.display().to_string(), TimeSpec::millis("ts"));
    let hybrid = run(KafkaSource::new(&bootstrap, &topic).group(unique("g")).backfill(replay, cut).until(StopAt::End), "hybrid.jsonl");
    assert!(pure.len() > 10_000);
    assert_eq!(String::from_utf8(hybrid).unwrap(), String::from_utf8(pure).unwrap());
}

#[test]
fn a_live_source_releases_windows_past_an_idle_partition() {
    // Partition 1 never receives anything: without the idle timeout no window would close.
    let bootstrap = bootstrap();
    let (input, output) = (unique("clicks"), unique("stats"));
    client::ensure_topic(&bootstrap, &input, 2).unwrap();
    let events = generated(40_000, 36);
    let lines: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    client::produce(&bootstrap, &input, lines.iter().map(|l| Outgoing { key: None, payload: l.as_bytes(), timestamp: None, partition: Some(0) })).unwrap();
    // The frontier stops at the newest event minus the allowed disorder (5 s): every window
    // that closes before it is final, and no other.
    let ticks = TickSpec::new(1000);
    let frontier = ticks.tick_of(events.last().unwrap().ts - 5_000);
    let expected: Vec<String> = reference_for(&events)
        .into_iter()
        .filter(|row| ticks.closing_tick(row.window_end) < frontier)
        .map(|row| serde_json::to_string(&row).unwrap())
        .collect();
    assert!(expected.len() > 500, "{} rows", expected.len());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut run = Traced::window_stats(format!("kafka://{bootstrap}/{input}?idle_ms=500"), format!("kafka://{bootstrap}/{output}"), &[], log.path());
    run.wait_until("the live run has closed the windows", Duration::from_secs(60), || topic_lines(&bootstrap, &output).len() >= expected.len());
    drop(run);
    assert_eq!(topic_lines(&bootstrap, &output), expected);
}

#[test]
fn the_kafka_source_reads_each_partition_on_one_worker_of_many() {
    // 3 partitions over 4 workers: one worker has none and must not stall the frontier.
    let bootstrap = bootstrap();
    let events = generated(20_000, 37);
    let topic = unique("clicks");
    produce_events(&bootstrap, &topic, 3, &events);
    let mut outputs = Vec::new();
    for workers in [1, 4] {
        let captured = MemorySink::new();
        let source = KafkaSource::new(&bootstrap, &topic).group(unique("g")).until(StopAt::End);
        let report = Pipeline::new(Execution::Threads(workers))
            .run::<ItemEvent, _, _>(Source::Kafka(source), Sink::Memory(captured.clone()), window_stats)
            .unwrap();
        assert_eq!(report.metrics.events_in, 20_000);
        outputs.push(captured.records());
    }
    assert_eq!(outputs[0], reference_for(&events));
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn backpressure_pauses_and_resumes_without_losing_messages() {
    // The source may not run ahead of the sink at all: it pauses its partitions after every
    // batch until the sink has caught up, and must still read every message exactly once.
    let bootstrap = bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let events = generated(20_000, 38);
    let expected = file_replay_lines(dir.path(), &events);
    let topic = unique("clicks");
    produce_events(&bootstrap, &topic, 4, &events);
    let mut source = KafkaSource::new(&bootstrap, &topic).group(unique("g")).until(StopAt::End);
    source.max_ahead_ms = Some(0);
    source.batch = 256;
    let out = dir.path().join("out.jsonl");
    let report = Pipeline::new(Execution::Threads(2)).run(Source::Kafka(source.clone()), Sink::file(&out).unwrap(), window_stats).unwrap();
    assert_eq!(report.metrics.events_in, 20_000);
    assert!(source.pauses() > 10, "the source paused {} times", source.pauses());
    let got: Vec<String> = std::fs::read_to_string(&out).unwrap().lines().map(String::from).collect();
    assert_eq!(got, expected);
}
