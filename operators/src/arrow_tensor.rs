//! Zero-copy tensors from Arrow columns.
//!
//! A `FixedSizeList<Float32, W>` column of `n` rows is already an `[n, W]` row-major float32
//! matrix in one buffer: [`fixed_size_list_tensor`] hands that buffer to ONNX Runtime as a tensor
//! without copying (accounting for the column's offset when the batch is a slice).
//!
//! ```no_run
//! use std::sync::Arc;
//! use arrow::array::{FixedSizeListArray, Float32Array};
//! use arrow::datatypes::{DataType, Field};
//! use weir_operators::arrow_tensor::fixed_size_list_tensor;
//! let values = Float32Array::from(vec![0.5f32; 8]);
//! let field = Arc::new(Field::new("item", DataType::Float32, false));
//! let column = FixedSizeListArray::try_new(field, 4, Arc::new(values), None).unwrap();
//! let tensor = fixed_size_list_tensor(&column).unwrap(); // shape [2, 4], same memory
//! ```

use arrow::array::{Array, FixedSizeListArray, Float32Array};
use ort::value::TensorRef;

use crate::runtime::OnnxRuntime;

/// The `[rows, width]` shape and the values of a `FixedSizeList<Float32>` column, borrowed.
pub fn fixed_size_list_f32(column: &dyn Array) -> Result<([usize; 2], &[f32]), String> {
    let list = column.as_any().downcast_ref::<FixedSizeListArray>().ok_or_else(|| format!("expected a FixedSizeList<Float32> column, found {}", column.data_type()))?;
    let values = list.values().as_any().downcast_ref::<Float32Array>().ok_or_else(|| format!("expected Float32 list items, found {}", list.values().data_type()))?;
    if list.null_count() > 0 || values.null_count() > 0 {
        return Err("a feature column with nulls cannot become a tensor: fill them first".into());
    }
    let width = list.value_length() as usize;
    let rows = list.len();
    let start = if rows == 0 { 0 } else { list.value_offset_at(0) };
    let data = values.values().get(start..start + rows * width).ok_or("the list's values are shorter than its rows")?;
    Ok(([rows, width], data))
}

/// An ONNX Runtime tensor over a `FixedSizeList<Float32>` column's buffer (no copy).
///
/// Loads the runtime first if needed: creating a tensor is an ONNX Runtime call, and `ort`
/// would panic if no library had been loaded yet.
pub fn fixed_size_list_tensor(column: &dyn Array) -> Result<TensorRef<'_, f32>, String> {
    OnnxRuntime::get().map_err(|e| e.to_string())?;
    let (shape, data) = fixed_size_list_f32(column)?;
    TensorRef::from_array_view((shape, data)).map_err(|e| e.to_string())
}
