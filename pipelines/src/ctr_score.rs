//! `ctr-score`: every click-stream event scored by the CTR model of `models/ctr/`.
//!
//! Featurization (the model card `models/ctr/README.md` documents the same):
//! * `sparse` (int64, 4): hashed buckets ([`weir_operators::hashing::bucket`], 4096 buckets)
//!   of `user`, `item`, `category` and a price bucket (`floor(4 ln(1 + price))`, capped at 63);
//! * `dense` (float32, 4): `ln(1 + price)`, sin and cos of the hour of day of the event time, 1.
//!
//! Output: one [`CtrScore`] per event, with the model version; an event the scorer rejects
//! (a NaN price, say) comes out with `error` set instead of a score, so nothing is lost.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use weir_engine::prelude::*;
use weir_operators::hashing::{FieldHasher, bucket};
use weir_operators::score::{PreparedModel, Rejection, RowWriter, ScoreExt, ScoreMapping, ScoreRow, TensorSpec};

use crate::clickstream::EventKind;

/// Buckets per hashed field (the model's embedding table has this many rows).
pub const BUCKETS: u32 = 4096;
const PRICE_BUCKETS: usize = 64;

/// The part of a click-stream event the CTR model reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CtrInput {
    pub event: EventKind,
    pub user: CompactString,
    pub item: CompactString,
    pub category: CompactString,
    pub price: f64,
}

/// One scored event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CtrScore {
    pub ts: i64,
    pub user: CompactString,
    pub item: CompactString,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub p_click: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model_version: Option<u64>,
    /// Why the event could not be scored.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// The mapping from [`CtrInput`] to the CTR model's `sparse` and `dense` inputs.
#[derive(Clone)]
pub struct CtrFeatures {
    /// The hashed bucket of every price bucket, computed once.
    price_buckets: Vec<i64>,
    user: FieldHasher,
    item: FieldHasher,
    category: FieldHasher,
}

impl Default for CtrFeatures {
    fn default() -> Self {
        CtrFeatures {
            price_buckets: (0..PRICE_BUCKETS).map(|b| bucket("price", &b.to_string(), BUCKETS) as i64).collect(),
            user: FieldHasher::new("user"),
            item: FieldHasher::new("item"),
            category: FieldHasher::new("category"),
        }
    }
}

impl CtrFeatures {
    /// The two inputs' rows for one event (what [`ScoreMapping::fill`] writes).
    pub fn features(&self, time: i64, input: &CtrInput) -> Result<([i64; 4], [f32; 4]), String> {
        if !input.price.is_finite() || input.price < 0.0 {
            return Err(format!("price {} is not a finite non-negative number", input.price));
        }
        let log_price = (1.0 + input.price).ln();
        let price_bucket = ((4.0 * log_price) as usize).min(PRICE_BUCKETS - 1);
        let sparse = [
            self.user.bucket(&input.user, BUCKETS) as i64,
            self.item.bucket(&input.item, BUCKETS) as i64,
            self.category.bucket(&input.category, BUCKETS) as i64,
            self.price_buckets[price_bucket],
        ];
        let hour = (time.rem_euclid(86_400_000) as f64 / 3_600_000.0) * std::f64::consts::TAU / 24.0;
        Ok((sparse, [log_price as f32, hour.sin() as f32, hour.cos() as f32, 1.0]))
    }
}

impl ScoreMapping<CtrInput> for CtrFeatures {
    type Output = CtrScore;
    fn inputs(&self) -> Vec<TensorSpec> {
        vec![TensorSpec::i64("sparse", 4), TensorSpec::f32("dense", 4)]
    }
    fn outputs(&self) -> Vec<TensorSpec> {
        vec![TensorSpec::f32("p_click", 1)]
    }
    fn fill(&self, record: &Timed<CtrInput>, row: &mut RowWriter<'_>) -> Result<(), String> {
        let (sparse, dense) = self.features(record.time, &record.data)?;
        row.i64(0).copy_from_slice(&sparse);
        row.f32(1).copy_from_slice(&dense);
        Ok(())
    }
    fn emit(&self, record: Timed<CtrInput>, scores: &ScoreRow<'_>) -> CtrScore {
        CtrScore {
            ts: record.time,
            user: record.data.user,
            item: record.data.item,
            p_click: Some(scores.output(0)[0]),
            model_version: Some(scores.model_version),
            error: None,
        }
    }
}

/// Turns the scorer's rejections into output rows, so every event has one row.
pub fn rejection_row(rejection: Rejection<CtrInput>) -> CtrScore {
    match rejection {
        Rejection::Record { time, reason, record } => {
            CtrScore { ts: time, user: record.user, item: record.item, p_click: None, model_version: None, error: Some(reason) }
        }
        Rejection::Version { version, published_at, reason } => CtrScore {
            ts: published_at,
            user: CompactString::default(),
            item: CompactString::default(),
            p_click: None,
            model_version: Some(version),
            error: Some(reason),
        },
    }
}

/// The pipeline: score every event with `model` (prepared with [`CtrFeatures`]).
pub fn ctr_score(model: PreparedModel) -> impl for<'s> Fn(EventStream<'s, CtrInput>, &Context) -> OutputStream<'s, CtrScore> + Send + Sync + 'static {
    move |events, _ctx| events.score_or(&model, CtrFeatures::default(), rejection_row)
}
