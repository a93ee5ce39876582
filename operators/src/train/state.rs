//! Optimizer state, and the state file that lets a later run continue from a version.
//!
//! File layout: one line of JSON (the header: format, spec, version, tensor lengths), then the
//! tensors as little-endian `f32` (parameters, then each tensor's optimizer slots) and the
//! AdamW row step counts as little-endian `u32`. Reading checks every length.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::model::{Model, ModelSpec};
use super::optim::{Optimizer, Slots};

const FORMAT: &str = "weir-train-state-1";

/// The optimizer slots of every parameter tensor, in the order of
/// [`super::model::Params::tensors`].
#[derive(Clone, Debug, PartialEq)]
pub struct OptState {
    pub linear: Slots,
    pub embeddings: Slots,
    pub layers: Vec<(Slots, Slots)>,
    pub bias: Slots,
}

impl OptState {
    /// Fresh state: the linear part under `linear_optimizer`, everything else under `optimizer`.
    pub fn new(model: &Model<f32>, optimizer: &Optimizer, linear_optimizer: &Optimizer) -> Self {
        let p = &model.params;
        OptState {
            linear: linear_optimizer.state(&p.linear, model.spec.outputs),
            embeddings: optimizer.state(&p.embeddings, model.spec.embedding_dim),
            layers: p.layers.iter().map(|l| (optimizer.state(&l.weight, l.weight.len()), optimizer.state(&l.bias, l.bias.len()))).collect(),
            bias: optimizer.state(&p.bias, p.bias.len()),
        }
    }

    /// Whether `other` has slots of the same lengths (was made by the same optimizers).
    pub fn same_layout(&self, other: &OptState) -> bool {
        let a = self.slots();
        let b = other.slots();
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.a.len() == y.a.len() && x.b.len() == y.b.len() && x.steps.len() == y.steps.len())
    }

    fn slots(&self) -> Vec<&Slots> {
        let mut all = vec![&self.linear, &self.embeddings];
        for (w, b) in &self.layers {
            all.push(w);
            all.push(b);
        }
        all.push(&self.bias);
        all
    }

    fn slots_mut(&mut self) -> Vec<&mut Slots> {
        let mut all = vec![&mut self.linear, &mut self.embeddings];
        for (w, b) in &mut self.layers {
            all.push(w);
            all.push(b);
        }
        all.push(&mut self.bias);
        all
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    spec: ModelSpec,
    version: u64,
    /// Per tensor: `[params, slot a, slot b, steps]` lengths.
    lengths: Vec<[usize; 4]>,
}

/// A model with its optimizer state, as read back from a file.
pub struct Loaded {
    pub model: Model<f32>,
    pub state: OptState,
    pub version: u64,
}

pub fn save(path: &Path, model: &Model<f32>, state: &OptState, version: u64) -> Result<(), TrainError> {
    let tensors = model.params.tensors();
    let slots = state.slots();
    let lengths = tensors.iter().zip(&slots).map(|(t, s)| [t.len(), s.a.len(), s.b.len(), s.steps.len()]).collect();
    let header = Header { format: FORMAT.into(), spec: model.spec.clone(), version, lengths };
    let file = std::fs::File::create(path).map_err(|e| TrainError::io(path, e))?;
    let mut out = BufWriter::new(file);
    let io = |e| TrainError::io(path, e);
    serde_json::to_writer(&mut out, &header).map_err(|e| TrainError::Format(e.to_string()))?;
    out.write_all(b"\n").map_err(io)?;
    let mut buf = Vec::new();
    for (t, s) in tensors.iter().zip(&slots) {
        for v in t.iter().chain(&s.a).chain(&s.b) {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        for v in &s.steps {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&buf).map_err(io)?;
        buf.clear();
    }
    out.flush().map_err(io)
}

pub fn load(path: &Path) -> Result<Loaded, TrainError> {
    let bytes = {
        let mut file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| TrainError::io(path, e))?;
        bytes
    };
    let bad = |m: &str| TrainError::Format(format!("{}: {m}", path.display()));
    let newline = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| bad("no header line"))?;
    let header: Header = serde_json::from_slice(&bytes[..newline]).map_err(|e| bad(&format!("bad header: {e}")))?;
    if header.format != FORMAT {
        return Err(bad(&format!("format {:?}, expected {FORMAT:?}", header.format)));
    }
    let mut model = Model::<f32>::new(header.spec.clone())?;
    let mut state = OptState { linear: Slots::default(), embeddings: Slots::default(), layers: vec![(Slots::default(), Slots::default()); model.params.layers.len()], bias: Slots::default() };
    let mut at = newline + 1;
    let mut take = |n: usize| -> Result<&[u8], TrainError> {
        let end = at.checked_add(n).filter(|&e| e <= bytes.len()).ok_or_else(|| bad("truncated"))?;
        let slice = &bytes[at..end];
        at = end;
        Ok(slice)
    };
    let f32s = |b: &[u8]| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<f32>>();
    let u32s = |b: &[u8]| b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<u32>>();
    let tensors = model.params.tensors_mut();
    if tensors.len() != header.lengths.len() {
        return Err(bad("tensor count does not match the spec"));
    }
    for ((tensor, slots), len) in tensors.into_iter().zip(state.slots_mut()).zip(&header.lengths) {
        if tensor.len() != len[0] {
            return Err(bad("a tensor's length does not match the spec"));
        }
        *tensor = f32s(take(len[0] * 4)?);
        slots.a = f32s(take(len[1] * 4)?);
        slots.b = f32s(take(len[2] * 4)?);
        slots.steps = u32s(take(len[3] * 4)?);
    }
    Ok(Loaded { model, state, version: header.version })
}
