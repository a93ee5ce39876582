//! `weir gen`: writes the seeded click-stream.

use anyhow::{Context as _, bail};
use weir_engine::format::FileFormat;
use weir_engine::sink::{Sink, open_writer};
use weir_pipelines::clickstream::ClickEvent;
use weir_pipelines::clickstream::generate::{GenConfig, Generator, Truth};

use crate::cli::{GenFormat, GenOptions};

pub fn generate(options: GenOptions) -> anyhow::Result<()> {
    let mut config = GenConfig::with_events(options.events, options.seed);
    if let Some(rate) = options.rate {
        config.impressions_per_sec = rate;
    }
    if let Err(message) = config.validate() {
        bail!("invalid generator settings: {message}");
    }
    let format = match options.format {
        GenFormat::Jsonl => FileFormat::Jsonl,
        GenFormat::Parquet => FileFormat::Parquet,
    };
    let started = std::time::Instant::now();
    let mut events = open_writer::<ClickEvent>(&Sink::File { path: options.out.clone(), format })
        .with_context(|| format!("cannot create {}", options.out.display()))?;
    let mut truth = match &options.truth {
        Some(path) => Some(open_writer::<Truth>(&Sink::File { path: path.clone(), format: FileFormat::Jsonl })?),
        None => None,
    };
    let mut line = String::new();
    for generated in Generator::new(config) {
        line.clear();
        if format == FileFormat::Jsonl {
            line = serde_json::to_string(&generated.event)?;
        }
        events.write(0, &line, generated.event)?;
        if let (Some(writer), Some(t)) = (truth.as_mut(), generated.truth) {
            let json = serde_json::to_string(&t)?;
            writer.write(0, &json, t)?;
        }
    }
    events.finish()?;
    if let Some(mut writer) = truth {
        writer.finish()?;
    }
    eprintln!("weir gen: {} events to {} in {:.2?}", options.events, options.out.display(), started.elapsed());
    Ok(())
}
