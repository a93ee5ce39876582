//! A real sentence encoder: all-MiniLM-L6-v2 (int8 ONNX) → 384-d text embeddings.
//!
//! Texts are tokenized ([`TextTokenizer`]), run through the model (`input_ids`,
//! `attention_mask`, `token_type_ids` → `last_hidden_state [batch, seq, 384]`), mean-pooled over
//! the attention mask and L2-normalised: the sentence-transformers recipe, so the embeddings
//! match the Python reference (`models/fixtures/make_fixtures.py`). `scripts/setup/models.sh`
//! fetches the model and its tokenizer into `models/minilm/` (see `models/minilm/README.md`).
//!
//! Encoding costs milliseconds per title: encode each item once and keep the result (the
//! [`crate::embedding_table`] does), never per event.
//!
//! ```no_run
//! use weir_operators::encoder::EncoderModel;
//! use weir_operators::runtime::SessionOptions;
//! let model = EncoderModel::minilm("models/minilm", 256, SessionOptions::default()).unwrap();
//! let mut encoder = model.encoder().unwrap();
//! let embeddings = encoder.encode(&["Trail Running Shoe", "Espresso Machine"]).unwrap();
//! assert_eq!(embeddings[0].0.len(), 384);
//! ```

use std::hash::{Hash, Hasher};
use std::path::Path;

use ndarray::ArrayViewD;
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use weir_engine::record::{EventStream, OutputStream, Timed};

use crate::batching::{Pending, send};
use crate::runtime::{OnnxRuntime, SessionOptions};
use crate::score::{OnnxModel, Rejection, ScoreError, Scored};
use crate::tokenize::{TextTokenizer, TokenBatch};

/// The width of MiniLM's embeddings.
pub const MINILM_DIM: usize = 384;

/// A text embedding. Compared, ordered and hashed by the bits of its values, so it can be
/// differential-dataflow data (an embedding table is a collection).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    fn bits(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().map(|x| x.to_bits())
    }
    /// Cosine similarity (embeddings are unit length, so this is the dot product over norms).
    pub fn cosine(&self, other: &Embedding) -> f64 {
        let dot: f64 = self.0.iter().zip(&other.0).map(|(a, b)| *a as f64 * *b as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        dot / (norm(&self.0) * norm(&other.0)).max(1e-30)
    }
}

impl PartialEq for Embedding {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.bits().eq(other.bits())
    }
}
impl Eq for Embedding {}
impl PartialOrd for Embedding {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Embedding {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bits().cmp(other.bits())
    }
}
impl Hash for Embedding {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.len().hash(state);
        self.bits().for_each(|b| b.hash(state));
    }
}

/// The encoder's model and tokenizer, loaded and checked once; every worker makes its own
/// [`SentenceEncoder`] from it.
#[derive(Clone)]
pub struct EncoderModel {
    pub onnx: OnnxModel,
    pub tokenizer: TextTokenizer,
    pub options: SessionOptions,
}

impl EncoderModel {
    /// MiniLM from a directory holding `model.onnx` and `tokenizer.json`.
    pub fn minilm(dir: impl AsRef<Path>, max_length: usize, options: SessionOptions) -> Result<Self, ScoreError> {
        let dir = dir.as_ref();
        Self::load(dir.join("model.onnx"), dir.join("tokenizer.json"), max_length, options)
    }

    pub fn load(model: impl AsRef<Path>, tokenizer: impl AsRef<Path>, max_length: usize, options: SessionOptions) -> Result<Self, ScoreError> {
        let model = model.as_ref();
        if !model.is_file() {
            return Err(ScoreError::ReadModel {
                path: model.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "missing: run scripts/setup/models.sh"),
            });
        }
        let tokenizer = TextTokenizer::from_file(tokenizer, max_length).map_err(|e| ScoreError::Config(e.to_string()))?;
        let encoder = EncoderModel { onnx: OnnxModel::from_file(model)?, tokenizer, options };
        encoder.encoder()?; // loads once: a bad file or a wrong signature fails here
        Ok(encoder)
    }

    /// A new encoder with its own session (one per worker).
    pub fn encoder(&self) -> Result<SentenceEncoder, ScoreError> {
        let (session, _device) = OnnxRuntime::get()?.session(&self.onnx.bytes, &self.options)?;
        check_encoder_signature(&session).map_err(|reason| ScoreError::Mismatch { model: self.onnx.name.clone(), reason })?;
        Ok(SentenceEncoder { tokenizer: self.tokenizer.clone(), session })
    }
}

fn check_encoder_signature(session: &Session) -> Result<(), String> {
    let mut names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    names.sort_unstable();
    if names != ["attention_mask", "input_ids", "token_type_ids"] {
        return Err(format!("a sentence encoder needs inputs input_ids, attention_mask, token_type_ids; the model has {names:?}"));
    }
    let Some(output) = session.outputs().iter().find(|o| o.name() == "last_hidden_state") else {
        return Err("a sentence encoder needs the output last_hidden_state".into());
    };
    match output.dtype().tensor_shape().map(|s| s.to_vec()) {
        Some(dims) if dims.len() == 3 && dims[2] == MINILM_DIM as i64 => Ok(()),
        other => Err(format!("last_hidden_state should be [batch, seq, {MINILM_DIM}], the model says {other:?}")),
    }
}

/// Tokenizer + session on one worker.
pub struct SentenceEncoder {
    tokenizer: TextTokenizer,
    session: Session,
}

impl SentenceEncoder {
    /// Embeds `texts` as one batch.
    pub fn encode(&mut self, texts: &[&str]) -> Result<Vec<Embedding>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let tokens = self.tokenizer.encode_batch(texts).map_err(|e| e.to_string())?;
        self.encode_tokens(&tokens)
    }

    /// Embeds a tokenized batch.
    pub fn encode_tokens(&mut self, tokens: &TokenBatch) -> Result<Vec<Embedding>, String> {
        let shape = [tokens.rows, tokens.seq_len];
        fn view(shape: [usize; 2], data: &[i64]) -> Result<TensorRef<'_, i64>, String> {
            TensorRef::from_array_view((shape, data)).map_err(|e| e.to_string())
        }
        let inputs = ort::inputs![
            "input_ids" => view(shape, &tokens.input_ids)?,
            "attention_mask" => view(shape, &tokens.attention_mask)?,
            "token_type_ids" => view(shape, &tokens.token_type_ids)?,
        ];
        let outputs = self.session.run(inputs).map_err(|e| e.to_string())?;
        let hidden: ArrayViewD<'_, f32> = outputs["last_hidden_state"].try_extract_array::<f32>().map_err(|e| e.to_string())?;
        if hidden.shape() != [tokens.rows, tokens.seq_len, MINILM_DIM] {
            return Err(format!("last_hidden_state has shape {:?}", hidden.shape()));
        }
        let hidden = hidden.as_slice().ok_or("last_hidden_state is not contiguous")?;
        Ok((0..tokens.rows).map(|row| mean_pool(hidden, tokens.row(&tokens.attention_mask, row), row, tokens.seq_len)).collect())
    }
}

/// Mean of the hidden states of the row's real tokens (mask 1), L2-normalised. Sums in f64.
fn mean_pool(hidden: &[f32], mask: &[i64], row: usize, seq_len: usize) -> Embedding {
    let mut sum = [0f64; MINILM_DIM];
    let mut count = 0f64;
    for (position, &m) in mask.iter().enumerate() {
        if m != 0 {
            let start = (row * seq_len + position) * MINILM_DIM;
            for (acc, &x) in sum.iter_mut().zip(&hidden[start..start + MINILM_DIM]) {
                *acc += x as f64;
            }
            count += 1.0;
        }
    }
    let count = count.max(1e-9);
    let norm = sum.iter().map(|s| (s / count).powi(2)).sum::<f64>().sqrt().max(1e-12);
    Embedding(sum.iter().map(|s| (s / count / norm) as f32).collect())
}

/// A record and the embedding of its text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Embedded<D> {
    pub record: Timed<D>,
    pub embedding: Embedding,
}

/// Text embedding as a stream operator.
pub trait EncodeExt<'scope, D> {
    /// Embeds `text(record)` for every record, batching like the scorer (at most `max_batch`
    /// texts per run; a partial batch when the frontier passes). Each result goes out at its
    /// record's tick. A batch the model rejects becomes rejections with the reason.
    fn encode_text<F>(self, model: &EncoderModel, text: F, max_batch: usize) -> Result<OutputStream<'scope, Scored<Embedded<D>, D>>, ScoreError>
    where
        F: Fn(&D) -> &str + 'static;
}

impl<'scope, D: timely::ExchangeData + Clone> EncodeExt<'scope, D> for EventStream<'scope, D> {
    fn encode_text<F>(self, model: &EncoderModel, text: F, max_batch: usize) -> Result<OutputStream<'scope, Scored<Embedded<D>, D>>, ScoreError>
    where
        F: Fn(&D) -> &str + 'static,
    {
        let mut encoder = model.encoder()?;
        let max_batch = max_batch.max(1);
        Ok(self.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(Pipeline, "EncodeText", move |_capability, _info| {
            let mut pending = Pending::new();
            let mut results = Vec::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|capability, containers| {
                    let Some(capability) = capability.retain_least(0) else { return };
                    pending.absorb(capability, containers);
                });
                for batch in pending.take_batches(max_batch, frontier, |_| true) {
                    let texts: Vec<&str> = batch.iter().map(|(_, record)| text(&record.data)).collect();
                    let encoded = encoder.encode(&texts);
                    drop(texts);
                    match encoded {
                        Ok(embeddings) => results.extend(batch.into_iter().zip(embeddings).map(|((tick, record), embedding)| (tick, Ok(Embedded { record, embedding })))),
                        Err(reason) => results.extend(batch.into_iter().map(|(tick, record)| {
                            (tick, Rejection::of_record(record, format!("the encoder failed: {reason}")))
                        })),
                    }
                    send(output, &pending.capabilities, &mut results);
                }
                pending.release();
            }
        }))
    }
}
