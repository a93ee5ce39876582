//! Zero-copy tensors from Arrow columns.
//!
//! A `FixedSizeList<Float32, W>` column of `n` rows is already an `[n, W]` row-major float32
//! matrix in one buffer: [`fixed_size_list_tensor`] hands that buffer to ONNX Runtime as a tensor
//! without copying (accounting for the column's offset when the batch is a slice).
//! [`column_matrix`] is the same view of `FixedSizeList<P>` and plain `P` columns of any
//! primitive type; the columnar scorer (`score_columns`) reads its feature columns with it.
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

use arrow::array::{Array, ArrowPrimitiveType, FixedSizeListArray, PrimitiveArray};
use arrow::datatypes::Float32Type;
use ort::value::TensorRef;

use crate::runtime::OnnxRuntime;

/// A `[rows, width]` row-major matrix borrowed from an Arrow column.
#[derive(Clone, Copy, Debug)]
pub struct ColumnMatrix<'a, T> {
    pub rows: usize,
    pub width: usize,
    pub values: &'a [T],
    /// Whether any row or value is null (its place in `values` then holds an arbitrary value).
    pub has_nulls: bool,
}

/// The matrix a `FixedSizeList<P, W>` column (`W` wide) or a plain `P` column (1 wide) is,
/// over the column's own buffer: no copy, and the offset of a sliced column accounted for.
pub fn column_matrix<P: ArrowPrimitiveType>(column: &dyn Array) -> Result<ColumnMatrix<'_, P::Native>, String> {
    let rows = column.len();
    let (items, width, start, has_nulls) = match column.as_any().downcast_ref::<FixedSizeListArray>() {
        Some(list) => {
            let start = if rows == 0 { 0 } else { list.value_offset_at(0) };
            (list.values().as_ref(), list.value_length() as usize, start, list.null_count() > 0 || list.values().null_count() > 0)
        }
        None => (column, 1, 0, column.null_count() > 0),
    };
    let items = items.as_any().downcast_ref::<PrimitiveArray<P>>().ok_or_else(|| format!("expected {} values, found {}", P::DATA_TYPE, items.data_type()))?;
    let values = items.values().get(start..start + rows * width).ok_or("the column's values are shorter than its rows")?;
    Ok(ColumnMatrix { rows, width, values, has_nulls })
}

/// The `[rows, width]` shape and the values of a `FixedSizeList<Float32>` column, borrowed.
pub fn fixed_size_list_f32(column: &dyn Array) -> Result<([usize; 2], &[f32]), String> {
    if column.as_any().downcast_ref::<FixedSizeListArray>().is_none() {
        return Err(format!("expected a FixedSizeList<Float32> column, found {}", column.data_type()));
    }
    let matrix = column_matrix::<Float32Type>(column)?;
    if matrix.has_nulls {
        return Err("a feature column with nulls cannot become a tensor: fill them first".into());
    }
    Ok(([matrix.rows, matrix.width], matrix.values))
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
