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
