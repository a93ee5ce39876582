//! Training throughput on one core, next to prediction-only throughput in the same run.
//!
//! `cargo run --release -p weir-pipelines --example train_bench -- [EVENTS]`
//!
//! Generates a click-stream (`weir gen`'s generator), labels impressions with a plain
//! attribution loop (5-minute window), featurizes them, and times on one thread:
//! prediction only; the bare training step (forward, backward, optimizer); the trainer's whole
//! per-example loop (progressive prediction, guardrail, publishing versions in memory); and the
//! `ctr-train` dataflow (attribution + trainer) on one worker. Best of three runs each.

use std::collections::HashMap;
use std::time::Instant;

use weir_engine::prelude::*;
use weir_operators::train::{Example, Guardrail, ModelSpec, Optimizer, Trainer, TrainerConfig};
use weir_pipelines::clickstream::EventKind;
use weir_pipelines::clickstream::generate::{GenConfig, Generator};
use weir_pipelines::ctr_train::{CtrEvent, FIELDS, ctr_train_summary, featurize, pair_key};

const WINDOW_MS: i64 = 5 * 60 * 1000;
const BUCKETS: u32 = 1 << 20;

fn best_of<F: FnMut() -> usize>(mut f: F) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..3 {
        let start = Instant::now();
        n = f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, n)
}

fn config(spec: ModelSpec) -> TrainerConfig {
    let mut config = TrainerConfig::new(spec);
    config.optimizer = Optimizer::adamw(0.002);
    config.linear_optimizer = Optimizer::Ftrl { alpha: 0.1, beta: 1.0, l1: 0.0, l2: 0.0 };
    config.publish_every_examples = Some(100_000);
    config.guardrail = Guardrail { slice: 2_000, margin: 0.01 };
    config.max_label_delay_ms = WINDOW_MS;
    config
}

fn main() {
    let events: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mut gen_config = GenConfig::with_events(events, 7);
    gen_config.attribution_window_ms = WINDOW_MS;
    let records: Vec<Timed<CtrEvent>> = Generator::new(gen_config)
        .map(|g| Timed::new(g.event.ts, CtrEvent { event: g.event.event, user: g.event.user.into(), item: g.event.item.into(), category: g.event.category.into(), price: g.event.price }))
        .collect();
    // Label by a plain loop: a click within the window makes its earliest open impression positive.
    let mut open: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut labels = vec![None; records.len()];
    for (i, r) in records.iter().enumerate() {
        let key = pair_key(&r.data.user, &r.data.item);
        match r.data.event {
            EventKind::Impression => {
                open.entry(key).or_default().push(i);
                labels[i] = Some(0.0f32);
            }
            EventKind::Click => {
                if let Some(list) = open.get_mut(&key)
                    && let Some(at) = list.iter().position(|&j| r.time < records[j].time + WINDOW_MS)
                {
                    labels[list.remove(at)] = Some(1.0);
                }
            }
            EventKind::Purchase => {}
        }
    }
    let examples: Vec<(i64, Example)> = records
        .iter()
        .zip(&labels)
        .filter_map(|(r, l)| {
            let mut e = featurize(r.time, &r.data, BUCKETS);
            e.label = (*l)?;
            Some((r.time, e))
        })
        .collect();
    let n = examples.len();
    println!("train benchmark: {events} events, {n} labelled impressions, table of {BUCKETS} rows, one thread, best of 3");
    println!("{:<58} {:>14} {:>9}", "variant", "examples/s", "seconds");
    let row = |name: &str, (secs, count): (f64, usize)| println!("{:<58} {:>14.0} {:>9.3}", name, count as f64 / secs, secs);

    for (name, spec) in [
        ("hashed logistic (5 fields)", ModelSpec::logistic(&FIELDS, BUCKETS)),
        ("MLP head (5 fields x 8-d embeddings -> 32 -> 1, + linear)", ModelSpec::mlp(&FIELDS, BUCKETS, 8, &[32])),
    ] {
        println!("-- {name}");
        let trainer = Trainer::new(config(spec.clone())).unwrap();
        let model = trainer.model().clone();
        row("predict only (forward + sigmoid)", best_of(|| {
            let mut ws = model.workspace();
            let mut sum = 0.0f32;
            for (_, e) in &examples {
                model.predict_into(e, &mut ws);
                sum += ws.logits[0];
            }
            std::hint::black_box(sum);
            n
        }));
        row("train step only (forward, backward, optimizer)", best_of(|| {
            let mut trainer = Trainer::new(config(spec.clone())).unwrap();
            for (_, e) in &examples {
                trainer.fit(e).unwrap();
            }
            n
        }));
        row("trainer loop (progressive predict + guardrail + train + publish)", best_of(|| {
            let mut trainer = Trainer::new(config(spec.clone())).unwrap();
            let mut out = Vec::new();
            for (t, e) in &examples {
                trainer.process(*t, e, &mut out).unwrap();
                out.clear();
            }
            n
        }));
        let pipeline_config = config(spec.clone());
        row("ctr-train dataflow, 1 worker (attribution + trainer), per impression", best_of(|| {
            let sink = MemorySink::new();
            let c = pipeline_config.clone();
            Pipeline::new(Execution::Threads(1))
                .run(Source::Memory(MemorySource::new(records.clone()).chunk(4096)), Sink::Memory(sink.clone()), move |ev, ctx| ctr_train_summary(ev, ctx, &c, WINDOW_MS))
                .unwrap();
            n
        }));
    }
}
