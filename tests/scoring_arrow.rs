//! Arrow `FixedSizeList<Float32>` columns become ONNX Runtime tensors without a copy, and score
//! like the Python reference.

use std::sync::Arc;

use arrow::array::{Array, FixedSizeListArray, Float32Array, Int64Array};
use arrow::datatypes::{DataType, Field};
use weir::operators::arrow_tensor::{fixed_size_list_f32, fixed_size_list_tensor};
use weir::operators::ort::value::TensorRef;
use weir::operators::runtime::{OnnxRuntime, SessionOptions};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[derive(serde::Deserialize)]
struct Fixture {
    rows: usize,
    sparse: Vec<i64>,
    dense: Vec<f32>,
    expected: std::collections::BTreeMap<String, Vec<f32>>,
}

#[test]
fn a_fixed_size_list_column_is_a_tensor_over_the_same_memory() {
    let fixture: Fixture = serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/models/fixtures/ctr_parity.json")).unwrap()).unwrap();
    let field = Arc::new(Field::new("item", DataType::Float32, false));
    let dense = FixedSizeListArray::try_new(field, 4, Arc::new(Float32Array::from(fixture.dense.clone())), None).unwrap();
    // A slice, as a batch cut from a larger one: rows 5..30.
    let sliced = dense.slice(5, 25);
    let (shape, data) = fixed_size_list_f32(&sliced).unwrap();
    assert_eq!(shape, [25, 4]);
    assert_eq!(data, &fixture.dense[20..120]);
    let values = sliced.values().as_any().downcast_ref::<Float32Array>().unwrap();
    let base = values.values().as_ptr();
    assert!(data.as_ptr() >= base, "the tensor's data lies inside the column's buffer");

    let tensor = fixed_size_list_tensor(&sliced).unwrap();
    let (_, tensor_data) = tensor.try_extract_tensor::<f32>().unwrap();
    assert_eq!(tensor_data.as_ptr(), data.as_ptr(), "no copy: the tensor points at the Arrow buffer");

    let bytes = std::fs::read(format!("{ROOT}/models/ctr/ctr_mlp.onnx")).unwrap();
    let (mut session, _) = OnnxRuntime::get().unwrap().session(&bytes, &SessionOptions::default()).unwrap();
    let sparse = Int64Array::from(fixture.sparse[20..120].to_vec());
    let sparse = TensorRef::from_array_view(([25usize, 4], sparse.values().as_ref())).unwrap();
    let out = session.run(weir::operators::ort::inputs!["sparse" => sparse, "dense" => tensor]).unwrap();
    let (_, scores) = out["p_click"].try_extract_tensor::<f32>().unwrap();
    for (score, expected) in scores.iter().zip(&fixture.expected["ctr_mlp"][5..30]) {
        assert!((score - expected).abs() <= 1e-5);
    }
    assert!(fixed_size_list_f32(&Float32Array::from(vec![1.0f32])).is_err());
    assert_eq!(fixture.rows, 37);
}

// --- the columnar scorer: `score_columns` over record batches ------------------------------

use arrow::array::{ArrayRef, BooleanBufferBuilder, RecordBatch, UInt64Array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::Schema;
use weir::operators::score::{OnnxModel, ScoreConfig, ScoreError};
use weir::operators::score_columns::{ColumnMapping, ColumnScored, MODEL_VERSION_COLUMN, PreparedColumns, ScoreColumnsExt};
use weir_engine::timely::dataflow::operators::capture::{Capture, Event};
use weir_engine::timely::dataflow::operators::ToStream;

fn fixture() -> Fixture {
    serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/models/fixtures/ctr_parity.json")).unwrap()).unwrap()
}

fn list_of(item: DataType, width: i32) -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new("item", item, false)), width)
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("sparse", list_of(DataType::Int64, 4), false),
        Field::new("dense", list_of(DataType::Float32, 4), true),
    ]))
}

/// The fixture's rows as one record batch: an `id` column the model does not read, then the
/// features; `dense_nulls` marks rows whose `dense` list is null.
fn fixture_batch(sparse: Vec<i64>, dense: Vec<f32>, dense_nulls: Option<NullBuffer>) -> RecordBatch {
    let rows = sparse.len() / 4;
    let sparse = FixedSizeListArray::try_new(Arc::new(Field::new("item", DataType::Int64, false)), 4, Arc::new(Int64Array::from(sparse)), None).unwrap();
    let dense = FixedSizeListArray::try_new(Arc::new(Field::new("item", DataType::Float32, false)), 4, Arc::new(Float32Array::from(dense)), dense_nulls).unwrap();
    let ids: ArrayRef = Arc::new(Int64Array::from((0..rows as i64).collect::<Vec<_>>()));
    RecordBatch::try_new(schema(), vec![ids, Arc::new(sparse), Arc::new(dense)]).unwrap()
}

fn ctr_mapping() -> ColumnMapping {
    ColumnMapping::new().input("sparse", "sparse").input("dense", "dense").output("p_click", "p_click")
}

fn prepare(max_batch: usize) -> PreparedColumns {
    let model = OnnxModel::from_file(format!("{ROOT}/models/ctr/ctr_mlp.onnx")).unwrap();
    let config = ScoreConfig { max_batch, model_version: 7, ..ScoreConfig::default() };
    PreparedColumns::prepare(&model, &ctr_mapping(), &schema(), &config).unwrap()
}

/// Runs `score_columns` over `batches` (one tick each) on one worker.
fn score_batches(prepared: &PreparedColumns, batches: Vec<RecordBatch>) -> Vec<ColumnScored> {
    let prepared = prepared.clone();
    let captured = weir_engine::timely::example(move |scope| batches.to_stream(scope).score_columns(&prepared).capture());
    captured.try_iter().flat_map(|event| if let Event::Messages(_, results) = event { results } else { Vec::new() }).collect()
}

/// `(id, p_click, model_version)` of every scored row.
fn scored_rows(results: &[ColumnScored]) -> Vec<(i64, f32, u64)> {
    let mut rows = Vec::new();
    for batch in results.iter().filter_map(|r| r.as_ref().ok()) {
        let ids = batch.column_by_name("id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
        let scores = batch.column_by_name("p_click").unwrap().as_any().downcast_ref::<Float32Array>().unwrap();
        let versions = batch.column_by_name(MODEL_VERSION_COLUMN).unwrap().as_any().downcast_ref::<UInt64Array>().unwrap();
        for row in 0..batch.num_rows() {
            rows.push((ids.value(row), scores.value(row), versions.value(row)));
        }
    }
    rows.sort_by_key(|(id, _, _)| *id);
    rows
}

#[test]
fn record_batches_score_like_python_onnxruntime_in_slices_of_max_batch() {
    let fixture = fixture();
    let batch = fixture_batch(fixture.sparse.clone(), fixture.dense.clone(), None);
    // Whole, and cut into slices (offsets into shared buffers) of 5, 25 and 7 rows; max_batch 8
    // cuts them further.
    let inputs = vec![batch.clone(), batch.slice(0, 5), batch.slice(5, 25), batch.slice(30, 7)];
    let results = score_batches(&prepare(8), inputs);
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|b| b.num_rows() <= 8)), "slices of at most max_batch rows");
    let rows = scored_rows(&results);
    assert_eq!(rows.len(), 2 * fixture.rows);
    for (id, score, version) in rows {
        let expected = fixture.expected["ctr_mlp"][id as usize];
        assert!((score - expected).abs() <= 1e-5, "row {id}: {score} vs {expected}");
        assert_eq!(version, 7);
    }
    let first = results[0].as_ref().unwrap();
    let names: Vec<String> = first.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["id", "sparse", "dense", "p_click", MODEL_VERSION_COLUMN], "the input's columns, then the outputs");

    // A batch within max_batch comes out with its own columns, not copies of them.
    let whole = score_batches(&prepare(1024), vec![batch.clone()]);
    let out = whole[0].as_ref().unwrap();
    for name in ["id", "sparse", "dense"] {
        assert!(Arc::ptr_eq(out.column_by_name(name).unwrap(), batch.column_by_name(name).unwrap()), "column {name} is shared");
    }
}

#[test]
fn rows_with_nan_null_or_refused_features_are_split_off_and_the_rest_scored() {
    let fixture = fixture();
    let (mut sparse, mut dense) = (fixture.sparse.clone(), fixture.dense.clone());
    dense[3 * 4 + 2] = f32::NAN;
    dense[9 * 4] = f32::NEG_INFINITY;
    sparse[12 * 4 + 1] = 1_000_000; // outside the embedding table: ONNX Runtime refuses it
    let mut valid = BooleanBufferBuilder::new(fixture.rows);
    (0..fixture.rows).for_each(|row| valid.append(row != 5));
    let batch = fixture_batch(sparse, dense, Some(NullBuffer::new(valid.finish())));
    let results = score_batches(&prepare(1024), vec![batch]);

    let scored = scored_rows(&results);
    let ids: Vec<i64> = scored.iter().map(|(id, _, _)| *id).collect();
    let expected_ids: Vec<i64> = (0..fixture.rows as i64).filter(|id| ![3, 5, 9, 12].contains(id)).collect();
    assert_eq!(ids, expected_ids);
    for (id, score, _) in scored {
        assert!((score - fixture.expected["ctr_mlp"][id as usize]).abs() <= 1e-5);
    }
    let mut rejected: Vec<(i64, String)> = Vec::new();
    for rejection in results.iter().filter_map(|r| r.as_ref().err()) {
        let ids = rejection.rows.column_by_name("id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
        rejected.extend(ids.values().iter().map(|id| (*id, rejection.reason.clone())));
        assert_eq!(rejection.rows.schema(), schema(), "rejected rows come out as they came in");
    }
    rejected.sort();
    let rejected_ids: Vec<i64> = rejected.iter().map(|(id, _)| *id).collect();
    assert_eq!(rejected_ids, [3, 5, 9, 12], "every row comes out once, scored or rejected");
    for (id, reason) in &rejected {
        let expected = if *id == 12 { "ONNX Runtime rejected the row" } else { "null or not finite" };
        assert!(reason.contains(expected), "row {id}: {reason}");
    }
}

#[test]
fn a_batch_without_the_feature_columns_is_rejected_whole() {
    let fixture = fixture();
    let batch = fixture_batch(fixture.sparse[..8].to_vec(), fixture.dense[..8].to_vec(), None);
    let without_dense = batch.project(&[0, 1]).unwrap();
    let results = score_batches(&prepare(1024), vec![without_dense]);
    assert_eq!(results.len(), 1);
    let rejection = results[0].as_ref().unwrap_err();
    assert_eq!(rejection.rows.num_rows(), 2);
    assert!(rejection.reason.contains("no column \"dense\""), "{}", rejection.reason);
}

/// The scorer remembers where the feature columns of the last schema are: a stream whose
/// schema changes (columns reordered, one dropped, then back) must be read by name each time.
#[test]
fn batches_whose_schema_changes_are_each_read_by_column_name() {
    let fixture = fixture();
    let batch = fixture_batch(fixture.sparse[..40].to_vec(), fixture.dense[..40].to_vec(), None);
    let reordered = batch.project(&[2, 0, 1]).unwrap(); // dense, id, sparse
    let without_dense = batch.slice(0, 3).project(&[0, 1]).unwrap();
    let inputs = vec![batch.slice(0, 4), reordered.slice(4, 3), without_dense, batch.slice(7, 3), reordered.slice(0, 2)];
    let results = score_batches(&prepare(1024), inputs);
    assert_eq!(results.len(), 5);
    assert!(results[2].as_ref().is_err_and(|r| r.reason.contains("no column \"dense\"")), "the batch without its dense column is rejected");
    let names = |i: usize| results[i].as_ref().unwrap().schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
    assert_eq!(names(1), ["dense", "id", "sparse", "p_click", MODEL_VERSION_COLUMN]);
    assert_eq!(names(3), ["id", "sparse", "dense", "p_click", MODEL_VERSION_COLUMN]);
    let rows = scored_rows(&results);
    assert_eq!(rows.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(), [0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (id, score, _) in rows {
        let expected = fixture.expected["ctr_mlp"][id as usize];
        assert!((score - expected).abs() <= 1e-5, "row {id}: {score} vs {expected}");
    }
}

#[test]
fn a_schema_that_does_not_fit_the_model_is_a_build_time_error() {
    let model = OnnxModel::from_file(format!("{ROOT}/models/ctr/ctr_mlp.onnx")).unwrap();
    let config = ScoreConfig::default();
    let prepare = |mapping: ColumnMapping, schema: Schema| match PreparedColumns::prepare(&model, &mapping, &schema, &config) {
        Err(ScoreError::Mismatch { reason, .. }) => reason,
        other => panic!("expected a mismatch, got {other:?}"),
    };
    let no_dense = Schema::new(vec![Field::new("sparse", list_of(DataType::Int64, 4), false)]);
    assert!(prepare(ctr_mapping(), no_dense).contains("column \"dense\""));
    let float64 = Schema::new(vec![Field::new("sparse", list_of(DataType::Int64, 4), false), Field::new("dense", list_of(DataType::Float64, 4), false)]);
    assert!(prepare(ctr_mapping(), float64).contains("not Float32, Int64"));
    let narrow = Schema::new(vec![Field::new("sparse", list_of(DataType::Int64, 4), false), Field::new("dense", list_of(DataType::Float32, 3), false)]);
    assert!(prepare(ctr_mapping(), narrow).contains("shape"));
    let unknown = ctr_mapping().input("text", "dense");
    assert!(prepare(unknown, (*schema()).clone()).contains("\"text\""));
    let clash = ColumnMapping::new().input("sparse", "sparse").input("dense", "dense").output("p_click", "id");
    assert!(prepare(clash, (*schema()).clone()).contains("already has"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the batch sizes, `max_batch` and which rows are bad (a NaN, a null list, an
    /// index ONNX Runtime refuses): every row comes out exactly once, scored like the Python
    /// reference or rejected with the reason that fits it.
    #[test]
    fn every_row_comes_out_once_whatever_the_batches(
        max_batch in 1usize..12,
        bad in proptest::collection::vec(0u8..12, 37),
        cuts in proptest::collection::vec(1usize..15, 1..8),
    ) {
        let fixture = fixture();
        let (mut sparse, mut dense) = (fixture.sparse.clone(), fixture.dense.clone());
        let mut valid = BooleanBufferBuilder::new(fixture.rows);
        for (row, kind) in bad.iter().enumerate() {
            match kind {
                0 => dense[row * 4 + 3] = f32::NAN,
                1 => sparse[row * 4 + 2] = 1_000_000,
                _ => {}
            }
            valid.append(*kind != 2);
        }
        let whole = fixture_batch(sparse, dense, Some(NullBuffer::new(valid.finish())));
        // Cut the rows into consecutive slices of the drawn lengths (the last one takes the rest).
        let mut batches = Vec::new();
        let mut start = 0;
        for cut in cuts.iter().chain(std::iter::once(&fixture.rows)) {
            let length = (*cut).min(fixture.rows - start);
            if length > 0 {
                batches.push(whole.slice(start, length));
            }
            start += length;
        }
        let results = score_batches(&prepare(max_batch), batches);

        let mut seen: Vec<i64> = scored_rows(&results).iter().map(|(id, _, _)| *id).collect();
        for (id, score, _) in scored_rows(&results) {
            proptest::prop_assert!(bad[id as usize] > 2, "row {} should have been rejected", id);
            proptest::prop_assert!((score - fixture.expected["ctr_mlp"][id as usize]).abs() <= 1e-5);
        }
        for rejection in results.iter().filter_map(|r| r.as_ref().err()) {
            let ids = rejection.rows.column_by_name("id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
            for id in ids.values() {
                let expected = if bad[*id as usize] == 1 { "ONNX Runtime rejected the row" } else { "null or not finite" };
                proptest::prop_assert!(bad[*id as usize] <= 2 && rejection.reason.contains(expected), "row {}: {}", id, rejection.reason);
                seen.push(*id);
            }
        }
        seen.sort();
        proptest::prop_assert_eq!(seen, (0..fixture.rows as i64).collect::<Vec<_>>(), "every row once");
    }
}
