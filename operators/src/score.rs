//! ONNX scoring: every record of a stream scored by an ONNX model, in micro-batches.
//!
//! A [`ScoreMapping`] says how a batch of records becomes the model's named input tensors
//! (`float32` or `int64`, shape `[batch, width]`, the batch dimension dynamic) and how each row
//! of the output tensors goes back into a record. The operator ([`ScoreExt::score`], or
//! [`ScoreExt::score_versioned`] with a stream of [`ModelVersion`]s) buffers records per worker
//! and runs the model when `max_batch` records are waiting, or when the input frontier has passed
//! the buffered records' ticks — so a bounded replay never waits on a timer and live latency is
//! bounded by the tick. Each worker owns one session per model version, created once and reused
//! for every batch.
//!
//! Bad input never panics and never stalls the frontier:
//! * at build time, [`PreparedModel::prepare`] checks the model loads and that its inputs and
//!   outputs match the mapping (names, element types, widths) — a mismatch is a [`ScoreError`];
//! * at run time, a record whose features the mapping cannot build, or that has a NaN or
//!   infinite `float32` feature, or that ONNX Runtime rejects (an out-of-range index, say), comes
//!   out as a [`Rejection::Record`] (a dead letter with the reason) and the rest of its batch is
//!   scored as usual; a model version that does not load or does not match the mapping comes out
//!   as a [`Rejection::Version`] and the previous version keeps serving.
//!
//! ```no_run
//! use weir_engine::prelude::*;
//! use weir_operators::score::*;
//! use timely::dataflow::operators::{ToStream, Inspect};
//!
//! /// Scores `(user bucket, item bucket, price)` triples with the CTR model of `models/ctr/`.
//! #[derive(Clone)]
//! struct Ctr;
//! impl ScoreMapping<[i64; 4]> for Ctr {
//!     type Output = (f32, u64);
//!     fn inputs(&self) -> Vec<TensorSpec> {
//!         vec![TensorSpec::i64("sparse", 4), TensorSpec::f32("dense", 4)]
//!     }
//!     fn outputs(&self) -> Vec<TensorSpec> {
//!         vec![TensorSpec::f32("p_click", 1)]
//!     }
//!     fn fill(&self, record: &Timed<[i64; 4]>, row: &mut RowWriter<'_>) -> Result<(), String> {
//!         row.i64(0).copy_from_slice(&record.data);
//!         row.f32(1).copy_from_slice(&[1.0, 0.0, 1.0, 1.0]);
//!         Ok(())
//!     }
//!     fn emit(&self, _record: Timed<[i64; 4]>, scores: &ScoreRow<'_>) -> (f32, u64) {
//!         (scores.output(0)[0], scores.model_version)
//!     }
//! }
//!
//! let model = OnnxModel::from_file("models/ctr/ctr_mlp.onnx").unwrap();
//! let prepared = PreparedModel::prepare(&model, &Ctr, &ScoreConfig::default()).unwrap();
//! timely::example(move |scope| {
//!     vec![Timed::new(5, [1, 2, 3, 4])].to_stream(scope).score(&prepared, Ctr)
//!         .inspect(|scored| println!("{scored:?}"));
//! });
//! ```

use std::borrow::Cow;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::session::{Session, SessionInputValue};
use ort::value::{TensorElementType, TensorRef, ValueType};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::progress::frontier::MutableAntichain;
use weir_engine::record::{EventStream, OutputStream, Timed};
use weir_engine::time::{Tick, TickSpec};

use crate::arrival::ArrivalScorer;
use crate::batching::{Pending, send};
use crate::model_version::ModelVersion;
use crate::runtime::{ActiveDevice, OnnxRuntime, RuntimeError, SessionOptions};

/// The element type of a model input or output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElementKind {
    F32,
    I64,
}

impl ElementKind {
    fn onnx(self) -> TensorElementType {
        match self {
            ElementKind::F32 => TensorElementType::Float32,
            ElementKind::I64 => TensorElementType::Int64,
        }
    }
}

/// One named tensor of shape `[batch, width]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub kind: ElementKind,
    pub width: usize,
}

impl TensorSpec {
    pub fn f32(name: impl Into<String>, width: usize) -> Self {
        TensorSpec { name: name.into(), kind: ElementKind::F32, width }
    }
    pub fn i64(name: impl Into<String>, width: usize) -> Self {
        TensorSpec { name: name.into(), kind: ElementKind::I64, width }
    }
}

/// How records become input rows and output rows become records.
pub trait ScoreMapping<D>: Clone + 'static {
    type Output: Clone + 'static;
    /// The model inputs this mapping fills, in the order [`RowWriter`] indexes them.
    fn inputs(&self) -> Vec<TensorSpec>;
    /// The model outputs it reads (`float32`), in the order [`ScoreRow::output`] indexes them.
    fn outputs(&self) -> Vec<TensorSpec>;
    /// Writes one record's features into its row of every input. An `Err` turns the record into
    /// a dead letter with that reason.
    fn fill(&self, record: &Timed<D>, row: &mut RowWriter<'_>) -> Result<(), String>;
    /// Builds the output record from the input record and its row of every output.
    fn emit(&self, record: Timed<D>, scores: &ScoreRow<'_>) -> Self::Output;
}

/// One record's row of every input tensor, zeroed before [`ScoreMapping::fill`].
pub struct RowWriter<'a> {
    buffers: &'a mut InputBuffers,
    row: usize,
}

impl RowWriter<'_> {
    /// The row of `float32` input number `input` (its index in [`ScoreMapping::inputs`]).
    ///
    /// Panics if that input is not `float32`: a programming error in the mapping, which the
    /// build-time check cannot see.
    #[inline]
    pub fn f32(&mut self, input: usize) -> &mut [f32] {
        let slot = self.buffers.slots[input];
        assert_eq!(slot.kind, ElementKind::F32, "input {input} is not float32");
        &mut self.buffers.f32[slot.buffer][self.row * slot.width..(self.row + 1) * slot.width]
    }
    /// The row of `int64` input number `input`.
    #[inline]
    pub fn i64(&mut self, input: usize) -> &mut [i64] {
        let slot = self.buffers.slots[input];
        assert_eq!(slot.kind, ElementKind::I64, "input {input} is not int64");
        &mut self.buffers.i64[slot.buffer][self.row * slot.width..(self.row + 1) * slot.width]
    }
}

/// One record's row of every output tensor.
pub struct ScoreRow<'a> {
    /// The version of the model that produced the scores.
    pub model_version: u64,
    outputs: &'a [Vec<f32>],
    widths: &'a [usize],
    row: usize,
}

impl ScoreRow<'_> {
    /// The row of output number `output` (its index in [`ScoreMapping::outputs`]).
    #[inline]
    pub fn output(&self, output: usize) -> &[f32] {
        let width = self.widths[output];
        &self.outputs[output][self.row * width..(self.row + 1) * width]
    }
}

/// A record or a model version the scorer could not use, with the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Rejection<D> {
    /// A record that was not scored (bad features, or no model version published before it).
    Record { time: i64, reason: String, record: D },
    /// A model version that did not load or does not match the mapping; the previous one keeps serving.
    Version { version: u64, published_at: i64, reason: String },
}

/// What the scoring operators emit: a scored record, or a rejection.
///
/// The rejection is boxed: rejections are rare, and a boxed one keeps every result the size
/// of the scored record (plus a pointer) instead of the size of a record with its reason, so
/// the common case moves and drops less. Match on `result.map_err(|r| *r)` to see inside.
pub type Scored<O, D> = Result<O, Box<Rejection<D>>>;

impl<D> Rejection<D> {
    /// The scorer's result for a record it could not score.
    pub fn of_record<O>(record: Timed<D>, reason: String) -> Scored<O, D> {
        Err(Box::new(Rejection::Record { time: record.time, reason, record: record.data }))
    }
}

/// Why a scorer cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot read the model file {path}: {source}")]
    ReadModel { path: PathBuf, source: std::io::Error },
    #[error("the model {model} does not match the scoring mapping: {reason}")]
    Mismatch { model: String, reason: String },
    #[error("bad scoring configuration: {0}")]
    Config(String),
}

/// An ONNX model file's bytes, shared by every worker.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    pub name: String,
    pub bytes: Arc<Vec<u8>>,
}

impl OnnxModel {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ScoreError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ScoreError::ReadModel { path: path.to_owned(), source })?;
        Ok(OnnxModel { name: path.display().to_string(), bytes: Arc::new(bytes) })
    }
    pub fn from_bytes(name: impl Into<String>, bytes: Arc<Vec<u8>>) -> Self {
        OnnxModel { name: name.into(), bytes }
    }
}

/// How the scorer batches and runs.
#[derive(Clone, Copy, Debug)]
pub struct ScoreConfig {
    /// Run the model as soon as this many records wait.
    pub max_batch: usize,
    pub session: SessionOptions,
    /// The version number a fixed model's scores carry.
    pub model_version: u64,
    /// The pipeline's tick (`Context::tick`): the versioned scorer uses it to know which old
    /// versions no future record can need.
    pub tick: TickSpec,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig { max_batch: 1024, session: SessionOptions::default(), model_version: 1, tick: TickSpec::default() }
    }
}

impl ScoreConfig {
    pub(crate) fn check(&self) -> Result<(), ScoreError> {
        if self.max_batch == 0 {
            return Err(ScoreError::Config("max_batch must be at least 1".into()));
        }
        Ok(())
    }
}

/// A model checked against a mapping: the build-time half of [`ScoreExt::score`].
#[derive(Clone, Debug)]
pub struct PreparedModel {
    model: OnnxModel,
    config: ScoreConfig,
    device: ActiveDevice,
}

impl PreparedModel {
    /// Loads `model` once, resolves the device and checks the model's inputs and outputs against
    /// `mapping`: every error a scorer could hit before seeing data surfaces here.
    pub fn prepare<D, M: ScoreMapping<D>>(model: &OnnxModel, mapping: &M, config: &ScoreConfig) -> Result<Self, ScoreError> {
        config.check()?;
        let runtime = OnnxRuntime::get()?;
        let (session, device) = runtime.session(&model.bytes, &config.session)?;
        check_signature(&session, &mapping.inputs(), &mapping.outputs()).map_err(|reason| ScoreError::Mismatch { model: model.name.clone(), reason })?;
        Ok(PreparedModel { model: model.clone(), config: *config, device })
    }

    /// The device the sessions run on (the CPU when CUDA was asked for but is not there).
    pub fn device(&self) -> ActiveDevice {
        self.device
    }

    pub fn config(&self) -> &ScoreConfig {
        &self.config
    }
}

/// Checks that a session's inputs and outputs are what the mapping fills and reads.
pub fn check_signature(session: &Session, inputs: &[TensorSpec], outputs: &[TensorSpec]) -> Result<(), String> {
    for declared in session.inputs() {
        if !inputs.iter().any(|spec| spec.name == declared.name()) {
            return Err(format!("the model needs input {:?}, which the mapping does not provide", declared.name()));
        }
    }
    for spec in inputs {
        let Some(declared) = session.inputs().iter().find(|i| i.name() == spec.name) else {
            let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
            return Err(format!("the mapping provides input {:?}, but the model's inputs are {names:?}", spec.name));
        };
        check_tensor("input", spec, declared.dtype(), false)?;
    }
    for spec in outputs {
        let Some(declared) = session.outputs().iter().find(|o| o.name() == spec.name) else {
            let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
            return Err(format!("the mapping reads output {:?}, but the model's outputs are {names:?}", spec.name));
        };
        if spec.kind != ElementKind::F32 {
            return Err(format!("output {:?}: only float32 outputs can be read", spec.name));
        }
        check_tensor("output", spec, declared.dtype(), true)?;
    }
    Ok(())
}

fn check_tensor(role: &str, spec: &TensorSpec, dtype: &ValueType, output: bool) -> Result<(), String> {
    let (Some(ty), Some(shape)) = (dtype.tensor_type(), dtype.tensor_shape()) else {
        return Err(format!("{role} {:?} is not a tensor", spec.name));
    };
    if ty != spec.kind.onnx() {
        return Err(format!("{role} {:?} has element type {ty:?} in the model, the mapping says {:?}", spec.name, spec.kind));
    }
    let dims: &[i64] = shape;
    let batch_ok = dims.first().is_some_and(|&d| d < 0);
    let width_ok = match dims {
        [_, width] => *width < 0 || *width as usize == spec.width,
        [_] => output && spec.width == 1,
        _ => false,
    };
    if !batch_ok || !width_ok {
        return Err(format!(
            "{role} {:?} has shape {dims:?} in the model; the mapping needs [batch, {}] with a dynamic batch dimension",
            spec.name, spec.width
        ));
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    kind: ElementKind,
    buffer: usize,
    width: usize,
}

/// The input tensors of one batch, row after row.
///
/// The buffers are allocated once for `max_batch` rows and reused for every batch (they only
/// grow, should a batch be larger): filling a row writes in place, and a rejected record's row
/// is simply overwritten by the next record's.
pub(crate) struct InputBuffers {
    slots: Vec<Slot>,
    f32: Vec<Vec<f32>>,
    i64: Vec<Vec<i64>>,
    /// Rows every buffer has room for.
    capacity: usize,
}

impl InputBuffers {
    fn new(specs: &[TensorSpec], capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let mut slots = Vec::new();
        let (mut f32, mut i64) = (Vec::new(), Vec::new());
        for spec in specs {
            let buffer = match spec.kind {
                ElementKind::F32 => {
                    f32.push(vec![0.0; capacity * spec.width]);
                    f32.len() - 1
                }
                ElementKind::I64 => {
                    i64.push(vec![0; capacity * spec.width]);
                    i64.len() - 1
                }
            };
            slots.push(Slot { kind: spec.kind, buffer, width: spec.width });
        }
        InputBuffers { slots, f32, i64, capacity }
    }

    /// Zeroes rows `start..start + count` of every input (growing the buffers if they do not
    /// fit), for `fill`: one `memset` per input, however many rows.
    #[inline]
    fn zero_rows(&mut self, start: usize, count: usize) {
        if start + count > self.capacity {
            self.capacity = (start + count).max(self.capacity * 2);
            for slot in &self.slots {
                match slot.kind {
                    ElementKind::F32 => self.f32[slot.buffer].resize(self.capacity * slot.width, 0.0),
                    ElementKind::I64 => self.i64[slot.buffer].resize(self.capacity * slot.width, 0),
                }
            }
        }
        for slot in &self.slots {
            let range = start * slot.width..(start + count) * slot.width;
            match slot.kind {
                ElementKind::F32 => self.f32[slot.buffer][range].fill(0.0),
                ElementKind::I64 => self.i64[slot.buffer][range].fill(0),
            }
        }
    }

    /// Moves rows `from..from + count` of every input to rows `0..count`.
    pub(crate) fn move_rows_to_front(&mut self, from: usize, count: usize) {
        if from == 0 || count == 0 {
            return;
        }
        for slot in &self.slots {
            let range = from * slot.width..(from + count) * slot.width;
            match slot.kind {
                ElementKind::F32 => self.f32[slot.buffer].copy_within(range, 0),
                ElementKind::I64 => self.i64[slot.buffer].copy_within(range, 0),
            }
        }
    }

    /// The first `float32` input of row `row` with a NaN or infinity, if any.
    #[inline]
    fn non_finite_in_row(&self, row: usize, specs: &[TensorSpec]) -> Option<String> {
        for (slot, spec) in self.slots.iter().zip(specs) {
            if slot.kind == ElementKind::F32 {
                let values = &self.f32[slot.buffer][row * slot.width..(row + 1) * slot.width];
                if !all_finite(values) {
                    return Some(non_finite_reason(values, &spec.name));
                }
            }
        }
        None
    }

    /// Whether every `float32` value of rows `rows` is finite: one pass over each input's
    /// contiguous rows, which the compiler vectorises.
    fn rows_finite(&self, rows: std::ops::Range<usize>) -> bool {
        self.slots.iter().filter(|slot| slot.kind == ElementKind::F32).all(|slot| all_finite(&self.f32[slot.buffer][rows.start * slot.width..rows.end * slot.width]))
    }
}

/// Whether every value is finite, without stopping at each one: the common all-finite case
/// takes one branch, not one per value.
#[inline]
pub(crate) fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(true, |ok, x| ok & x.is_finite())
}

#[cold]
fn non_finite_reason(values: &[f32], input: &str) -> String {
    let position = values.iter().position(|x| !x.is_finite()).unwrap_or(0);
    format!("feature {} of input {:?} is {} (features must be finite)", position, input, values[position])
}

/// The values of one input tensor, `[rows, width]` row-major, borrowed.
#[derive(Clone, Copy)]
pub(crate) enum InputValues<'a> {
    F32(&'a [f32]),
    I64(&'a [i64]),
}

/// Runs `session` on `rows` rows of `inputs` (one per spec of `input_specs`, in order, read in
/// place) and hands each output of `output_specs` to `read` as its flat `float32` values: the
/// ONNX Runtime call every scorer shares, whatever holds its inputs and takes its outputs.
pub(crate) fn run_session<'a>(
    session: &mut Session,
    input_specs: &[TensorSpec],
    inputs: impl IntoIterator<Item = InputValues<'a>>,
    output_specs: &[TensorSpec],
    rows: usize,
    mut read: impl FnMut(usize, &TensorSpec, &[f32]) -> Result<(), String>,
) -> Result<(), String> {
    let mut values: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(input_specs.len());
    for (spec, input) in input_specs.iter().zip(inputs) {
        let value: SessionInputValue<'_> = match input {
            InputValues::F32(values) => TensorRef::from_array_view(([rows, spec.width], values)).map_err(|e| e.to_string())?.into(),
            InputValues::I64(values) => TensorRef::from_array_view(([rows, spec.width], values)).map_err(|e| e.to_string())?.into(),
        };
        values.push((Cow::Borrowed(spec.name.as_str()), value));
    }
    let results = session.run(values).map_err(|e| e.to_string())?;
    for (index, spec) in output_specs.iter().enumerate() {
        let value = results.get(&spec.name).ok_or_else(|| format!("the model did not return output {:?}", spec.name))?;
        let (_shape, data) = value.try_extract_tensor::<f32>().map_err(|e| format!("output {:?}: {e}", spec.name))?;
        read(index, spec, data)?;
    }
    Ok(())
}

/// Runs rows `start..start + rows` of `buffers` through `session`, copying the outputs into
/// `outputs` (one buffer per output spec).
fn run_rows(
    session: &mut Session,
    inputs: &[TensorSpec],
    buffers: &InputBuffers,
    output_specs: &[TensorSpec],
    outputs: &mut [Vec<f32>],
    start: usize,
    rows: usize,
) -> Result<(), String> {
    let values = buffers.slots.iter().map(|slot| {
        let range = start * slot.width..(start + rows) * slot.width;
        match slot.kind {
            ElementKind::F32 => InputValues::F32(&buffers.f32[slot.buffer][range]),
            ElementKind::I64 => InputValues::I64(&buffers.i64[slot.buffer][range]),
        }
    });
    run_session(session, inputs, values, output_specs, rows, |index, spec, data| {
        if data.len() != rows * spec.width {
            return Err(format!("output {:?} has {} values for {rows} rows of width {}", spec.name, data.len(), spec.width));
        }
        outputs[index].extend_from_slice(data);
        Ok(())
    })
}

/// A mapping with its input and output tensors and their buffers, the part every scorer
/// shares: rows are filled in place, run through a session, and read back.
pub(crate) struct MappedTensors<D, M: ScoreMapping<D>> {
    pub(crate) mapping: M,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    widths: Vec<usize>,
    pub(crate) buffers: InputBuffers,
    /// The outputs of the rows run since the last [`MappedTensors::clear_outputs`], in row order.
    output_buffers: Vec<Vec<f32>>,
    records: PhantomData<fn(&D)>,
}

impl<D, M: ScoreMapping<D>> MappedTensors<D, M> {
    pub(crate) fn new(mapping: M, capacity: usize) -> Self {
        let (inputs, outputs) = (mapping.inputs(), mapping.outputs());
        let widths = outputs.iter().map(|o| o.width).collect();
        let buffers = InputBuffers::new(&inputs, capacity);
        let output_buffers = outputs.iter().map(|o| Vec::with_capacity(capacity * o.width)).collect();
        MappedTensors { mapping, inputs, outputs, widths, buffers, output_buffers, records: PhantomData }
    }

    /// Writes `record`'s features into row `row`; the reason if the record cannot have one.
    #[inline]
    pub(crate) fn fill(&mut self, row: usize, record: &Timed<D>) -> Option<String> {
        self.buffers.zero_rows(row, 1);
        match self.mapping.fill(record, &mut RowWriter { buffers: &mut self.buffers, row }) {
            Err(reason) => Some(reason),
            Ok(()) => self.buffers.non_finite_in_row(row, &self.inputs),
        }
    }

    /// Fills a row for each of `records`, in order, from row `start` on; a record that cannot
    /// have one gets no row (the next record's takes its place) and is reported to
    /// `turned_away` with its index in `records` and the reason. Returns the rows filled.
    ///
    /// The common case, every record good, zeroes the rows in one go and checks their floats
    /// in one pass after filling them all; only when that finds a problem are the records
    /// filled again one by one, each checked on its own.
    pub(crate) fn fill_rows(&mut self, start: usize, records: &[Timed<D>], mut turned_away: impl FnMut(usize, String)) -> usize {
        self.buffers.zero_rows(start, records.len());
        let mut row = start;
        for record in records {
            if self.mapping.fill(record, &mut RowWriter { buffers: &mut self.buffers, row }).is_err() {
                break;
            }
            row += 1;
        }
        if row == start + records.len() && self.buffers.rows_finite(start..row) {
            return records.len();
        }
        let mut row = start;
        for (index, record) in records.iter().enumerate() {
            match self.fill(row, record) {
                Some(reason) => turned_away(index, reason),
                None => row += 1,
            }
        }
        row - start
    }

    pub(crate) fn clear_outputs(&mut self) {
        self.output_buffers.iter_mut().for_each(Vec::clear);
    }

    /// Runs rows `start..start + rows` through `session`, appending their outputs.
    pub(crate) fn run(&mut self, session: &mut Session, start: usize, rows: usize) -> Result<(), String> {
        run_rows(session, &self.inputs, &self.buffers, &self.outputs, &mut self.output_buffers, start, rows)
    }

    /// Drops the outputs of the rows from `rows` on (a run that failed part way).
    pub(crate) fn truncate_outputs(&mut self, rows: usize) {
        for (out, width) in self.output_buffers.iter_mut().zip(&self.widths) {
            out.truncate(rows * width);
        }
    }

    /// Appends a row of zeros to every output: the place of a row that could not be run.
    pub(crate) fn skip_output_row(&mut self) {
        for (out, width) in self.output_buffers.iter_mut().zip(&self.widths) {
            out.resize(out.len() + width, 0.0);
        }
    }

    /// The output record of `record`, from row `row` of the outputs.
    #[inline]
    pub(crate) fn emit(&self, version: u64, row: usize, record: Timed<D>) -> M::Output {
        self.mapping.emit(record, &ScoreRow { model_version: version, outputs: &self.output_buffers, widths: &self.widths, row })
    }
}

/// Scores batches of records with one session: the part of the operator that touches ONNX Runtime.
pub struct BatchScorer<D, M: ScoreMapping<D>> {
    tensors: MappedTensors<D, M>,
    /// Records whose rows are in the input buffers, in row order.
    rows: Vec<(Tick, Timed<D>)>,
}

impl<D, M: ScoreMapping<D>> BatchScorer<D, M> {
    pub fn new(mapping: M, capacity: usize) -> Self {
        BatchScorer { tensors: MappedTensors::new(mapping, capacity), rows: Vec::with_capacity(capacity) }
    }

    pub fn mapping(&self) -> &M {
        &self.tensors.mapping
    }

    /// Scores `records` (each with the tick it travels at) with `session`, appending each
    /// outcome with its tick to `out`. Bad records become rejections; the rest are scored.
    pub fn score<I>(&mut self, session: &mut Session, version: u64, records: I, out: &mut Vec<(Tick, Scored<M::Output, D>)>)
    where
        I: IntoIterator<Item = (Tick, Timed<D>)>,
    {
        self.rows.clear();
        for (tick, record) in records {
            // Filled rows stay contiguous: a rejected record's row is reused by the next one.
            match self.tensors.fill(self.rows.len(), &record) {
                Some(reason) => out.push((tick, Rejection::of_record(record, reason))),
                None => self.rows.push((tick, record)),
            }
        }
        if self.rows.is_empty() {
            return;
        }
        self.tensors.clear_outputs();
        let rows = self.rows.len();
        match self.tensors.run(session, 0, rows) {
            Ok(()) => {
                for (row, (tick, record)) in self.rows.drain(..).enumerate() {
                    out.push((tick, Ok(self.tensors.emit(version, row, record))));
                }
            }
            // One bad row fails the whole batch: score the rows one by one so only it is rejected.
            Err(batch_error) => {
                for (row, (tick, record)) in self.rows.drain(..).enumerate() {
                    self.tensors.clear_outputs();
                    let alone = if rows == 1 { Err(batch_error.clone()) } else { self.tensors.run(session, row, 1) };
                    match alone {
                        Ok(()) => out.push((tick, Ok(self.tensors.emit(version, 0, record)))),
                        Err(reason) => out.push((tick, Rejection::of_record(record, format!("ONNX Runtime rejected the record: {reason}")))),
                    }
                }
            }
        }
    }
}

/// One loaded model version on one worker.
struct LoadedVersion {
    version: u64,
    published_at: i64,
    session: Session,
}

/// Scoring as stream operators.
pub trait ScoreExt<'scope, D> {
    /// Scores every record with the prepared model (its version number is
    /// [`ScoreConfig::model_version`]). Each worker scores the records it has (no exchange).
    fn score<M: ScoreMapping<D>>(self, model: &PreparedModel, mapping: M) -> OutputStream<'scope, Scored<M::Output, D>>;

    /// [`ScoreExt::score`] with each rejection turned into an output record by `reject` (a
    /// row with an error field, say): one stream of outputs, with no `Scored` results to map
    /// afterwards, so every record is moved once less.
    fn score_or<M: ScoreMapping<D>>(self, model: &PreparedModel, mapping: M, reject: impl Fn(Rejection<D>) -> M::Output + 'static) -> OutputStream<'scope, M::Output>;

    /// Scores every record with event time `t` by the newest version in `versions` published
    /// strictly before `t` (DESIGN.md §2), and records that version in the output.
    ///
    /// `versions` is broadcast to every worker. A version must travel at a timestamp no later
    /// than `tick_of(published_at + 1)` (stamping it with `tick_of(published_at)` is the natural
    /// choice); each record waits until the versions' frontier has passed its tick, so which
    /// version scores it depends only on event times, never on arrival order, worker count or
    /// batch size. Records with no version published before them are rejected.
    fn score_versioned<M: ScoreMapping<D>>(self, versions: OutputStream<'scope, ModelVersion>, mapping: M, config: &ScoreConfig) -> Result<OutputStream<'scope, Scored<M::Output, D>>, ScoreError>;
}

impl<'scope, D: timely::ExchangeData + Clone> ScoreExt<'scope, D> for EventStream<'scope, D> {
    fn score<M: ScoreMapping<D>>(self, model: &PreparedModel, mapping: M) -> OutputStream<'scope, Scored<M::Output, D>> {
        score_fixed(self, model, mapping, |scored| scored)
    }

    fn score_or<M: ScoreMapping<D>>(self, model: &PreparedModel, mapping: M, reject: impl Fn(Rejection<D>) -> M::Output + 'static) -> OutputStream<'scope, M::Output> {
        score_fixed(self, model, mapping, move |scored| scored.unwrap_or_else(|rejection| reject(*rejection)))
    }

    fn score_versioned<M: ScoreMapping<D>>(self, versions: OutputStream<'scope, ModelVersion>, mapping: M, config: &ScoreConfig) -> Result<OutputStream<'scope, Scored<M::Output, D>>, ScoreError> {
        config.check()?;
        let config = *config;
        let runtime = OnnxRuntime::get()?;
        runtime.resolve_device(&config.session)?;
        let versions = versions.broadcast();
        Ok(self.binary_frontier::<_, CapacityContainerBuilder<Vec<_>>, _, _, _, _>(versions, Pipeline, Pipeline, "ScoreVersioned", move |_capability, _info| {
            let mut scorer = BatchScorer::new(mapping, config.max_batch);
            let (inputs, outputs) = (scorer.mapping().inputs(), scorer.mapping().outputs());
            let mut loaded: Vec<LoadedVersion> = Vec::new();
            let mut pending = Pending::new();
            let mut results: Vec<(Tick, Scored<M::Output, D>)> = Vec::new();
            let mut grouped: Vec<Vec<(Tick, Timed<D>)>> = Vec::new();
            move |(records, record_frontier), (version_input, version_frontier), output| {
                version_input.for_each_stamp(|capability, containers| {
                    let Some(capability) = capability.retain_least(0) else { return };
                    let mut rejected = Vec::new();
                    for container in containers {
                        for version in container.drain(..) {
                            if let Err(reason) = load_version(&runtime, &config, &inputs, &outputs, &mut loaded, &version) {
                                rejected.push(Err(Box::new(Rejection::Version { version: version.version, published_at: version.published_at, reason })));
                            }
                        }
                    }
                    if !rejected.is_empty() {
                        output.session(&capability).give_iterator(rejected.into_iter());
                    }
                });
                records.for_each_stamp(|capability, containers| {
                    let Some(capability) = capability.retain_least(0) else { return };
                    pending.absorb(capability, containers);
                });
                let versions_passed = |tick: Tick| !version_frontier.less_equal(&tick);
                let mut ready = pending.ready(config.max_batch, record_frontier, versions_passed);
                while ready > 0 {
                    group_by_version(&loaded, pending.drain_batch(config.max_batch, &mut ready), &mut grouped, &mut results);
                    for (index, group) in grouped.iter_mut().enumerate() {
                        if !group.is_empty() {
                            let version = &mut loaded[index];
                            scorer.score(&mut version.session, version.version, group.drain(..), &mut results);
                        }
                    }
                    results.sort_by_key(|(tick, _)| *tick);
                    send(output, &pending.capabilities, &mut results);
                }
                pending.release();
                prune_versions(&mut loaded, &pending, record_frontier, config.tick);
            }
        }))
    }
}

/// The fixed-model scorer, its results turned into output records by `outcome`.
fn score_fixed<'scope, D, M, E>(stream: EventStream<'scope, D>, model: &PreparedModel, mapping: M, outcome: impl Fn(Scored<M::Output, D>) -> E + 'static) -> OutputStream<'scope, E>
where
    D: timely::ExchangeData + Clone,
    M: ScoreMapping<D>,
    E: Clone + 'static,
{
    let config = model.config;
    // The same bytes and options loaded once in `prepare`; should this still fail (memory),
    // every record is rejected with the reason rather than panicking.
    let session = OnnxRuntime::get().and_then(|runtime| runtime.session(&model.model.bytes, &config.session)).map(|(session, _)| session).map_err(|e| e.to_string());
    stream.unary_frontier::<CapacityContainerBuilder<Vec<E>>, _, _, _>(Pipeline, "Score", move |_capability, _info| {
        let mut session = session;
        let mut scorer = ArrivalScorer::new(mapping, config.max_batch, config.model_version);
        move |(input, frontier), output| {
            let (mut session, no_session) = match &mut session {
                Ok(session) => (Some(session), None),
                Err(reason) => (None, Some(reason.as_str())),
            };
            input.for_each_stamp(|capability, containers| {
                let Some(capability) = capability.retain_least(0) else { return };
                for container in containers {
                    scorer.absorb(capability.clone(), container, no_session);
                    if scorer.has_full_batch() {
                        scorer.flush(session.as_deref_mut(), false, output, &outcome);
                    }
                }
            });
            if scorer.holds_complete_tick(frontier) {
                scorer.flush(session, true, output, &outcome);
            }
        }
    })
}

/// Loads one version into a session on this worker and files it by publication time.
fn load_version(runtime: &OnnxRuntime, config: &ScoreConfig, inputs: &[TensorSpec], outputs: &[TensorSpec], loaded: &mut Vec<LoadedVersion>, version: &ModelVersion) -> Result<(), String> {
    let key = (version.published_at, version.version);
    if loaded.iter().any(|v| (v.published_at, v.version) == key) {
        return Ok(()); // the same version twice: keep the first
    }
    let (session, _device) = runtime.session(&version.onnx, &config.session).map_err(|e| format!("version {} does not load: {e}", version.version))?;
    check_signature(&session, inputs, outputs).map_err(|reason| format!("version {} does not match the mapping: {reason}", version.version))?;
    let position = loaded.partition_point(|v| (v.published_at, v.version) < key);
    loaded.insert(position, LoadedVersion { version: version.version, published_at: version.published_at, session });
    Ok(())
}

/// Splits `batch` by the version that serves each record (the newest published strictly
/// before its event time); records with none are rejected into `results`.
fn group_by_version<D, O>(loaded: &[LoadedVersion], batch: impl Iterator<Item = (Tick, Timed<D>)>, grouped: &mut Vec<Vec<(Tick, Timed<D>)>>, results: &mut Vec<(Tick, Scored<O, D>)>) {
    grouped.resize_with(loaded.len(), Vec::new);
    for (tick, record) in batch {
        let serving = loaded.partition_point(|v| v.published_at < record.time);
        if serving == 0 {
            let reason = format!("no model version was published before event time {}", record.time);
            results.push((tick, Rejection::of_record(record, reason)));
        } else {
            grouped[serving - 1].push((tick, record));
        }
    }
}

/// Drops versions that no pending or future record can be served by: all but the newest of
/// those published before the earliest event time still possible.
fn prune_versions<D>(loaded: &mut Vec<LoadedVersion>, pending: &Pending<D>, frontier: &MutableAntichain<Tick>, tick: TickSpec) {
    // A future record travels at a tick >= the frontier, so its event time is > frontier - tick.
    let future = frontier.frontier().iter().min().map(|&f| f as i64 - tick.tick_ms as i64 + 1);
    let waiting = pending.records.iter().map(|(_, record)| record.time).min();
    let earliest = match (future, waiting) {
        (Some(f), Some(w)) => f.min(w),
        (Some(f), None) => f,
        (None, Some(w)) => w,
        (None, None) => {
            loaded.clear();
            return;
        }
    };
    let serving = loaded.partition_point(|v| v.published_at < earliest);
    if serving > 1 {
        loaded.drain(..serving - 1);
    }
}

/// Splits a scorer's output into the scored records and the rejections (dead letters).
pub trait SplitRejections<'scope, O, D> {
    fn split_rejections(self) -> (OutputStream<'scope, O>, OutputStream<'scope, Rejection<D>>);
}

impl<'scope, O: Clone + 'static, D: Clone + 'static> SplitRejections<'scope, O, D> for OutputStream<'scope, Scored<O, D>> {
    fn split_rejections(self) -> (OutputStream<'scope, O>, OutputStream<'scope, Rejection<D>>) {
        self.ok_err(|result| result.map_err(|rejection| *rejection))
    }
}

/// Moves each model version to the tick of its publication time, the timestamp
/// [`ScoreExt::score_versioned`] expects (a version already at a later tick stays there).
///
/// ```
/// use weir_engine::time::TickSpec;
/// use weir_operators::ModelVersion;
/// use weir_operators::score::StampVersionsExt;
/// use timely::dataflow::operators::{ToStream, Capture, capture::Event};
/// let captured = timely::example(|scope| {
///     vec![ModelVersion::new(1, 2_500, vec![])].to_stream(scope)
///         .stamp_at_publication(TickSpec::new(1000))
///         .capture()
/// });
/// let stamped: Vec<(u64, u64)> = captured.try_iter().flat_map(|event| match event {
///     Event::Messages(stamp, versions) => versions.into_iter().map(|v| (*stamp.least().unwrap(), v.version)).collect(),
///     _ => Vec::new(),
/// }).collect();
/// assert_eq!(stamped, vec![(3_000, 1)]); // at the tick of 2 500 ms
/// ```
pub trait StampVersionsExt<'scope> {
    fn stamp_at_publication(self, tick: TickSpec) -> OutputStream<'scope, ModelVersion>;
}

impl<'scope> StampVersionsExt<'scope> for OutputStream<'scope, ModelVersion> {
    fn stamp_at_publication(self, tick: TickSpec) -> OutputStream<'scope, ModelVersion> {
        self.unary::<CapacityContainerBuilder<Vec<_>>, _, _, _>(Pipeline, "StampVersions", move |_capability, _info| {
            move |input, output| {
                input.for_each_stamp(|capability, containers| {
                    let Some(capability) = capability.retain_least(0) else { return };
                    for version in containers.flat_map(|container| container.drain(..)) {
                        let at = tick.tick_of(version.published_at).max(*capability.time());
                        output.session(&capability.delayed(&at)).give(version);
                    }
                });
            }
        })
    }
}
