//! Tokenization: texts → `input_ids` / `attention_mask` / `token_type_ids`, padded per batch.
//!
//! [`TextTokenizer`] wraps a Hugging Face `tokenizer.json` (the `tokenizers` crate): its
//! normalizer, pre-tokenizer, WordPiece model and `[CLS] … [SEP]` template as the file says,
//! but padding to the longest text *of each batch* (not the file's fixed length) and truncation at
//! a configurable length. [`TokenizeExt::tokenize`] runs it as a stream operator that batches
//! records like the scorer does and emits one [`Tokenized`] batch at a time, ready to become the
//! `int64 [batch, seq]` inputs of a transformer.
//!
//! ```no_run
//! use weir_operators::tokenize::TextTokenizer;
//! let tokenizer = TextTokenizer::from_file("models/minilm/tokenizer.json", 256).unwrap();
//! let batch = tokenizer.encode_batch(&["Trail Running Shoe", "a"]).unwrap();
//! assert_eq!(batch.rows, 2);
//! assert_eq!(batch.input_ids.len(), 2 * batch.seq_len);
//! assert_eq!(batch.input_ids[0], 101); // [CLS]
//! ```

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};
use weir_engine::record::{EventStream, OutputStream, Timed};
use weir_engine::time::Tick;

use crate::batching::Pending;

/// Why a tokenizer cannot be loaded or cannot encode.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("cannot load the tokenizer {path}: {reason} (scripts/setup/models.sh fetches models/minilm/tokenizer.json)")]
    Load { path: String, reason: String },
    #[error("max_length must be at least 2 (room for [CLS] and [SEP])")]
    MaxLength,
    #[error("tokenization failed: {0}")]
    Encode(String),
}

/// The token tensors of one batch, row-major `[rows, seq_len]`, padded with id 0 / mask 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBatch {
    pub rows: usize,
    pub seq_len: usize,
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    pub token_type_ids: Vec<i64>,
}

impl TokenBatch {
    /// Row `row` of one of the tensors.
    pub fn row<'a>(&self, tensor: &'a [i64], row: usize) -> &'a [i64] {
        &tensor[row * self.seq_len..(row + 1) * self.seq_len]
    }
}

/// A tokenizer with batch-longest padding and a maximum length. Cheap to clone (shared).
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Arc<Tokenizer>,
    max_length: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; texts are truncated to `max_length` tokens, special tokens included.
    pub fn from_file(path: impl AsRef<Path>, max_length: usize) -> Result<Self, TokenizeError> {
        let path = path.as_ref();
        let load_error = |reason: String| TokenizeError::Load { path: path.display().to_string(), reason };
        if max_length < 2 {
            return Err(TokenizeError::MaxLength);
        }
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| load_error(e.to_string()))?;
        let padding = tokenizer.get_padding().cloned().unwrap_or_default();
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, pad_to_multiple_of: None, ..padding }));
        let truncation = tokenizer.get_truncation().cloned().unwrap_or_default();
        tokenizer.with_truncation(Some(TruncationParams { max_length, ..truncation })).map_err(|e| load_error(e.to_string()))?;
        Ok(TextTokenizer { inner: Arc::new(tokenizer), max_length })
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Tokenizes `texts` as one batch.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<TokenBatch, TokenizeError> {
        let encodings = self.inner.encode_batch_fast(texts.to_vec(), true).map_err(|e| TokenizeError::Encode(e.to_string()))?;
        let seq_len = encodings.first().map_or(0, |e| e.len());
        let mut batch = TokenBatch {
            rows: encodings.len(),
            seq_len,
            input_ids: Vec::with_capacity(encodings.len() * seq_len),
            attention_mask: Vec::with_capacity(encodings.len() * seq_len),
            token_type_ids: Vec::with_capacity(encodings.len() * seq_len),
        };
        for encoding in &encodings {
            if encoding.len() != seq_len {
                return Err(TokenizeError::Encode(format!("padding gave rows of {} and {seq_len} tokens", encoding.len())));
            }
            batch.input_ids.extend(encoding.get_ids().iter().map(|&id| id as i64));
            batch.attention_mask.extend(encoding.get_attention_mask().iter().map(|&m| m as i64));
            batch.token_type_ids.extend(encoding.get_type_ids().iter().map(|&t| t as i64));
        }
        Ok(batch)
    }
}

/// A batch of records and their tokens (row `i` belongs to `records[i]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tokenized<D> {
    pub records: Vec<Timed<D>>,
    pub tokens: TokenBatch,
}

/// Tokenization as a stream operator.
pub trait TokenizeExt<'scope, D> {
    /// Tokenizes `text(record)` for every record, in batches of at most `max_batch` records
    /// (fewer when the frontier passes first). Each batch goes out at the latest tick among its
    /// records. Tokenization of valid UTF-8 cannot fail; should it anyway, the batch's records
    /// come out with an empty token batch and the error is not swallowed silently: it is
    /// printed once.
    fn tokenize<F>(self, tokenizer: &TextTokenizer, text: F, max_batch: usize) -> OutputStream<'scope, Tokenized<D>>
    where
        F: Fn(&D) -> &str + 'static;
}

impl<'scope, D: timely::ExchangeData + Clone> TokenizeExt<'scope, D> for EventStream<'scope, D> {
    fn tokenize<F>(self, tokenizer: &TextTokenizer, text: F, max_batch: usize) -> OutputStream<'scope, Tokenized<D>>
    where
        F: Fn(&D) -> &str + 'static,
    {
        let tokenizer = tokenizer.clone();
        let max_batch = max_batch.max(1);
        self.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(Pipeline, "Tokenize", move |_capability, _info| {
            let mut pending = Pending::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|capability, containers| {
                    let Some(capability) = capability.retain_least(0) else { return };
                    pending.absorb(capability, containers);
                });
                for batch in pending.take_batches(max_batch, frontier, |_| true) {
                    let latest: Tick = batch.iter().map(|(tick, _)| *tick).max().expect("batches are never empty");
                    let records: Vec<Timed<D>> = batch.into_iter().map(|(_, record)| record).collect();
                    let texts: Vec<&str> = records.iter().map(|r| text(&r.data)).collect();
                    let tokens = tokenizer.encode_batch(&texts).unwrap_or_else(|error| {
                        eprintln!("weir: tokenize: {error}");
                        TokenBatch::default()
                    });
                    drop(texts);
                    output.session(&pending.capabilities[&latest]).give(Tokenized { records, tokens });
                }
                pending.release();
            }
        })
    }
}
