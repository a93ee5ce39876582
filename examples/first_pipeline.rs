//! The README's first pipeline, runnable: `cargo run --example first_pipeline`.
//!
//! Writes a few click events to a temporary JSONL file (one of them malformed), counts clicks per
//! item in 60-second tumbling windows of event time, and prints the windows and the dead letter.

use serde::{Deserialize, Serialize};
use weir::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Click {
    item: String,
}

/// Clicks per item in 60-second tumbling windows of event time.
fn clicks_per_item<'s>(clicks: EventStream<'s, Click>, ctx: &Context) -> OutputStream<'s, WindowResult<String, u64>> {
    clicks.window_fold(WindowSpec::tumbling(60_000), ctx.tick, |c: &Click| c.item.clone(), |n: &mut u64, _| *n += 1)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("weir-first-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let input = dir.join("clicks.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"ts\":1000,\"item\":\"shoes\"}\n",
            "{\"ts\":2500,\"item\":\"hats\"}\n",
            "{\"ts\":59000,\"item\":\"shoes\"}\n",
            "not json at all\n",
            "{\"ts\":61000,\"item\":\"shoes\"}\n",
        ),
    )?;
    let output = dir.join("counts.jsonl");
    let dead = dir.join("bad.jsonl");

    let source = Source::Replay(ReplaySource::new(input.display().to_string(), TimeSpec::millis("ts")));
    let sink = Sink::file(&output)?;
    let report = Pipeline::new(Execution::Threads(2)).dead_letters(&dead).run(source, sink, clicks_per_item)?;

    println!("{} events in, {} dead letters, {:.0} events/s", report.metrics.events_in, report.metrics.dead_letters, report.events_per_second());
    print!("windows:\n{}", std::fs::read_to_string(&output)?);
    print!("dead letters:\n{}", std::fs::read_to_string(&dead)?);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
