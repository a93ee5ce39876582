//! The training pipeline end to end: attribution, determinism across worker counts and source
//! batching, the guardrail, pinning, resuming from a saved version.

use std::collections::HashMap;
use std::path::Path;

use weir::operators::attribution::{AttributeExt, AttributionSpec, Touch, Touched};
use weir::operators::train::{Guardrail, ModelSpec, Optimizer, TrainerConfig, Trainer};
use weir::pipelines::clickstream::EventKind;
use weir::pipelines::clickstream::generate::{GenConfig, Generator};
use weir::pipelines::ctr_train::{CtrEvent, FIELDS, TrainOutput, ctr_train_summary, pair_key};
use weir::prelude::*;

const WINDOW_MS: i64 = 5 * 60 * 1000;

/// A small generated stream (events, truth by (ts, pair key)).
fn stream(events: u64, seed: u64) -> (Vec<Timed<CtrEvent>>, HashMap<(i64, u64), f64>) {
    let mut config = GenConfig::with_events(events, seed);
    config.impressions_per_sec = 40.0;
    config.users = 3_000;
    config.items = 1_000;
    config.attribution_window_ms = WINDOW_MS;
    let mut truth = HashMap::new();
    let records = Generator::new(config)
        .map(|g| {
            let e = g.event;
            if let Some(t) = g.truth {
                truth.insert((t.ts, pair_key(&t.user, &t.item)), t.p_click);
            }
            Timed::new(e.ts, CtrEvent { event: e.event, user: e.user.into(), item: e.item.into(), category: e.category.into(), price: e.price })
        })
        .collect();
    (records, truth)
}

fn config(run_dir: &Path) -> TrainerConfig {
    let mut config = TrainerConfig::new(ModelSpec::mlp(&FIELDS, 1 << 12, 4, &[8]));
    config.optimizer = Optimizer::adamw(0.005);
    config.linear_optimizer = Optimizer::Ftrl { alpha: 0.1, beta: 1.0, l1: 0.0, l2: 0.0 };
    config.publish_every_examples = Some(1_500);
    config.guardrail = Guardrail { slice: 300, margin: 0.05 };
    config.run_dir = Some(run_dir.to_owned());
    config.emit_predictions = true;
    config.max_label_delay_ms = WINDOW_MS;
    config
}

fn run(records: &[Timed<CtrEvent>], config: &TrainerConfig, workers: usize, chunk: usize) -> Vec<TrainOutput> {
    let sink = MemorySink::new();
    let config = config.clone();
    Pipeline::new(Execution::Threads(workers))
        .run(Source::Memory(MemorySource::new(records.to_vec()).chunk(chunk)), Sink::Memory(sink.clone()), move |events, ctx| {
            ctr_train_summary(events, ctx, &config, WINDOW_MS)
        })
        .unwrap();
    sink.records()
}

fn versions(outputs: &[TrainOutput]) -> Vec<(u64, i64, String)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            TrainOutput::Version { version, published_at, onnx_fnv1a, .. } => Some((*version, *published_at, onnx_fnv1a.clone())),
            _ => None,
        })
        .collect()
}

fn onnx_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx" || x == "state"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn one_and_four_workers_publish_byte_identical_versions_and_scores() {
    let (records, _) = stream(40_000, 3);
    let one = tempfile::tempdir().unwrap();
    let four = tempfile::tempdir().unwrap();
    let out_one = run(&records, &config(one.path()), 1, usize::MAX);
    let out_four = run(&records, &config(four.path()), 4, 333);
    let v = versions(&out_one);
    assert!(v.len() >= 5, "expected several versions, got {v:?}");
    assert_eq!(v, versions(&out_four), "versions differ");
    // Every output — versions, rejections, metrics and each progressive prediction — is equal.
    assert_eq!(out_one.len(), out_four.len());
    if let Some(i) = (0..out_one.len()).find(|&i| out_one[i] != out_four[i]) {
        panic!("output {i} differs:\n1 worker:  {:?}\n4 workers: {:?}", out_one[i], out_four[i]);
    }
    let predictions = out_one.iter().filter(|o| matches!(o, TrainOutput::Prediction(_))).count();
    assert!(predictions > 30_000, "{predictions} predictions");
    // And so are the files: every .onnx version and optimizer state, byte for byte.
    let (files_one, files_four) = (onnx_files(one.path()), onnx_files(four.path()));
    assert!(files_one.len() >= 2 * v.len());
    assert_eq!(files_one, files_four);
    assert_eq!(std::fs::read(one.path().join("manifest.jsonl")).unwrap(), std::fs::read(four.path().join("manifest.jsonl")).unwrap());
}

#[test]
fn versions_are_stamped_with_event_time_and_numbered_in_order() {
    let (records, _) = stream(20_000, 5);
    let dir = tempfile::tempdir().unwrap();
    let outputs = run(&records, &config(dir.path()), 2, 1000);
    let v = versions(&outputs);
    assert!(!v.is_empty());
    let first = records.first().unwrap().time;
    let last = records.last().unwrap().time;
    for (i, (version, published_at, _)) in v.iter().enumerate() {
        assert!(*published_at >= first && *published_at <= last + WINDOW_MS);
        if i > 0 {
            assert!(*version > v[i - 1].0 && *published_at >= v[i - 1].1);
        }
    }
    // Every prediction uses a version published strictly before its impression.
    let published: HashMap<u64, i64> = v.iter().map(|(n, t, _)| (*n, *t)).collect();
    for o in &outputs {
        if let TrainOutput::Prediction(p) = o
            && p.version > 0
        {
            assert!(published[&p.version] < p.impression_time, "version {} at {} served an impression at {}", p.version, published[&p.version], p.impression_time);
        }
    }
}

#[test]
fn the_guardrail_rejects_a_corrupted_version() {
    let (records, _) = stream(20_000, 7);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.corrupt_candidate = Some(3);
    let outputs = run(&records, &config, 1, usize::MAX);
    let promoted: Vec<u64> = versions(&outputs).iter().map(|v| v.0).collect();
    let rejected: Vec<_> = outputs.iter().filter_map(|o| if let TrainOutput::Rejected(r) = o { Some(r.clone()) } else { None }).collect();
    assert!(rejected.iter().any(|r| r.version == 3 && r.candidate_logloss > r.serving_logloss + 0.05), "{rejected:?}");
    assert!(!promoted.contains(&3), "{promoted:?}");
    assert!(promoted.contains(&2) && promoted.contains(&4), "{promoted:?}");
    assert!(!dir.path().join("v000003.onnx").exists());
    let manifest = std::fs::read_to_string(dir.path().join("manifest.jsonl")).unwrap();
    assert!(manifest.lines().any(|l| l.contains("\"version\":3") && l.contains("\"promoted\":false")));

    // Without the fault, healthy versions pass.
    let clean = tempfile::tempdir().unwrap();
    let outputs = run(&records, &self::config(clean.path()), 1, usize::MAX);
    assert!(versions(&outputs).iter().any(|v| v.0 == 3));
}

#[test]
fn a_pinned_run_promotes_nothing_above_the_pin() {
    let (records, _) = stream(20_000, 9);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.pin_version = Some(2);
    let outputs = run(&records, &config, 1, usize::MAX);
    let promoted: Vec<u64> = versions(&outputs).iter().map(|v| v.0).collect();
    assert_eq!(promoted, vec![1, 2]);
    assert!(outputs.iter().any(|o| matches!(o, TrainOutput::Rejected(r) if r.reason.contains("pinned"))));
}

#[test]
fn a_later_run_continues_from_a_saved_version() {
    let (records, _) = stream(20_000, 11);
    let dir = tempfile::tempdir().unwrap();
    run(&records, &config(dir.path()), 1, usize::MAX);
    let state = dir.path().join("v000002.state");
    let mut resumed = config(&dir.path().join("resumed"));
    resumed.init_from = Some(state.clone());
    let trainer = Trainer::new(resumed.clone()).unwrap();
    assert_eq!(trainer.serving().0, 2);
    // Its first prediction already uses version 2's weights, and its next version is 3.
    let outputs = run(&records[..5_000], &resumed, 1, usize::MAX);
    let first = outputs.iter().find_map(|o| if let TrainOutput::Prediction(p) = o { Some(p.clone()) } else { None }).unwrap();
    assert_eq!(first.version, 2);
    assert!(versions(&outputs).iter().all(|v| v.0 >= 3));
    // A state file of another shape is refused with a clear error.
    let mut other = resumed.clone();
    other.spec.buckets = 1 << 10;
    let err = Trainer::new(other).err().expect("shape mismatch").to_string();
    assert!(err.contains("another shape"), "{err}");
}

/// Attribution against a plain loop over the same events.
#[test]
fn attribution_labels_match_a_reference_loop() {
    let (records, _) = stream(20_000, 13);
    let touched: Vec<Timed<Touched<i64>>> = records
        .iter()
        .map(|r| {
            let touch = match r.data.event {
                EventKind::Impression => Touch::Impression,
                EventKind::Click => Touch::Click,
                EventKind::Purchase => Touch::Purchase,
            };
            Timed::new(r.time, Touched { touch, key: pair_key(&r.data.user, &r.data.item), data: r.time })
        })
        .collect();
    // Reference: a click is credited to the earliest open impression of its key in the window.
    let mut open: HashMap<u64, Vec<i64>> = HashMap::new();
    let mut expected: Vec<(i64, i64, bool)> = Vec::new();
    for t in &touched {
        match t.data.touch {
            Touch::Impression => open.entry(t.data.key).or_default().push(t.time),
            Touch::Click => {
                if let Some(list) = open.get_mut(&t.data.key)
                    && let Some(at) = list.iter().position(|&imp| imp <= t.time && t.time < imp + WINDOW_MS)
                {
                    let imp = list.remove(at);
                    expected.push((t.time, imp, true));
                }
            }
            Touch::Purchase => {}
        }
    }
    for (_, list) in open {
        for imp in list {
            expected.push((imp + WINDOW_MS, imp, false));
        }
    }
    expected.sort();
    for workers in [1, 3] {
        let sink = MemorySink::new();
        Pipeline::new(Execution::Threads(workers))
            .run(Source::Memory(MemorySource::new(touched.clone()).chunk(777)), Sink::Memory(sink.clone()), |events, ctx| {
                use weir::engine::timely::dataflow::operators::vec::Map;
                events.attribute(AttributionSpec::clicks_within(WINDOW_MS), ctx.tick).map(|t| (t.time, t.data.impression_time, t.data.positive))
            })
            .unwrap();
        let mut got = sink.records();
        got.sort();
        assert_eq!(got.len(), expected.len());
        assert_eq!(got, expected, "{workers} workers");
    }
    assert!(expected.iter().filter(|e| e.2).count() > 500);
}

/// Positives leave the attribution operator at the click's tick, not a window later.
#[test]
fn positives_are_not_held_for_the_window() {
    let touched = vec![
        Timed::new(1_000, Touched { touch: Touch::Impression, key: 1, data: 0u8 }),
        Timed::new(3_000, Touched { touch: Touch::Click, key: 1, data: 0u8 }),
        Timed::new(4_000_000, Touched { touch: Touch::Impression, key: 2, data: 0u8 }),
    ];
    let sink = MemorySink::new();
    Pipeline::new(Execution::Threads(1))
        .run(Source::Memory(MemorySource::new(touched)), Sink::Memory(sink.clone()), |events, ctx| {
            events.attribute(AttributionSpec::clicks_within(WINDOW_MS), ctx.tick)
        })
        .unwrap();
    let stamped = sink.stamped();
    let positive = stamped.iter().find(|(_, t)| t.data.positive).unwrap();
    assert_eq!(positive.0, 3_000, "the positive travels at the click's tick");
    assert_eq!(stamped.iter().filter(|(_, t)| !t.data.positive).map(|(tick, _)| *tick).collect::<Vec<_>>(), vec![4_000_000 + WINDOW_MS as u64]);
}

/// Offline training on a bounded history: epochs, a deterministic split, and an initial
/// version that a live run starts from.
#[test]
fn offline_training_writes_the_initial_version_for_the_live_run() {
    use weir::operators::train::{OfflineConfig, Split, train_offline};
    use weir::pipelines::ctr_train::featurize;
    let (records, _) = stream(30_000, 17);
    // Labelled examples by the reference attribution (clicks within the window).
    let mut open: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut labels: Vec<Option<f32>> = vec![None; records.len()];
    for (i, r) in records.iter().enumerate() {
        let key = pair_key(&r.data.user, &r.data.item);
        match r.data.event {
            EventKind::Impression => {
                open.entry(key).or_default().push(i);
                labels[i] = Some(0.0);
            }
            EventKind::Click => {
                if let Some(list) = open.get_mut(&key)
                    && let Some(at) = list.iter().position(|&j| r.time < records[j].time + WINDOW_MS)
                {
                    labels[list.remove(at)] = Some(1.0);
                }
            }
            EventKind::Purchase => {}
        }
    }
    let examples: Vec<Timed<_>> = records
        .iter()
        .zip(&labels)
        .filter_map(|(r, l)| {
            let mut e = featurize(r.time, &r.data, 1 << 12);
            e.label = (*l)?;
            Some(Timed::new(r.time, e))
        })
        .collect();
    let first = examples.first().unwrap().time;
    let last = examples.last().unwrap().time;
    let span = last - first;
    let split = Split::ByTime { validation_from: first + span * 7 / 10, test_from: first + span * 85 / 100 };
    let dir = tempfile::tempdir().unwrap();
    let offline = OfflineConfig { epochs: 3, split };
    let report = train_offline(config(dir.path()), &offline, examples.clone()).unwrap();
    assert_eq!(report.validation.len(), 3);
    // It learns: validation log loss well below the constant-rate model's (~0.2 at 5 % CTR).
    let rate = report.validation[0].positive_rate;
    let constant = -(rate * rate.ln() + (1.0 - rate) * (1.0 - rate).ln());
    assert!(report.validation[0].logloss < constant, "{:?} vs constant {constant}", report.validation);
    assert!(report.test.auc.unwrap() > 0.6, "{:?}", report.test);
    // Deterministic: the same inputs give the same initial state, byte for byte.
    let again = tempfile::tempdir().unwrap();
    train_offline(config(again.path()), &offline, examples.clone()).unwrap();
    assert_eq!(std::fs::read(dir.path().join("initial.state")).unwrap(), std::fs::read(again.path().join("initial.state")).unwrap());
    assert_eq!(std::fs::read(dir.path().join("initial.onnx")).unwrap(), std::fs::read(again.path().join("initial.onnx")).unwrap());
    // A key-hash split puts each user wholly in one part.
    let by_user = Split::ByKeyHash { field: 0, validation_percent: 10, test_percent: 10 };
    let parts: HashMap<u32, _> = examples.iter().map(|e| (e.data.sparse[0], by_user.part(e.time, &e.data))).collect();
    assert!(examples.iter().all(|e| parts[&e.data.sparse[0]] == by_user.part(e.time, &e.data)));
    // The live run starts from it.
    let mut live = config(&dir.path().join("live"));
    live.init_from = report.initial_state.clone();
    let trainer = Trainer::new(live).unwrap();
    let fresh = Trainer::new(config(&dir.path().join("fresh"))).unwrap();
    assert_ne!(trainer.model().params.linear, fresh.model().params.linear);
}

/// `weir train` reads a file through the replay source, whose flow control waits for the sink's
/// frontier: the trainer must not hold that frontier at the initial time (it did, and the run
/// never ended). The file run must also give exactly what the in-memory run gives.
#[test]
fn a_file_replay_trains_to_the_end_like_the_memory_source() {
    let mut gen_config = GenConfig::with_events(20_000, 5);
    gen_config.impressions_per_sec = 40.0;
    gen_config.users = 3_000;
    gen_config.items = 1_000;
    gen_config.attribution_window_ms = WINDOW_MS;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clicks.jsonl");
    let mut text = String::new();
    let mut records = Vec::new();
    for g in Generator::new(gen_config) {
        text.push_str(&serde_json::to_string(&g.event).unwrap());
        text.push('\n');
        let e = g.event;
        records.push(Timed::new(e.ts, CtrEvent { event: e.event, user: e.user.into(), item: e.item.into(), category: e.category.into(), price: e.price }));
    }
    std::fs::write(&path, text).unwrap();
    let (memory_dir, file_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let expected = run(&records, &config(memory_dir.path()), 1, usize::MAX);
    let file_config = config(file_dir.path());
    let input = path.to_string_lossy().into_owned();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sink = MemorySink::new();
        let replay = ReplaySource::new(input, TimeSpec::millis("ts"));
        assert!(replay.max_ahead_ms.is_some(), "the replay is meant to run with flow control here");
        let result = Pipeline::new(Execution::Threads(1)).run(Source::Replay(replay), Sink::Memory(sink.clone()), move |events, ctx| ctr_train_summary(events, ctx, &file_config, WINDOW_MS));
        let _ = done.send(result.map(|_| sink.records()).map_err(|e| e.to_string()));
    });
    let outputs = finished.recv_timeout(std::time::Duration::from_secs(120)).expect("the file replay did not finish within 120 s").unwrap();
    assert!(versions(&outputs).len() >= 3, "expected several versions");
    assert_eq!(outputs, expected);
}
