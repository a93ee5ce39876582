//! An embedding table keyed by id (item → title embedding), maintained as a differential
//! collection.
//!
//! Input: a stream of `(id, text)` updates (an item catalogue replayed from files, a changelog).
//! Output: the collection of `(id, embedding)`. Only new or changed texts are encoded: an
//! update whose text equals the id's current text costs nothing, a changed text retracts the old
//! embedding and inserts the new one at the update's tick, so downstream joins
//! ([`weir_engine::operators::JoinTableExt::join_table`]) re-emit exactly the affected results.
//! Several updates of one id within one tick resolve to the one with the latest event time
//! (ties: the greatest text), so the table is the same whatever the worker count.
//!
//! ```no_run
//! use weir_engine::prelude::*;
//! use weir_operators::embedding_table::{EmbeddingTableExt, TableStats};
//! use weir_operators::encoder::EncoderModel;
//! use weir_operators::runtime::SessionOptions;
//! use timely::dataflow::operators::ToStream;
//!
//! let model = EncoderModel::minilm("models/minilm", 256, SessionOptions::default()).unwrap();
//! let stats = TableStats::default();
//! let titles = vec![Timed::new(1, ("i1".to_string(), "Trail Running Shoe".to_string()))];
//! timely::example(move |scope| {
//!     let table = titles.to_stream(scope).embedding_table(&model, 64, &stats).unwrap();
//!     table.inspect(|x| println!("{:?}", x.0.0));
//! });
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use differential_dataflow::VecCollection;
use differential_dataflow::collection::AsCollection;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;
use weir_engine::record::{EventStream, Timed, stable_hash};
use weir_engine::time::Tick;

use crate::encoder::{EncoderModel, Embedding};
use crate::score::ScoreError;

/// Counters of an embedding table (shared by its workers).
#[derive(Clone, Debug, Default)]
pub struct TableStats {
    encoded: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl TableStats {
    /// Texts run through the encoder.
    pub fn encoded(&self) -> u64 {
        self.encoded.load(Ordering::Relaxed)
    }
    /// Texts the encoder failed on (their id keeps its previous embedding).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Builds an embedding table from a stream of `(id, text)` updates.
pub trait EmbeddingTableExt<'scope, K> {
    fn embedding_table(self, model: &EncoderModel, max_batch: usize, stats: &TableStats) -> Result<VecCollection<'scope, Tick, (K, Embedding), isize>, ScoreError>;
}

impl<'scope, K> EmbeddingTableExt<'scope, K> for EventStream<'scope, (K, String)>
where
    K: timely::ExchangeData + differential_dataflow::ExchangeData + Hash + Eq + Ord,
{
    fn embedding_table(self, model: &EncoderModel, max_batch: usize, stats: &TableStats) -> Result<VecCollection<'scope, Tick, (K, Embedding), isize>, ScoreError> {
        let mut encoder = model.encoder()?;
        let stats = stats.clone();
        let max_batch = max_batch.max(1);
        let pact = Exchange::new(|update: &Timed<(K, String)>| stable_hash(&update.data.0));
        let updates = self.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(pact, "EmbeddingTable", move |_capability, _info| {
            let mut current: HashMap<K, (String, Embedding)> = HashMap::new();
            let mut pending: BTreeMap<Tick, (Capability<Tick>, Vec<Timed<(K, String)>>)> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|capability, containers| {
                    let Some(capability) = capability.retain_least(0) else { return };
                    let entry = pending.entry(*capability.time()).or_insert_with(|| (capability, Vec::new()));
                    for container in containers {
                        entry.1.append(container);
                    }
                });
                // A tick's updates are applied once all of them are in, so the result does not
                // depend on how they were split into messages.
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (tick, (capability, updates)) = entry.remove_entry();
                    let changed = changed_texts(&current, updates);
                    let mut session = output.session(&capability);
                    for chunk in changed.chunks(max_batch) {
                        let texts: Vec<&str> = chunk.iter().map(|(_, text)| text.as_str()).collect();
                        match encoder.encode(&texts) {
                            Ok(embeddings) => {
                                stats.encoded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                                for ((key, text), embedding) in chunk.iter().cloned().zip(embeddings) {
                                    if let Some((_, old)) = current.insert(key.clone(), (text, embedding.clone())) {
                                        session.give(((key.clone(), old), tick, -1isize));
                                    }
                                    session.give(((key, embedding), tick, 1isize));
                                }
                            }
                            Err(reason) => {
                                stats.failed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                                eprintln!("weir: embedding table: {} texts not encoded, previous embeddings kept: {reason}", chunk.len());
                            }
                        }
                    }
                }
            }
        });
        Ok(updates.as_collection())
    }
}

/// The ids whose text this tick's updates change, with the new text, sorted by id.
fn changed_texts<K: Hash + Eq + Ord + Clone>(current: &HashMap<K, (String, Embedding)>, updates: Vec<Timed<(K, String)>>) -> Vec<(K, String)> {
    let mut latest: BTreeMap<K, (i64, String)> = BTreeMap::new();
    for Timed { time, data: (key, text) } in updates {
        match latest.get_mut(&key) {
            Some(seen) if (time, &text) <= (seen.0, &seen.1) => {}
            Some(seen) => *seen = (time, text),
            None => {
                latest.insert(key, (time, text));
            }
        }
    }
    latest
        .into_iter()
        .filter(|(key, (_, text))| current.get(key).is_none_or(|(old, _)| old != text))
        .map(|(key, (_, text))| (key, text))
        .collect()
}
