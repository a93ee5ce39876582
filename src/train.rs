//! `weir train`: the `ctr-train` pipeline on a click-stream log — online learning from delayed
//! labels, versions written to a run directory — and, with `--truth`, the acceptance figures
//! (progressive AUC over the last 80 % of impressions vs the model frozen after the first 20 %
//! vs the generator's true probabilities).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use weir_engine::prelude::*;
use weir_operators::train::{Guardrail, ModelSpec, Optimizer, Trainable, Trainer, TrainerConfig};
use weir_pipelines::ctr_train::{CtrEvent, FIELDS, TrainOutput, acceptance, ctr_train_summary, pair_key};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelKind {
    /// Hashed logistic regression (FTRL-Proximal on the linear part).
    Logistic,
    /// Linear part + embeddings into an MLP head (AdamW).
    Mlp,
}

#[derive(Args, Clone)]
pub struct TrainOptions {
    /// Click-stream log (JSONL as `weir gen` writes it).
    #[arg(long)]
    pub input: String,
    /// Run directory: versions (`v000001.onnx`, `.state`), `manifest.jsonl`, `final.*`.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// The generator's truth file (`weir gen --truth`): prints the acceptance figures.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Write every trainer output (versions, metrics, predictions) here (.jsonl).
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    #[arg(long, default_value_t = 1000)]
    pub tick_ms: u64,
    /// Attribution window, ms: a click within it after its impression makes a positive (at the
    /// click's time), an impression no click claimed becomes a negative when it ends. Default
    /// 5 minutes: `weir gen`'s click delays are exponential with mean 40 s, so 5 minutes keeps
    /// all but ~0.06 % of the clicks (later ones count as negatives), while every negative
    /// waits the whole window before the trainer sees it. A window as long as the log (30
    /// minutes on 1M events) would hold back nearly all negatives to the end of the run.
    #[arg(long, default_value_t = 5 * 60 * 1000)]
    pub window_ms: i64,
    #[arg(long, value_enum, default_value = "logistic")]
    pub model: ModelKind,
    /// Rows of the hashed table.
    #[arg(long, default_value_t = 1 << 20)]
    pub buckets: u32,
    #[arg(long, default_value_t = 8)]
    pub embedding_dim: usize,
    #[arg(long, value_delimiter = ',', default_value = "32")]
    pub hidden: Vec<usize>,
    /// Learning rate of the linear part (FTRL alpha; 0.3 was best of 0.03–3 on `weir gen` data).
    #[arg(long, default_value_t = 0.3)]
    pub linear_lr: f32,
    /// Learning rate of embeddings and head (AdamW).
    #[arg(long, default_value_t = 0.002)]
    pub lr: f32,
    /// Publish a version every this many examples.
    #[arg(long, default_value_t = 20_000)]
    pub publish_every: u64,
    /// Examples a candidate is validated on before promotion (0: no guardrail).
    #[arg(long, default_value_t = 2_000)]
    pub guardrail_slice: usize,
    #[arg(long, default_value_t = 0.01)]
    pub guardrail_margin: f64,
    /// Start from this state file (e.g. `initial.state` of an offline run).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Promote no version above this one.
    #[arg(long)]
    pub pin_version: Option<u64>,
    /// Train the head only (embeddings and linear weights frozen).
    #[arg(long)]
    pub head_only: bool,
    /// With `--model mlp`: add the factorization-machine term (pairwise embedding dot products).
    #[arg(long)]
    pub interactions: bool,
}

fn config(options: &TrainOptions, baseline_from_ms: Option<i64>) -> TrainerConfig {
    let spec = match options.model {
        ModelKind::Logistic => ModelSpec::logistic(&FIELDS, options.buckets),
        ModelKind::Mlp => ModelSpec::mlp(&FIELDS, options.buckets, options.embedding_dim, &options.hidden),
    };
    let mut spec = spec;
    spec.interactions = options.interactions;
    let mut config = TrainerConfig::new(spec);
    config.linear_optimizer = Optimizer::Ftrl { alpha: options.linear_lr, beta: 1.0, l1: 0.0, l2: 0.0 };
    config.optimizer = Optimizer::adamw(options.lr);
    config.publish_every_examples = Some(options.publish_every);
    config.guardrail = Guardrail { slice: options.guardrail_slice, margin: options.guardrail_margin };
    config.run_dir = Some(options.run_dir.clone());
    config.init_from = options.init_from.clone();
    config.pin_version = options.pin_version;
    config.max_label_delay_ms = options.window_ms;
    config.emit_predictions = options.truth.is_some() || options.output.is_some();
    config.baseline_from_ms = baseline_from_ms;
    if options.head_only {
        config.trainable = Trainable::HEAD_ONLY;
    }
    config
}

#[derive(serde::Deserialize)]
struct TruthLine {
    ts: i64,
    user: String,
    item: String,
    p_click: f64,
}

/// Truth by (impression time, pair key), and the impression time after the first 20 %.
fn read_truth(path: &std::path::Path) -> anyhow::Result<(HashMap<(i64, u64), f64>, i64)> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut truth = HashMap::new();
    let mut times = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let t: TruthLine = serde_json::from_str(&line?).context("bad truth line")?;
        truth.insert((t.ts, pair_key(&t.user, &t.item)), t.p_click);
        times.push(t.ts);
    }
    anyhow::ensure!(!times.is_empty(), "{} is empty", path.display());
    let cut = times[times.len() / 5];
    Ok((truth, cut))
}

pub fn train(options: TrainOptions) -> anyhow::Result<()> {
    let truth = options.truth.as_deref().map(read_truth).transpose()?;
    let cut = truth.as_ref().map(|(_, cut)| *cut);
    let config = config(&options, cut);
    Trainer::new(config.clone()).context("bad training configuration")?;
    // The sink's frontier trails the input by the attribution window (a negative is known only
    // when its window ends), so the replay must be allowed at least that far ahead of it.
    let replay = ReplaySource::new(options.input.clone(), TimeSpec::millis("ts"));
    let ahead = replay.max_ahead_ms.map(|ms| ms.saturating_add(options.window_ms.max(0) as u64));
    let replay = replay.max_ahead_ms(ahead);
    let sink = MemorySink::<TrainOutput>::new();
    let pipeline = Pipeline::new(Execution::Threads(options.workers.max(1))).tick(TickSpec::new(options.tick_ms.max(1)));
    let window = options.window_ms;
    let run_config = config.clone();
    let report = pipeline
        .run::<CtrEvent, TrainOutput, _>(Source::Replay(replay), Sink::Memory(sink.clone()), move |events, ctx| ctr_train_summary(events, ctx, &run_config, window))
        .context("ctr-train failed")?;
    let outputs = sink.records();
    if let Some(path) = &options.output {
        let mut text = String::new();
        for o in &outputs {
            text.push_str(&serde_json::to_string(o)?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut predictions = Vec::new();
    let (mut versions, mut rejected, mut invalid) = (0, 0, 0);
    for o in outputs {
        match o {
            TrainOutput::Prediction(p) => predictions.push(p),
            TrainOutput::Version { .. } => versions += 1,
            TrainOutput::Rejected(_) => rejected += 1,
            TrainOutput::Invalid { .. } => invalid += 1,
            TrainOutput::Metrics(_) => {}
        }
    }
    eprintln!(
        "weir train: {} events in {:.2?} ({:.0} events/s, {} workers); {} versions promoted, {} rejected, {} invalid; run dir {}",
        report.metrics.events_in,
        report.elapsed,
        report.events_per_second(),
        options.workers,
        versions,
        rejected,
        invalid,
        options.run_dir.display()
    );
    if let Some((truth, cut)) = &truth {
        let a = acceptance(&predictions, truth, *cut);
        let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        println!("examples after the 20% cut (impression time >= {}): {}", a.cut_ms, a.examples);
        println!("progressive AUC            {}  (logloss {:.4})", fmt(a.progressive_auc), a.progressive_logloss);
        println!("frozen after 20% AUC       {}  (logloss {:.4})", fmt(a.frozen_auc), a.frozen_logloss);
        println!("true probabilities AUC     {}  (logloss {:.4})", fmt(a.truth_auc), a.truth_logloss);
        if let (Some(p), Some(f), Some(t)) = (a.progressive_auc, a.frozen_auc, a.truth_auc) {
            println!("progressive - frozen = {:+.4} (need >= +0.02); truth - progressive = {:.4} (need <= 0.03)", p - f, t - p);
        }
        if a.unmatched > 0 {
            println!("warning: {} predictions had no truth record", a.unmatched);
        }
        std::fs::write(options.run_dir.join("acceptance.json"), serde_json::to_vec_pretty(&a)?)?;
    }
    Ok(())
}
