//! `window-stats`: per-item views, clicks and click-through rate in tumbling event-time windows.
//!
//! Input: the click-stream (`weir gen` writes it); only `event` and `item` are decoded, the
//! other fields are skipped. Output: one [`ItemWindowStats`] per item and window that saw any
//! event, stamped with the window's closing tick.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use weir_engine::prelude::*;

use crate::clickstream::EventKind;

/// The part of a click-stream event this pipeline reads. Item ids are short, so
/// `CompactString` keeps them inline: no allocation per event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemEvent {
    pub event: EventKind,
    pub item: CompactString,
}

/// Views and clicks of one item in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewsClicks {
    pub views: u64,
    pub clicks: u64,
}

/// One output row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemWindowStats {
    pub window_start: i64,
    pub window_end: i64,
    pub item: CompactString,
    pub views: u64,
    pub clicks: u64,
    /// `clicks / views`; absent when the window saw clicks but no views.
    pub ctr: Option<f64>,
}

/// Window length used by the CLI's `window-stats` (60 s).
pub const DEFAULT_WINDOW_MS: i64 = 60_000;

/// The pipeline with 60-second windows.
pub fn window_stats<'s>(events: EventStream<'s, ItemEvent>, ctx: &Context) -> OutputStream<'s, ItemWindowStats> {
    window_stats_with(events, ctx, WindowSpec::tumbling(DEFAULT_WINDOW_MS))
}

/// The pipeline with any window shape.
pub fn window_stats_with<'s>(events: EventStream<'s, ItemEvent>, ctx: &Context, spec: WindowSpec) -> OutputStream<'s, ItemWindowStats> {
    events
        .window_fold(spec, ctx.tick, |e: &ItemEvent| e.item.clone(), |acc: &mut ViewsClicks, e| match e.data.event {
            EventKind::Impression => acc.views += 1,
            EventKind::Click => acc.clicks += 1,
            EventKind::Purchase => {}
        })
        .map_records(|result| ItemWindowStats {
            window_start: result.window.start,
            window_end: result.window.end,
            ctr: (result.value.views > 0).then(|| result.value.clicks as f64 / result.value.views as f64),
            item: result.key,
            views: result.value.views,
            clicks: result.value.clicks,
        })
}
