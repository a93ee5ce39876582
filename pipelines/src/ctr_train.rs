//! `ctr-train`: learns the click-through rate of the click-stream online, from delayed labels,
//! and publishes model versions (issue 5).
//!
//! ```text
//! click-stream ─ featurize ─ attribute (impression × click within the window) ─ train ─ versions
//!   (parallel)      (hashed)    (exchanged by user × item)                  (one worker)
//! ```
//!
//! Sparse features, hashed into one table ([`FIELDS`]): user, item, category, the price bucket
//! within its category, and the user × category cross (which lets a linear model learn the
//! hidden segment × category affinity of `weir gen`'s true model, and follow its drift).

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use weir_engine::prelude::*;
use weir_engine::record::stable_hash;
use weir_operators::attribution::{AttributeExt, AttributionSpec, Touch, Touched};
use weir_operators::hashing::{bucket, cross_bucket};
use weir_operators::train::{Example, TrainExt, TrainerConfig, TrainerEvent, price_bucket};

use crate::clickstream::EventKind;

/// The part of a click-stream event this pipeline reads (the title is skipped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CtrEvent {
    pub event: EventKind,
    pub user: CompactString,
    pub item: CompactString,
    pub category: CompactString,
    pub price: f64,
}

/// The sparse fields, in [`Example::sparse`] order.
pub const FIELDS: [&str; 5] = ["user", "item", "category", "price", "user_x_category"];

/// The join key of an impression and its clicks.
pub fn pair_key(user: &str, item: &str) -> u64 {
    stable_hash(&(user, item))
}

/// Hashed features of an event (label 0; attribution sets it).
pub fn featurize(time: i64, event: &CtrEvent, buckets: u32) -> Example {
    let price = price_bucket(event.price).to_string();
    let sparse = vec![
        bucket("user", &event.user, buckets),
        bucket("item", &event.item, buckets),
        bucket("category", &event.category, buckets),
        cross_bucket("price", &event.category, &price, buckets),
        cross_bucket("user_x_category", &event.user, &event.category, buckets),
    ];
    Example::new(time, sparse, 0.0).with_key(pair_key(&event.user, &event.item))
}

/// Click-stream events → labelled examples (timed by when the label became known).
pub fn labelled_examples<'s>(events: EventStream<'s, CtrEvent>, ctx: &Context, buckets: u32, window_ms: i64) -> EventStream<'s, Example> {
    use weir_engine::timely::dataflow::operators::vec::Map;
    events
        .flat_map(move |e| {
            let touch = match e.data.event {
                EventKind::Impression => Touch::Impression,
                EventKind::Click => Touch::Click,
                EventKind::Purchase => Touch::Purchase,
            };
            let key = pair_key(&e.data.user, &e.data.item);
            // Only impressions carry features; clicks need just their key.
            let data = if touch == Touch::Impression { Some(featurize(e.time, &e.data, buckets)) } else { None };
            Some(Timed::new(e.time, Touched { touch, key, data }))
        })
        .attribute(AttributionSpec::clicks_within(window_ms), ctx.tick)
        .flat_map(|t| {
            let mut example = t.data.impression?;
            example.label = if t.data.positive { 1.0 } else { 0.0 };
            Some(Timed::new(t.time, example))
        })
}

/// The whole pipeline: what the trainer reports (versions, rejections, metrics, predictions).
pub fn ctr_train<'s>(events: EventStream<'s, CtrEvent>, ctx: &Context, config: &TrainerConfig, window_ms: i64) -> OutputStream<'s, TrainerEvent> {
    let buckets = config.spec.buckets;
    labelled_examples(events, ctx, buckets, window_ms).train(config.clone()).expect("the trainer config was checked before the run")
}

/// What `ctr-train` writes: the trainer's events, with each version summarised by its size and
/// hash (the `.onnx` bytes themselves go to the run directory and to the scorers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrainOutput {
    Version { version: u64, published_at: i64, onnx_bytes: usize, onnx_fnv1a: String },
    Rejected(weir_operators::train::Rejection),
    Metrics(weir_operators::train::WindowMetrics),
    Prediction(weir_operators::train::Prediction),
    Invalid { time: i64, reason: String },
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

impl From<TrainerEvent> for TrainOutput {
    fn from(event: TrainerEvent) -> Self {
        match event {
            TrainerEvent::Version(v) => TrainOutput::Version { version: v.version, published_at: v.published_at, onnx_bytes: v.onnx.len(), onnx_fnv1a: format!("{:016x}", fnv1a(&v.onnx)) },
            TrainerEvent::Rejected(r) => TrainOutput::Rejected(r),
            TrainerEvent::Metrics(m) => TrainOutput::Metrics(m),
            TrainerEvent::Prediction(p) => TrainOutput::Prediction(p),
            TrainerEvent::Invalid { time, reason } => TrainOutput::Invalid { time, reason },
        }
    }
}

/// [`ctr_train`] with summarised versions, ready for a sink.
pub fn ctr_train_summary<'s>(events: EventStream<'s, CtrEvent>, ctx: &Context, config: &TrainerConfig, window_ms: i64) -> OutputStream<'s, TrainOutput> {
    use weir_engine::timely::dataflow::operators::vec::Map;
    ctr_train(events, ctx, config, window_ms).map(TrainOutput::from)
}

/// The acceptance figures of a run: progressive AUC over the last part of the impressions,
/// against the model frozen at the cut and against the generator's true probabilities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Acceptance {
    /// Impression time from which the figures are taken (the first 20 % of impressions are before).
    pub cut_ms: i64,
    pub examples: usize,
    pub progressive_auc: Option<f64>,
    pub progressive_logloss: f64,
    pub frozen_auc: Option<f64>,
    pub frozen_logloss: f64,
    pub truth_auc: Option<f64>,
    pub truth_logloss: f64,
    /// Predictions without a matching truth record (should be 0).
    pub unmatched: usize,
}

/// Computes [`Acceptance`] from a run's predictions (made with `baseline_from_ms = cut_ms`) and
/// the generator's truth, keyed by (impression time, [`pair_key`]).
pub fn acceptance(predictions: &[weir_operators::train::Prediction], truth: &std::collections::HashMap<(i64, u64), f64>, cut_ms: i64) -> Acceptance {
    use weir_operators::eval::Progressive;
    let (mut progressive, mut frozen, mut oracle) = (Progressive::default(), Progressive::default(), Progressive::default());
    let mut unmatched = 0;
    let (mut frozen_missing, mut examples) = (0usize, 0usize);
    for p in predictions.iter().filter(|p| p.impression_time >= cut_ms) {
        let label = p.label == 1.0;
        examples += 1;
        progressive.add(p.prediction as f64, label);
        match p.baseline {
            Some(b) => frozen.add(b as f64, label),
            None => frozen_missing += 1,
        }
        match truth.get(&(p.impression_time, p.key)) {
            Some(&t) => oracle.add(t, label),
            None => unmatched += 1,
        }
    }
    let (p, f, o) = (progressive.summary(), frozen.summary(), oracle.summary());
    Acceptance {
        cut_ms,
        examples,
        progressive_auc: p.auc,
        progressive_logloss: p.logloss,
        frozen_auc: if frozen_missing == 0 { f.auc } else { None },
        frozen_logloss: f.logloss,
        truth_auc: o.auc,
        truth_logloss: o.logloss,
        unmatched,
    }
}
