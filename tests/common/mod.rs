//! Shared helpers for the end-to-end tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use weir::pipelines::clickstream::generate::{GenConfig, Generator};
use weir::pipelines::clickstream::{ClickEvent, EventKind};
use weir::pipelines::window_stats::{ItemEvent, ItemWindowStats};
use weir::prelude::*;

/// `n` generated events (seeded), at a high rate so windows hold many items.
pub fn generated(n: u64, seed: u64) -> Vec<ClickEvent> {
    let mut config = GenConfig::with_events(n, seed);
    config.impressions_per_sec = 200.0;
    config.items = 500;
    Generator::new(config).map(|g| g.event).collect()
}

pub fn write_jsonl(path: &Path, events: &[ClickEvent]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for event in events {
        serde_json::to_writer(&mut file, event).unwrap();
        file.write_all(b"\n").unwrap();
    }
    file.flush().unwrap();
}

pub fn timed(events: &[ClickEvent]) -> Vec<Timed<ItemEvent>> {
    events.iter().map(|e| Timed::new(e.ts, ItemEvent { event: e.event, item: e.item.as_str().into() })).collect()
}

/// window-stats computed by a plain loop: the independent expectation.
pub fn reference_window_stats(events: &[(i64, EventKind, String)], window_ms: i64) -> Vec<ItemWindowStats> {
    let mut groups: BTreeMap<(i64, String), (u64, u64)> = BTreeMap::new();
    for (ts, kind, item) in events {
        let start = ts.div_euclid(window_ms) * window_ms;
        let entry = groups.entry((start, item.clone())).or_default();
        match kind {
            EventKind::Impression => entry.0 += 1,
            EventKind::Click => entry.1 += 1,
            EventKind::Purchase => {}
        }
    }
    groups
        .into_iter()
        .map(|((start, item), (views, clicks))| ItemWindowStats {
            window_start: start,
            window_end: start + window_ms,
            item: item.into(),
            views,
            clicks,
            ctr: (views > 0).then(|| clicks as f64 / views as f64),
        })
        .collect()
}

pub fn reference_for(events: &[ClickEvent]) -> Vec<ItemWindowStats> {
    let triples: Vec<_> = events.iter().map(|e| (e.ts, e.event, e.item.clone())).collect();
    reference_window_stats(&triples, 60_000)
}

pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Waits for a child process with a deadline, so a stuck run fails the test instead of hanging
/// the suite (a guard against hangs, not a measurement of speed).
pub fn wait(child: &mut std::process::Child, limit: std::time::Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("a child process did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
