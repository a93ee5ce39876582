//! The ONNX scoring operator against the real ONNX Runtime library and the CTR models of
//! `models/ctr/`: parity with Python onnxruntime (committed fixture), model versions, micro-
//! batching, and every kind of bad input.
//!
//! Needs `scripts/setup/onnxruntime.sh` (scripts/test.sh runs it).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir::operators::ModelVersion;
use weir::operators::runtime::{Device, DeviceRequest, RuntimeError, SessionOptions};
use weir::operators::score::*;
use weir::prelude::*;
use weir_engine::timely::dataflow::operators::vec::Map;
use weir_engine::timely::dataflow::operators::{Exchange, ToStream};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn model_path(name: &str) -> String {
    format!("{ROOT}/models/ctr/{name}.onnx")
}

/// A row of the CTR models' inputs, with an id to find it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    id: u64,
    sparse: [i64; 4],
    dense: [f32; 4],
    text: Vec<f32>,
}

/// The scorer's output for one row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RowScore {
    id: u64,
    time: i64,
    p_click: f32,
    version: u64,
}

/// `sparse` + `dense` (+ `text` when `with_text`) → `p_click`.
#[derive(Clone)]
struct RowMapping {
    with_text: bool,
}

impl ScoreMapping<Row> for RowMapping {
    type Output = RowScore;
    fn inputs(&self) -> Vec<TensorSpec> {
        let mut inputs = vec![TensorSpec::i64("sparse", 4), TensorSpec::f32("dense", 4)];
        if self.with_text {
            inputs.push(TensorSpec::f32("text", 384));
        }
        inputs
    }
    fn outputs(&self) -> Vec<TensorSpec> {
        vec![TensorSpec::f32("p_click", 1)]
    }
    fn fill(&self, record: &Timed<Row>, row: &mut RowWriter<'_>) -> Result<(), String> {
        row.i64(0).copy_from_slice(&record.data.sparse);
        row.f32(1).copy_from_slice(&record.data.dense);
        if self.with_text {
            if record.data.text.len() != 384 {
                return Err(format!("text embedding has {} values, the model needs 384", record.data.text.len()));
            }
            row.f32(2).copy_from_slice(&record.data.text);
        }
        Ok(())
    }
    fn emit(&self, record: Timed<Row>, scores: &ScoreRow<'_>) -> RowScore {
        RowScore { id: record.data.id, time: record.time, p_click: scores.output(0)[0], version: scores.model_version }
    }
}

#[derive(Deserialize)]
struct Fixture {
    rows: usize,
    sparse: Vec<i64>,
    dense: Vec<f32>,
    text: Vec<f32>,
    expected: std::collections::BTreeMap<String, Vec<f32>>,
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(format!("{ROOT}/models/fixtures/ctr_parity.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fixture_rows(fixture: &Fixture) -> Vec<Row> {
    (0..fixture.rows)
        .map(|i| Row {
            id: i as u64,
            sparse: fixture.sparse[i * 4..i * 4 + 4].try_into().unwrap(),
            dense: fixture.dense[i * 4..i * 4 + 4].try_into().unwrap(),
            text: fixture.text[i * 384..(i + 1) * 384].to_vec(),
        })
        .collect()
}

fn config(max_batch: usize) -> ScoreConfig {
    ScoreConfig { max_batch, ..ScoreConfig::default() }
}

/// A scorer's result with the rejection unboxed, to match on.
type Outcome = Result<RowScore, Rejection<Row>>;

fn unboxed(results: Vec<Scored<RowScore, Row>>) -> Vec<Outcome> {
    results.into_iter().map(|result| result.map_err(|rejection| *rejection)).collect()
}

/// Runs the fixed-model scorer over `records` and returns its output, sorted by id.
fn score_fixed(model: &str, with_text: bool, records: Vec<Timed<Row>>, workers: usize, max_batch: usize) -> Vec<Outcome> {
    let model = OnnxModel::from_file(model_path(model)).unwrap();
    let prepared = PreparedModel::prepare(&model, &RowMapping { with_text }, &config(max_batch)).unwrap();
    let captured = MemorySink::new();
    Pipeline::new(Execution::Threads(workers))
        .run(Source::Memory(MemorySource::new(records)), Sink::Memory(captured.clone()), move |events, _ctx| {
            events.exchange(|r: &Timed<Row>| r.data.id).score(&prepared, RowMapping { with_text })
        })
        .unwrap();
    let mut out = unboxed(captured.records());
    out.sort_by_key(|r| match r {
        Ok(score) => (score.id, 0),
        Err(Rejection::Record { record, .. }) => (record.id, 1),
        Err(Rejection::Version { version, .. }) => (*version, 2),
    });
    out
}

#[test]
fn scores_equal_python_onnxruntime_within_1e_5() {
    let fixture = fixture();
    let rows = fixture_rows(&fixture);
    for (model, with_text) in [("ctr_mlp", false), ("ctr_mlp_v2", false), ("ctr_mlp_text", true)] {
        let records: Vec<Timed<Row>> = rows.iter().enumerate().map(|(i, r)| Timed::new(1_000 + 100 * i as i64, r.clone())).collect();
        for (workers, max_batch) in [(1, 1024), (2, 5)] {
            let scored = score_fixed(model, with_text, records.clone(), workers, max_batch);
            assert_eq!(scored.len(), fixture.rows, "{model}");
            for (result, expected) in scored.iter().zip(&fixture.expected[model]) {
                let score = result.as_ref().unwrap();
                assert!((score.p_click - expected).abs() <= 1e-5, "{model} row {}: {} vs Python {expected}", score.id, score.p_click);
                assert_eq!(score.version, 1);
            }
        }
    }
}

/// The score a version gives a row on its own (batch of one), for the version test.
fn reference_scores(model: &str, rows: &[Row]) -> Vec<f32> {
    let records = rows.iter().map(|r| Timed::new(1, r.clone())).collect();
    score_fixed(model, false, records, 1, 1).into_iter().map(|r| r.unwrap().p_click).collect()
}

fn version(number: u64, published_at: i64, model: &str) -> ModelVersion {
    ModelVersion::new(number, published_at, std::fs::read(model_path(model)).unwrap())
}

/// Runs the versioned scorer with `versions` published from worker 0, each travelling at the
/// tick of its publication time.
fn score_versioned(records: Vec<Timed<Row>>, versions: Vec<ModelVersion>, workers: usize, max_batch: usize, with_text: bool) -> Vec<Outcome> {
    let captured = MemorySink::new();
    let config = config(max_batch);
    Pipeline::new(Execution::Threads(workers))
        .tick(TickSpec::new(100))
        .run(Source::Memory(MemorySource::new(records).chunk(7)), Sink::Memory(captured.clone()), move |events, ctx| {
            let mine = if ctx.worker == 0 { versions.clone() } else { Vec::new() };
            let tick = ctx.tick;
            let scope = events.scope();
            let versions = mine.to_stream(scope).stamp_at_publication(tick);
            let config = ScoreConfig { tick, ..config };
            events.exchange(|r: &Timed<Row>| r.data.id).score_versioned(versions, RowMapping { with_text }, &config).unwrap()
        })
        .unwrap();
    unboxed(captured.records())
}

#[test]
fn each_record_is_scored_by_the_newest_version_published_strictly_before_it() {
    let fixture = fixture();
    let base = fixture_rows(&fixture);
    // 600 records over event times 1..=6000; v1 published at 2000, v2 at 4000 (a record at
    // exactly 4000 still gets v1: strictly before).
    let rows: Vec<Row> = (0..600).map(|i| Row { id: i, ..base[i as usize % base.len()].clone() }).collect();
    let records: Vec<Timed<Row>> = rows.iter().map(|r| Timed::new(1 + 10 * r.id as i64, r.clone())).collect();
    let v1 = reference_scores("ctr_mlp", &rows);
    let v2 = reference_scores("ctr_mlp_v2", &rows);
    let versions = vec![version(2, 4_000, "ctr_mlp_v2"), version(1, 2_000, "ctr_mlp")];
    for workers in [1, 3] {
        for max_batch in [1, 16, 1024] {
            let out = score_versioned(records.clone(), versions.clone(), workers, max_batch, false);
            assert_eq!(out.len(), records.len(), "workers {workers}, batch {max_batch}: every record comes out once");
            for result in out {
                match result {
                    Ok(score) => {
                        let (expected_version, expected) = if score.time > 4_000 { (2, v2[score.id as usize]) } else { (1, v1[score.id as usize]) };
                        assert!(score.time > 2_000, "record at {} scored before any version", score.time);
                        assert_eq!(score.version, expected_version, "record at {} (workers {workers}, batch {max_batch})", score.time);
                        assert!((score.p_click - expected).abs() <= 1e-6, "record {} at {}: {} vs {expected}", score.id, score.time, score.p_click);
                    }
                    Err(Rejection::Record { time, reason, .. }) => {
                        assert!(time <= 2_000, "record at {time} rejected: {reason}");
                        assert!(reason.contains("no model version"), "{reason}");
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
        }
    }
}

#[test]
fn a_version_that_fails_to_load_is_rejected_and_the_previous_keeps_serving() {
    let fixture = fixture();
    let base = fixture_rows(&fixture);
    let rows: Vec<Row> = (0..200).map(|i| Row { id: i, ..base[i as usize % base.len()].clone() }).collect();
    let records: Vec<Timed<Row>> = rows.iter().map(|r| Timed::new(1_001 + 10 * r.id as i64, r.clone())).collect();
    let v1 = reference_scores("ctr_mlp", &rows);
    let corrupt = ModelVersion::new(2, 1_500, b"this is not an ONNX model".to_vec());
    let wrong_inputs = version(3, 2_000, "ctr_mlp_text"); // needs a `text` input the mapping lacks
    let out = score_versioned(records, vec![version(1, 1_000, "ctr_mlp"), corrupt, wrong_inputs], 2, 32, false);
    let mut rejected_versions = Vec::new();
    let mut scored = 0;
    for result in out {
        match result {
            Ok(score) => {
                assert_eq!(score.version, 1);
                assert!((score.p_click - v1[score.id as usize]).abs() <= 1e-6);
                scored += 1;
            }
            Err(Rejection::Version { version, reason, .. }) => rejected_versions.push((version, reason)),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(scored, 200);
    rejected_versions.sort();
    // Every worker loads every version, so each bad version is reported by each of the 2 workers.
    let numbers: Vec<u64> = rejected_versions.iter().map(|(v, _)| *v).collect();
    assert_eq!(numbers, vec![2, 2, 3, 3]);
    assert!(rejected_versions[0].1.contains("does not load"), "{}", rejected_versions[0].1);
    assert!(rejected_versions[2].1.contains("\"text\""), "{}", rejected_versions[2].1);
}

#[test]
fn a_corrupt_model_file_is_a_clear_build_time_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.onnx");
    let mut bytes = std::fs::read(model_path("ctr_mlp")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, &bytes).unwrap();
    let model = OnnxModel::from_file(&path).unwrap();
    let error = PreparedModel::prepare(&model, &RowMapping { with_text: false }, &ScoreConfig::default()).unwrap_err();
    assert!(matches!(error, ScoreError::Runtime(RuntimeError::BadModel(_))), "{error:?}");
    assert!(error.to_string().contains("ONNX Runtime rejected the model"), "{error}");
    let missing = OnnxModel::from_file(dir.path().join("missing.onnx")).unwrap_err();
    assert!(matches!(missing, ScoreError::ReadModel { .. }), "{missing:?}");
}

/// A mapping with arbitrary inputs, to provoke mismatches.
#[derive(Clone)]
struct Custom(Vec<TensorSpec>, Vec<TensorSpec>);

impl ScoreMapping<Row> for Custom {
    type Output = ();
    fn inputs(&self) -> Vec<TensorSpec> {
        self.0.clone()
    }
    fn outputs(&self) -> Vec<TensorSpec> {
        self.1.clone()
    }
    fn fill(&self, _record: &Timed<Row>, _row: &mut RowWriter<'_>) -> Result<(), String> {
        Ok(())
    }
    fn emit(&self, _record: Timed<Row>, _scores: &ScoreRow<'_>) {}
}

#[test]
fn input_name_type_and_shape_mismatches_are_build_time_errors() {
    let model = OnnxModel::from_file(model_path("ctr_mlp")).unwrap();
    let out = vec![TensorSpec::f32("p_click", 1)];
    let cases = [
        (Custom(vec![TensorSpec::i64("sparse", 4), TensorSpec::f32("dense_features", 4)], out.clone()), "needs input \"dense\""),
        (Custom(vec![TensorSpec::i64("sparse", 4), TensorSpec::f32("dense", 4), TensorSpec::f32("extra", 1)], out.clone()), "provides input \"extra\""),
        (Custom(vec![TensorSpec::i64("sparse", 4), TensorSpec::f32("dense", 5)], out.clone()), "[batch, 5]"),
        (Custom(vec![TensorSpec::f32("sparse", 4), TensorSpec::f32("dense", 4)], out.clone()), "element type"),
        (Custom(vec![TensorSpec::i64("sparse", 4), TensorSpec::f32("dense", 4)], vec![TensorSpec::f32("score", 1)]), "reads output \"score\""),
        (Custom(vec![TensorSpec::i64("sparse", 4), TensorSpec::f32("dense", 4)], vec![TensorSpec::f32("p_click", 2)]), "[batch, 2]"),
    ];
    for (mapping, expected) in cases {
        let error = PreparedModel::prepare(&model, &mapping, &ScoreConfig::default()).unwrap_err();
        assert!(matches!(error, ScoreError::Mismatch { .. }), "{error:?}");
        assert!(error.to_string().contains(expected), "{error} should mention {expected}");
    }
    let zero = PreparedModel::prepare(&model, &RowMapping { with_text: false }, &config(0)).unwrap_err();
    assert!(matches!(zero, ScoreError::Config(_)), "{zero:?}");
}

#[test]
fn bad_features_become_dead_letters_and_the_rest_of_the_batch_is_scored() {
    let fixture = fixture();
    let mut rows = fixture_rows(&fixture);
    rows[3].dense[2] = f32::NAN;
    rows[5].dense[0] = f32::INFINITY;
    rows[8].sparse[1] = 1_000_000; // outside the embedding table: ONNX Runtime rejects it
    rows[11].text.truncate(100); // wrong length: the mapping rejects it
    let records: Vec<Timed<Row>> = rows.iter().map(|r| Timed::new(1_000, r.clone())).collect();
    let scored = score_fixed("ctr_mlp_text", true, records, 1, 1024);
    assert_eq!(scored.len(), rows.len());
    for (i, result) in scored.iter().enumerate() {
        match (i, result) {
            (3 | 5, Err(Rejection::Record { reason, .. })) => assert!(reason.contains("must be finite"), "{reason}"),
            (8, Err(Rejection::Record { reason, .. })) => assert!(reason.contains("ONNX Runtime rejected the record"), "{reason}"),
            (11, Err(Rejection::Record { reason, .. })) => assert!(reason.contains("384"), "{reason}"),
            (_, Ok(score)) => {
                assert!(![3, 5, 8, 11].contains(&i));
                assert!((score.p_click - fixture.expected["ctr_mlp_text"][i]).abs() <= 1e-5);
            }
            (i, other) => panic!("row {i}: unexpected {other:?}"),
        }
    }
}

#[test]
fn cuda_falls_back_to_the_cpu_unless_strict() {
    let model = OnnxModel::from_file(model_path("ctr_mlp")).unwrap();
    let runtime = weir::operators::runtime::OnnxRuntime::get().unwrap();
    let cuda = ScoreConfig { session: SessionOptions { device: DeviceRequest::cuda(0), ..SessionOptions::default() }, ..ScoreConfig::default() };
    let strict = ScoreConfig { session: SessionOptions { device: DeviceRequest::cuda(0).strict(), ..SessionOptions::default() }, ..ScoreConfig::default() };
    let mapping = RowMapping { with_text: false };
    if runtime.cuda_built() {
        // A GPU build of ONNX Runtime: both must give a working scorer (on the GPU or, not
        // strict, on the CPU after a warning).
        assert!(PreparedModel::prepare(&model, &mapping, &cuda).is_ok());
        return;
    }
    let prepared = PreparedModel::prepare(&model, &mapping, &cuda).unwrap();
    assert_eq!(prepared.device(), Device::Cpu);
    let error = PreparedModel::prepare(&model, &mapping, &strict).unwrap_err();
    assert!(matches!(error, ScoreError::Runtime(RuntimeError::DeviceUnavailable(_))), "{error:?}");
    assert!(error.to_string().contains("CUDA device 0"), "{error}");
    // And the fallback scorer really scores.
    let fixture = fixture();
    let rows = fixture_rows(&fixture);
    let records: Vec<Timed<Row>> = rows.iter().map(|r| Timed::new(10, r.clone())).collect();
    let captured = MemorySink::new();
    Pipeline::new(Execution::Threads(1))
        .run(Source::Memory(MemorySource::new(records)), Sink::Memory(captured.clone()), move |events, _| events.score(&prepared, RowMapping { with_text: false }).map(|r| r.unwrap()))
        .unwrap();
    let mut scores = captured.records();
    scores.sort_by_key(|s| s.id);
    assert_eq!(scores.len(), fixture.rows);
    for (score, expected) in scores.iter().zip(&fixture.expected["ctr_mlp"]) {
        assert!((score.p_click - expected).abs() <= 1e-5, "{} vs {expected}", score.p_click);
    }
}

#[test]
fn micro_batches_flush_at_max_batch_and_when_the_frontier_passes() {
    use std::sync::Mutex;
    use weir_engine::timely::dataflow::operators::{Input, Inspect, Probe};

    let model = OnnxModel::from_file(model_path("ctr_mlp")).unwrap();
    let prepared = PreparedModel::prepare(&model, &RowMapping { with_text: false }, &config(4)).unwrap();
    let rows = fixture_rows(&fixture());
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sink = seen.clone();
    weir_engine::timely::execute_directly(move |worker| {
        let (mut input, probe) = worker.dataflow::<Tick, _, _>(|scope| {
            let (input, stream) = scope.new_input::<Vec<Timed<Row>>>();
            let (probe, _) = stream
                .score(&prepared, RowMapping { with_text: false })
                .inspect(move |r| sink.lock().unwrap().push(r.as_ref().unwrap().id))
                .probe();
            (input, probe)
        });
        let count = || seen.lock().unwrap().len();
        input.advance_to(1_000);
        for row in &rows[..6] {
            input.send(Timed::new(1_000, row.clone()));
        }
        input.flush();
        // Six records at an open tick: one full batch of 4 goes, 2 wait for more or the frontier.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while count() < 4 && std::time::Instant::now() < deadline {
            worker.step();
        }
        for _ in 0..50 {
            worker.step();
        }
        assert_eq!(count(), 4, "a full batch is scored at once, a partial one waits at an open tick");
        input.advance_to(2_000);
        input.flush();
        while probe.less_than(&2_000) && std::time::Instant::now() < deadline {
            worker.step();
        }
        assert_eq!(count(), 6, "the frontier passing the tick flushes the partial batch");
    });
}

#[test]
fn the_ctr_score_pipeline_scores_every_event_the_same_with_any_worker_count() {
    use std::io::Write;
    use weir::pipelines::clickstream::generate::{GenConfig, Generator};
    use weir::pipelines::ctr_score::{CtrFeatures, CtrScore, ctr_score};

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clicks.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for generated in Generator::new(GenConfig::with_events(3_000, 11)) {
        serde_json::to_writer(&mut file, &generated.event).unwrap();
        file.write_all(b"\n").unwrap();
    }
    // A negative price: the featurizer refuses it, the event comes out with an error.
    writeln!(file, r#"{{"ts":9999999999999,"event":"impression","user":"u1","item":"i1","category":"shoes","price":-3.0,"title":"x"}}"#).unwrap();
    file.flush().unwrap();
    drop(file);
    let model = OnnxModel::from_file(model_path("ctr_mlp")).unwrap();
    let prepared = PreparedModel::prepare(&model, &CtrFeatures::default(), &config(256)).unwrap();
    let mut outputs = Vec::new();
    for workers in [1, 2] {
        let output = dir.path().join(format!("scores-{workers}.jsonl"));
        let source = Source::Replay(ReplaySource::new(input.display().to_string(), TimeSpec::millis("ts")));
        let report = Pipeline::new(Execution::Threads(workers)).run(source, Sink::file(&output).unwrap(), ctr_score(prepared.clone())).unwrap();
        assert_eq!(report.metrics.events_in, 3_001);
        assert_eq!(report.metrics.events_out, 3_001);
        outputs.push(std::fs::read(&output).unwrap());
    }
    assert_eq!(outputs[0], outputs[1], "same bytes with 1 and 2 workers");
    let rows: Vec<CtrScore> = String::from_utf8(outputs.remove(0)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let errors: Vec<&CtrScore> = rows.iter().filter(|r| r.error.is_some()).collect();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].error.as_ref().unwrap().contains("price"));
    assert!(rows.iter().filter(|r| r.error.is_none()).all(|r| r.model_version == Some(1) && r.p_click.is_some_and(|p| p > 0.0 && p < 1.0)));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the batch size, the container sizes, the ticks and which records are bad
    /// (turned away before a batch cut, after it, or by ONNX Runtime inside a batch): every
    /// record comes out exactly once, scored like the Python reference or rejected with its
    /// reason.
    #[test]
    fn every_record_comes_out_once_whatever_the_batches(
        max_batch in 1usize..7,
        bad in proptest::collection::vec(0u8..10, 24),
        containers in proptest::collection::vec(1usize..6, 24),
        tick_steps in proptest::collection::vec(0u64..2, 24),
    ) {
        use std::sync::Mutex;
        use weir_engine::timely::dataflow::operators::{Input, Inspect, Probe};

        let fixture = fixture();
        let mut rows = fixture_rows(&fixture);
        rows.truncate(24.min(rows.len()));
        for (row, kind) in rows.iter_mut().zip(&bad) {
            match kind {
                0 => row.dense[1] = f32::NAN,
                1 => row.sparse[0] = 1_000_000, // ONNX Runtime rejects the batch, then this row
                _ => {}
            }
        }
        let model = OnnxModel::from_file(model_path("ctr_mlp")).unwrap();
        let prepared = PreparedModel::prepare(&model, &RowMapping { with_text: false }, &config(max_batch)).unwrap();
        let seen: Arc<Mutex<Vec<Scored<RowScore, Row>>>> = Arc::default();
        let sink = seen.clone();
        let feed = rows.clone();
        weir_engine::timely::execute_directly(move |worker| {
            let (mut input, probe) = worker.dataflow::<Tick, _, _>(|scope| {
                let (input, stream) = scope.new_input::<Vec<Timed<Row>>>();
                let (probe, _) = stream.score(&prepared, RowMapping { with_text: false }).inspect(move |r| sink.lock().unwrap().push(r.clone())).probe();
                (input, probe)
            });
            let (mut sent, mut tick) = (0, 1_000u64);
            for (size, step) in containers.iter().zip(&tick_steps) {
                let size = (*size).min(feed.len() - sent);
                if size == 0 {
                    break;
                }
                tick += step * 1_000;
                input.advance_to(tick);
                let mut container: Vec<Timed<Row>> = feed[sent..sent + size].iter().map(|r| Timed::new(tick as i64, r.clone())).collect();
                input.send_batch(&mut container);
                sent += size;
                worker.step();
            }
            let end = tick + 1_000;
            input.advance_to(end);
            while probe.less_than(&end) {
                worker.step();
            }
        });
        let out = unboxed(seen.lock().unwrap().clone());
        let mut ids: Vec<u64> = out.iter().map(|r| match r {
            Ok(score) => score.id,
            Err(Rejection::Record { record, .. }) => record.id,
            Err(other) => panic!("{other:?}"),
        }).collect();
        ids.sort();
        let expected_ids: Vec<u64> = rows.iter().map(|r| r.id).collect();
        proptest::prop_assert_eq!(ids, expected_ids, "every record once");
        for result in out {
            match result {
                Ok(score) => {
                    let i = rows.iter().position(|r| r.id == score.id).unwrap();
                    proptest::prop_assert!(bad[i] > 1, "row {} should have been rejected", i);
                    proptest::prop_assert!((score.p_click - fixture.expected["ctr_mlp"][i]).abs() <= 1e-5);
                }
                Err(Rejection::Record { record, reason, .. }) => {
                    let i = rows.iter().position(|r| r.id == record.id).unwrap();
                    let expected = if bad[i] == 0 { "must be finite" } else { "ONNX Runtime rejected the record" };
                    proptest::prop_assert!(bad[i] <= 1 && reason.contains(expected), "row {}: {}", i, reason);
                }
                Err(other) => panic!("{other:?}"),
            }
        }
    }
}
