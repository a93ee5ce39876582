//! The e-commerce click-stream: its event schema and its seeded generator (`weir gen`).

pub mod generate;

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Impression,
    Click,
    Purchase,
}

/// One line of the click-stream log (JSONL): `ts` is event time in Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClickEvent {
    pub ts: i64,
    pub event: EventKind,
    /// `u{id}`
    pub user: String,
    /// `i{id}`
    pub item: String,
    pub category: String,
    /// Rounded to cents.
    pub price: f64,
    /// Product title, deterministic per item.
    pub title: String,
}
