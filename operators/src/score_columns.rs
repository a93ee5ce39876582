//! Scoring Arrow record batches: feature columns become tensors without a copy, and the scores
//! come back as new columns of the same batch.
//!
//! Where the features are already columnar (a Parquet replay, a feature store, an upstream
//! operator that builds Arrow batches), a record-at-a-time mapping would copy every value into
//! the input buffers and every score into a record. [`ScoreColumnsExt::score_columns`] does
//! neither: a `FixedSizeList<Float32, W>` (or `FixedSizeList<Int64, W>`) column of `n` rows is
//! already an `[n, W]` row-major matrix in one buffer, and ONNX Runtime reads it in place (a
//! plain `Float32` / `Int64` column is an `[n, 1]` matrix). Each output tensor becomes a column,
//! `FixedSizeList<Float32, W>` or `Float32` for width 1, appended to the batch with a
//! `model_version` column; the input columns are shared, not copied.
//!
//! A record batch is the micro-batch: it is scored when it arrives, in slices of at most
//! `max_batch` rows (zero-copy slices; each comes out as its own batch), so there is nothing to
//! hold and nothing to wait for — the output frontier is the input frontier. Batches are not
//! merged: that would copy them, which is what this operator exists to avoid, so give it
//! batches of a useful size.
//!
//! Bad input never panics and never loses a row:
//! * at build time, [`PreparedColumns::prepare`] checks the model against the mapping and the
//!   schema the batches will have (column types, tensor names, element types, widths);
//! * at run time, a batch whose schema does not fit is rejected whole with the reason; rows
//!   with a null or a NaN / infinite float feature, and rows ONNX Runtime refuses (an
//!   out-of-range index, say: a batch that fails is run row by row), are split off into a
//!   [`ColumnRejection`] and the other rows are scored as usual.
//!
//! ```no_run
//! use std::sync::Arc;
//! use arrow::array::{FixedSizeListArray, Float32Array, Int64Array, RecordBatch};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use timely::dataflow::operators::{Inspect, ToStream};
//! use weir_operators::score::{OnnxModel, ScoreConfig};
//! use weir_operators::score_columns::{ColumnMapping, PreparedColumns, ScoreColumnsExt};
//!
//! let list = |item: DataType| DataType::FixedSizeList(Arc::new(Field::new("item", item, false)), 4);
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("sparse", list(DataType::Int64), false),
//!     Field::new("dense", list(DataType::Float32), false),
//! ]));
//! let sparse = FixedSizeListArray::try_new(Arc::new(Field::new("item", DataType::Int64, false)), 4, Arc::new(Int64Array::from(vec![1i64; 8])), None).unwrap();
//! let dense = FixedSizeListArray::try_new(Arc::new(Field::new("item", DataType::Float32, false)), 4, Arc::new(Float32Array::from(vec![0.5f32; 8])), None).unwrap();
//! let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(sparse), Arc::new(dense)]).unwrap();
//!
//! let mapping = ColumnMapping::new().input("sparse", "sparse").input("dense", "dense").output("p_click", "p_click");
//! let model = OnnxModel::from_file("models/ctr/ctr_mlp.onnx").unwrap();
//! let prepared = PreparedColumns::prepare(&model, &mapping, &schema, &ScoreConfig::default()).unwrap();
//! timely::example(move |scope| {
//!     vec![batch].to_stream(scope).score_columns(&prepared).inspect(|scored| {
//!         let batch = scored.as_ref().unwrap();
//!         println!("{} rows, columns {:?}", batch.num_rows(), batch.schema().fields().iter().map(|f| f.name()).collect::<Vec<_>>());
//!     });
//! });
//! ```

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, RecordBatch, UInt64Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Float32Type, Int64Type, Schema, SchemaRef};
use ort::session::Session;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use weir_engine::record::OutputStream;

use crate::arrow_tensor::column_matrix;
use crate::runtime::{ActiveDevice, OnnxRuntime};
use crate::score::{ElementKind, InputValues, OnnxModel, ScoreConfig, ScoreError, TensorSpec, all_finite, check_signature, run_session};

/// The name of the column that carries the version of the model that scored each row.
pub const MODEL_VERSION_COLUMN: &str = "model_version";

/// Which column feeds which model input, and which model output becomes which new column.
#[derive(Clone, Debug, Default)]
pub struct ColumnMapping {
    /// `(model input, column)`.
    inputs: Vec<(String, String)>,
    /// `(model output, new column)`.
    outputs: Vec<(String, String)>,
}

impl ColumnMapping {
    pub fn new() -> Self {
        ColumnMapping::default()
    }

    /// Feeds model input `tensor` from `column`: a `FixedSizeList<Float32 | Int64, W>` column
    /// (an `[n, W]` tensor) or a plain `Float32` / `Int64` column (`[n, 1]`).
    pub fn input(mut self, tensor: impl Into<String>, column: impl Into<String>) -> Self {
        self.inputs.push((tensor.into(), column.into()));
        self
    }

    /// Appends model output `tensor` (`float32`, `[n, W]`) as `column`.
    pub fn output(mut self, tensor: impl Into<String>, column: impl Into<String>) -> Self {
        self.outputs.push((tensor.into(), column.into()));
        self
    }
}

/// Rows the scorer could not score, as they came in, with the reason.
#[derive(Clone, Debug)]
pub struct ColumnRejection {
    pub rows: RecordBatch,
    pub reason: String,
}

/// What [`ScoreColumnsExt::score_columns`] emits: a scored batch (the input's columns, then
/// the outputs and [`MODEL_VERSION_COLUMN`]), or rows it could not score.
pub type ColumnScored = Result<RecordBatch, Box<ColumnRejection>>;

/// A model checked against a column mapping and a schema: the build-time half of
/// [`ScoreColumnsExt::score_columns`].
#[derive(Clone, Debug)]
pub struct PreparedColumns {
    model: OnnxModel,
    config: ScoreConfig,
    device: ActiveDevice,
    mapping: ColumnMapping,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

impl PreparedColumns {
    /// Loads `model` once, resolves the device, and checks that the columns `mapping` names
    /// exist in `schema` with tensor types, and that the model's inputs and outputs match them.
    pub fn prepare(model: &OnnxModel, mapping: &ColumnMapping, schema: &Schema, config: &ScoreConfig) -> Result<Self, ScoreError> {
        config.check()?;
        let mismatch = |reason: String| ScoreError::Mismatch { model: model.name.clone(), reason };
        let mut inputs = Vec::with_capacity(mapping.inputs.len());
        for (tensor, column) in &mapping.inputs {
            let field = schema.field_with_name(column).map_err(|_| mismatch(format!("input {tensor:?} reads column {column:?}, which the schema does not have")))?;
            let (kind, width) = tensor_type(field.data_type()).ok_or_else(|| mismatch(format!("column {column:?} is {}, not Float32, Int64 or a FixedSizeList of them", field.data_type())))?;
            inputs.push(TensorSpec { name: tensor.clone(), kind, width });
        }
        let runtime = OnnxRuntime::get()?;
        let (session, device) = runtime.session(&model.bytes, &config.session)?;
        let mut outputs = Vec::with_capacity(mapping.outputs.len());
        for (tensor, column) in &mapping.outputs {
            if schema.field_with_name(column).is_ok() || column == MODEL_VERSION_COLUMN {
                return Err(mismatch(format!("output {tensor:?} would be written to column {column:?}, which the batch already has")));
            }
            outputs.push(TensorSpec { name: tensor.clone(), kind: ElementKind::F32, width: output_width(&session, tensor) });
        }
        check_signature(&session, &inputs, &outputs).map_err(mismatch)?;
        Ok(PreparedColumns { model: model.clone(), config: *config, device, mapping: mapping.clone(), inputs, outputs })
    }

    /// The device the sessions run on (the CPU when CUDA was asked for but is not there).
    pub fn device(&self) -> ActiveDevice {
        self.device
    }
}

/// The element type and width of the tensor a column of type `data_type` is.
fn tensor_type(data_type: &DataType) -> Option<(ElementKind, usize)> {
    match data_type {
        DataType::Float32 => Some((ElementKind::F32, 1)),
        DataType::Int64 => Some((ElementKind::I64, 1)),
        DataType::FixedSizeList(item, width) if *width > 0 => match item.data_type() {
            DataType::Float32 => Some((ElementKind::F32, *width as usize)),
            DataType::Int64 => Some((ElementKind::I64, *width as usize)),
            _ => None,
        },
        _ => None,
    }
}

/// The width the model declares for output `name` (`[batch, W]`, or 1 for `[batch]` and for a
/// dynamic width, which the first batch then settles).
fn output_width(session: &Session, name: &str) -> usize {
    let declared = session.outputs().iter().find(|o| o.name() == name).and_then(|o| o.dtype().tensor_shape().map(|s| s.to_vec()));
    match declared.as_deref() {
        Some([_, width]) if *width > 0 => *width as usize,
        _ => 1,
    }
}

/// Scoring Arrow record batches as a stream operator.
pub trait ScoreColumnsExt<'scope> {
    /// Scores every batch with the prepared model (its version number is
    /// [`ScoreConfig::model_version`]). Each worker scores the batches it has (no exchange).
    fn score_columns(self, model: &PreparedColumns) -> OutputStream<'scope, ColumnScored>;
}

impl<'scope> ScoreColumnsExt<'scope> for OutputStream<'scope, RecordBatch> {
    fn score_columns(self, model: &PreparedColumns) -> OutputStream<'scope, ColumnScored> {
        let prepared = model.clone();
        // Loaded once per worker; should it fail now (memory), every batch is rejected with the
        // reason rather than panicking.
        let session = OnnxRuntime::get().and_then(|runtime| runtime.session(&prepared.model.bytes, &prepared.config.session)).map(|(session, _)| session).map_err(|e| e.to_string());
        self.unary::<CapacityContainerBuilder<Vec<ColumnScored>>, _, _, _>(Pipeline, "ScoreColumns", move |_capability, _info| {
            let mut scorer = ColumnScorer { prepared, session, layout: None, versions: Arc::new(UInt64Array::from(Vec::<u64>::new())) };
            move |input, output| {
                input.for_each(|capability, batches| {
                    let mut scored = Vec::with_capacity(batches.len());
                    for batch in batches.drain(..) {
                        scorer.score(batch, &mut scored);
                    }
                    output.session(&capability).give_container(&mut scored);
                });
            }
        })
    }
}

/// One worker's half of the operator: its session and what it learnt of the last schema.
struct ColumnScorer {
    prepared: PreparedColumns,
    session: Result<Session, String>,
    /// Where the feature columns of the last input schema are, and its output schema: batches
    /// of one stream have the same schema (most often the same `Arc`), so the columns are
    /// looked up by name and the output schema built once, not for every batch.
    layout: Option<Layout>,
    /// The model version column, sliced for each batch ([`ColumnScorer::version_column`]).
    versions: ArrayRef,
}

/// What the scorer knows of one input schema.
struct Layout {
    input: SchemaRef,
    /// The index of each model input's column, in the order of the model inputs; their types
    /// were checked against the model's tensors.
    features: Vec<usize>,
    /// The output schema, built when the first batch of this schema is scored (it needs the
    /// types of the output columns).
    output: Option<SchemaRef>,
}

impl Layout {
    /// Finds the mapping's columns in `input` and checks that they are the tensors the model
    /// takes.
    fn of(prepared: &PreparedColumns, input: &SchemaRef) -> Result<Self, String> {
        let mut features = Vec::with_capacity(prepared.inputs.len());
        for ((_, name), spec) in prepared.mapping.inputs.iter().zip(&prepared.inputs) {
            let (index, field) = input.column_with_name(name).ok_or_else(|| format!("the batch has no column {name:?}"))?;
            if tensor_type(field.data_type()) != Some((spec.kind, spec.width)) {
                return Err(format!("column {name:?} is {}, the model's input {:?} needs {:?} × {}", field.data_type(), spec.name, spec.kind, spec.width));
            }
            features.push(index);
        }
        Ok(Layout { input: input.clone(), features, output: None })
    }

    fn fits(&self, input: &SchemaRef) -> bool {
        Arc::ptr_eq(&self.input, input) || self.input == *input
    }
}

impl ColumnScorer {
    /// Scores `batch` in slices of at most `max_batch` rows, appending the outcomes to `out`.
    fn score(&mut self, batch: RecordBatch, out: &mut Vec<ColumnScored>) {
        let max_batch = self.prepared.config.max_batch;
        if batch.num_rows() <= max_batch {
            // Whole: no slice, not even a clone (which would copy the column list).
            return self.score_slice(batch, out);
        }
        let mut start = 0;
        while start < batch.num_rows() {
            let rows = max_batch.min(batch.num_rows() - start);
            self.score_slice(batch.slice(start, rows), out);
            start += rows;
        }
    }

    fn score_slice(&mut self, batch: RecordBatch, out: &mut Vec<ColumnScored>) {
        if let Err(reason) = &self.session {
            return out.push(reject(batch, format!("no ONNX Runtime session: {reason}")));
        }
        let columns = match layout(&mut self.layout, &self.prepared, batch.schema_ref()).and_then(|layout| feature_columns(&self.prepared, &layout.features, &batch)) {
            Ok(columns) => columns,
            Err(reason) => return out.push(reject(batch, reason)),
        };
        if !features_clean(&columns) {
            drop(columns);
            let features = &self.layout.as_ref().expect("found for this batch").features;
            let bad = bad_rows(&self.prepared, features, &batch);
            return self.split_off(batch, &bad, "a feature is null or not finite (features must be finite)", out);
        }
        let session = self.session.as_mut().expect("checked above");
        match run(session, &self.prepared.inputs, &self.prepared.outputs, &columns, batch.num_rows()) {
            Ok(outputs) => out.push(Ok(self.with_outputs(&batch, outputs))),
            Err(batch_error) => {
                drop(columns);
                self.score_row_by_row(batch, batch_error, out);
            }
        }
    }

    /// Scores the rows `bad` does not mark and rejects those it does, with `reason`.
    fn split_off(&mut self, batch: RecordBatch, bad: &BooleanArray, reason: &str, out: &mut Vec<ColumnScored>) {
        let good = arrow::compute::not(bad).expect("a boolean array negates");
        match (filter_record_batch(&batch, &good), filter_record_batch(&batch, bad)) {
            (Ok(good_rows), Ok(bad_rows)) => {
                if good_rows.num_rows() > 0 {
                    self.score_slice(good_rows, out);
                }
                out.push(reject(bad_rows, reason.to_string()));
            }
            (Err(e), _) | (_, Err(e)) => out.push(reject(batch, format!("{reason}; and the batch could not be split: {e}"))),
        }
    }

    /// A batch ONNX Runtime refused: each row is run alone, so that only its bad rows fail.
    fn score_row_by_row(&mut self, batch: RecordBatch, batch_error: String, out: &mut Vec<ColumnScored>) {
        if batch.num_rows() == 1 {
            return out.push(reject(batch, format!("ONNX Runtime rejected the row: {batch_error}")));
        }
        let mut refused = Vec::with_capacity(batch.num_rows());
        let mut reason = None;
        for row in 0..batch.num_rows() {
            let alone = batch.slice(row, 1);
            let columns = layout(&mut self.layout, &self.prepared, alone.schema_ref()).and_then(|layout| feature_columns(&self.prepared, &layout.features, &alone));
            let outcome = match (&mut self.session, columns) {
                (Ok(session), Ok(columns)) => run(session, &self.prepared.inputs, &self.prepared.outputs, &columns, 1).map(|_| ()),
                (Err(e), _) => Err(e.clone()),
                (_, Err(e)) => Err(e),
            };
            if let Err(e) = &outcome {
                reason.get_or_insert_with(|| e.clone());
            }
            refused.push(outcome.is_err());
        }
        let reason = format!("ONNX Runtime rejected the row: {}", reason.unwrap_or(batch_error));
        self.split_off(batch, &BooleanArray::from(refused), &reason, out);
    }

    /// `batch` with the output columns and the model version appended.
    fn with_outputs(&mut self, batch: &RecordBatch, outputs: Vec<ArrayRef>) -> RecordBatch {
        let schema = self.output_schema(batch.schema_ref(), &outputs);
        let mut columns = Vec::with_capacity(batch.num_columns() + outputs.len() + 1);
        columns.extend_from_slice(batch.columns());
        columns.extend(outputs);
        columns.push(self.version_column(batch.num_rows()));
        debug_assert!(RecordBatch::try_new(schema.clone(), columns.clone()).is_ok());
        // SAFETY: the checks of `RecordBatch::try_new` hold by construction, and are not paid
        // again for every batch: the input columns are those of a valid batch whose schema
        // begins the output schema; `run` made each output column `rows` long and without
        // nulls, and `output_schema` has just checked that their types are those of the
        // schema's output fields; the version column is `rows` non-null `UInt64`s.
        unsafe { RecordBatch::new_unchecked(schema, columns, batch.num_rows()) }
    }

    /// The model version, `rows` times. Batches mostly come in one size, so the column of the
    /// last size is kept and shared by every batch of that size (a reference count, not a
    /// column per batch).
    fn version_column(&mut self, rows: usize) -> ArrayRef {
        if self.versions.len() != rows {
            self.versions = Arc::new(UInt64Array::from(vec![self.prepared.config.model_version; rows]));
        }
        self.versions.clone()
    }

    /// The schema of the scored batches of `input`: its fields, then one per output column and
    /// [`MODEL_VERSION_COLUMN`]. Built once per input schema, unless a model with a dynamic
    /// output width changes the width of an output.
    fn output_schema(&mut self, input: &SchemaRef, outputs: &[ArrayRef]) -> SchemaRef {
        // `score_slice` has just found (or made) the layout of this batch's schema, so it is
        // not compared with the schema again.
        let layout = self.layout.as_mut();
        debug_assert!(layout.as_ref().is_some_and(|layout| layout.fits(input)));
        if let Some(built) = layout.as_ref().and_then(|layout| layout.output.as_ref())
            && built.fields().len() == input.fields().len() + outputs.len() + 1
            && outputs.iter().zip(&built.fields()[input.fields().len()..]).all(|(column, field)| column.data_type() == field.data_type())
        {
            return built.clone();
        }
        let mut fields: Vec<Arc<Field>> = input.fields().iter().cloned().collect();
        for ((_, name), column) in self.prepared.mapping.outputs.iter().zip(outputs) {
            fields.push(Arc::new(Field::new(name, column.data_type().clone(), false)));
        }
        fields.push(Arc::new(Field::new(MODEL_VERSION_COLUMN, DataType::UInt64, false)));
        let built = Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()));
        if let Some(layout) = layout {
            layout.output = Some(built.clone());
        }
        built
    }
}

/// The layout of `input`, from the cache when the schema is the one it was made for.
fn layout<'a>(cache: &'a mut Option<Layout>, prepared: &PreparedColumns, input: &SchemaRef) -> Result<&'a Layout, String> {
    if !cache.as_ref().is_some_and(|layout| layout.fits(input)) {
        *cache = Some(Layout::of(prepared, input)?);
    }
    Ok(cache.as_ref().expect("filled above"))
}

fn reject(rows: RecordBatch, reason: String) -> ColumnScored {
    Err(Box::new(ColumnRejection { rows, reason }))
}

/// A feature column, borrowed as the flat values of its `[rows, width]` tensor.
struct FeatureColumn<'a> {
    values: InputValues<'a>,
    nulls: bool,
}

/// The batch's feature columns (at `features`, found and type-checked by [`Layout::of`]), in
/// the order of the model inputs.
fn feature_columns<'a>(prepared: &PreparedColumns, features: &[usize], batch: &'a RecordBatch) -> Result<Vec<FeatureColumn<'a>>, String> {
    let mut columns = Vec::with_capacity(prepared.inputs.len());
    for ((spec, (_, name)), &index) in prepared.inputs.iter().zip(&prepared.mapping.inputs).zip(features) {
        let column = batch.column(index).as_ref();
        let in_column = |e: String| format!("column {name:?}: {e}");
        columns.push(match spec.kind {
            ElementKind::F32 => column_matrix::<Float32Type>(column).map(|m| FeatureColumn { values: InputValues::F32(m.values), nulls: m.has_nulls }),
            ElementKind::I64 => column_matrix::<Int64Type>(column).map(|m| FeatureColumn { values: InputValues::I64(m.values), nulls: m.has_nulls }),
        }
        .map_err(in_column)?);
    }
    Ok(columns)
}

/// Whether every feature is present and every float feature finite: one vectorised pass over
/// each float column, the common case.
fn features_clean(columns: &[FeatureColumn<'_>]) -> bool {
    columns.iter().all(|column| {
        !column.nulls
            && match column.values {
                InputValues::F32(values) => all_finite(values),
                InputValues::I64(_) => true,
            }
    })
}

/// The rows of `batch` with a null or a non-finite float feature, its feature columns at
/// `features` (the rare case: row by row).
fn bad_rows(prepared: &PreparedColumns, features: &[usize], batch: &RecordBatch) -> BooleanArray {
    let mut bad = vec![false; batch.num_rows()];
    for (spec, &index) in prepared.inputs.iter().zip(features) {
        let column = batch.column(index);
        let list = column.as_any().downcast_ref::<FixedSizeListArray>();
        let floats = if spec.kind == ElementKind::F32 { column_matrix::<Float32Type>(column.as_ref()).ok() } else { None };
        for (row, bad) in bad.iter_mut().enumerate() {
            *bad |= match list {
                Some(list) => list.is_null(row) || list.value(row).null_count() > 0,
                None => column.is_null(row),
            } || floats.is_some_and(|m| !all_finite(&m.values[row * m.width..(row + 1) * m.width]));
        }
    }
    BooleanArray::from(bad)
}

/// Runs the model on the feature columns of `rows` rows (read in place) and returns each
/// output as a column.
fn run(session: &mut Session, inputs: &[TensorSpec], outputs: &[TensorSpec], columns: &[FeatureColumn<'_>], rows: usize) -> Result<Vec<ArrayRef>, String> {
    let mut scored = Vec::with_capacity(outputs.len());
    run_session(session, inputs, columns.iter().map(|column| column.values), outputs, rows, |_, spec, data| {
        if rows == 0 || data.len() % rows != 0 {
            return Err(format!("output {:?} has {} values for {rows} rows", spec.name, data.len()));
        }
        let width = data.len() / rows;
        let scores = Float32Array::from(data.to_vec());
        let column: ArrayRef = if width == 1 {
            Arc::new(scores)
        } else {
            let item = Arc::new(Field::new("item", DataType::Float32, false));
            Arc::new(FixedSizeListArray::try_new(item, width as i32, Arc::new(scores), None).map_err(|e| e.to_string())?)
        };
        scored.push(column);
        Ok(())
    })?;
    Ok(scored)
}
