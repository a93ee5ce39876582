//! The incremental fine-tuning operator: labelled examples in, model versions (and progressive
//! metrics) out.
//!
//! All examples of one model go to one worker (exchange by a constant): training is
//! sequential, and a single learner is what makes the result independent of the worker count.
//! Featurization, attribution and scoring stay parallel around it. The examples of a tick wait
//! until the input frontier has passed the tick, then are applied sorted by
//! (label time, [`Example::canonical_cmp`]), so neither source batching nor replay speed nor
//! worker count changes a single published byte. The operator holds the capability of the last
//! tick it processed, for what the end of a bounded input emits (the last metrics window, the
//! decision on a waiting candidate), so that even those are stamped the same in every run: the
//! output frontier is the input frontier, or the tick of the last labelled example if that is
//! older (labels arrive continuously in a live stream, so this lag is about one tick).


use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Broadcast, Map};
use weir_engine::operators::TickStash;
use weir_engine::time::Tick;
use weir_engine::{EventStream, OutputStream, Timed};

use super::TrainError;
use super::example::Example;
use super::trainer::{Trainer, TrainerConfig, TrainerEvent};
use crate::model_version::ModelVersion;

/// Trains a model on a stream of labelled examples (timed by when their label became known).
///
/// ```
/// use weir_engine::prelude::*;
/// use weir_operators::train::{Example, ModelSpec, TrainExt, TrainerConfig, TrainerEvent, Guardrail};
/// use timely::dataflow::operators::{ToStream, Capture, capture::Event};
///
/// let examples: Vec<_> = (0..100i64).map(|i| Timed::new(i * 10, Example::new(i * 10, vec![(i % 7) as u32], (i % 2) as f32))).collect();
/// let mut config = TrainerConfig::new(ModelSpec::logistic(&["item"], 16));
/// config.publish_every_examples = Some(50);
/// config.guardrail = Guardrail { slice: 0, margin: 0.0 };
/// let captured = timely::example(move |scope| examples.to_stream(scope).train(config).unwrap().capture());
/// let versions = captured.try_iter()
///     .flat_map(|e| if let Event::Messages(_, d) = e { d } else { Vec::new() })
///     .filter(|e| matches!(e, TrainerEvent::Version(_)))
///     .count();
/// assert_eq!(versions, 2);
/// ```
pub trait TrainExt<'scope> {
    /// Everything the trainer reports; see [`VersionsExt::versions`] for the scorers' input.
    fn train(self, config: TrainerConfig) -> Result<OutputStream<'scope, TrainerEvent>, TrainError>;
}

impl<'scope> TrainExt<'scope> for EventStream<'scope, Example> {
    fn train(self, config: TrainerConfig) -> Result<OutputStream<'scope, TrainerEvent>, TrainError> {
        // Only the worker that receives the examples holds a trainer (and writes the run dir).
        let mut trainer = if self.scope().index() == 0 { Some(Trainer::new(config)?) } else { None };
        let pact = Exchange::new(|_: &Timed<Example>| 0u64);
        Ok(self.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(pact, "Train", move |cap, _info| {
            let mut held: Option<Capability<Tick>> = trainer.is_some().then_some(cap);
            // Until the first tick is processed, `held` is the operator's initial capability
            // (the minimal time); it follows the input frontier so that it holds nothing back.
            let mut processed_any = false;
            let mut pending: TickStash<Timed<Example>> = TickStash::default();
            let mut events = Vec::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, containers| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    pending.add(cap, containers);
                });
                let Some(trainer) = trainer.as_mut() else { return };
                while let Some((cap, mut examples)) = pending.pop_complete(frontier) {
                    examples.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.data.canonical_cmp(&b.data)));
                    for example in &examples {
                        if let Err(e) = trainer.process(example.time, &example.data, &mut events) {
                            eprintln!("weir train: {e}");
                            events.push(TrainerEvent::Invalid { time: example.time, reason: e.to_string() });
                        }
                    }
                    output.session(&cap).give_iterator(events.drain(..));
                    held = Some(cap);
                    processed_any = true;
                }
                // A source with flow control (the file replay's `max_ahead_ms`) reads on only
                // as the sink's frontier advances: a capability kept at the initial time would
                // stop it for good before the first label is even attributed.
                if !processed_any
                    && let (Some(cap), Some(&least)) = (held.as_mut(), frontier.frontier().iter().min())
                    && *cap.time() < least
                {
                    cap.downgrade(&least);
                }
                if frontier.is_empty()
                    && let Some(cap) = held.take()
                {
                    if let Err(e) = trainer.finish(&mut events) {
                        eprintln!("weir train: {e}");
                        events.push(TrainerEvent::Invalid { time: i64::MAX, reason: e.to_string() });
                    }
                    output.session(&cap).give_iterator(events.drain(..));
                }
            }
        }))
    }
}

/// Picks the published versions out of a trainer's output.
pub trait VersionsExt<'scope> {
    /// The promoted versions, on the trainer's worker only.
    fn versions(self) -> OutputStream<'scope, ModelVersion>;
    /// The promoted versions, on every worker (the scorers' versioned input).
    fn broadcast_versions(self) -> OutputStream<'scope, ModelVersion>;
}

impl<'scope> VersionsExt<'scope> for OutputStream<'scope, TrainerEvent> {
    fn versions(self) -> OutputStream<'scope, ModelVersion> {
        self.flat_map(|event| match event {
            TrainerEvent::Version(v) => Some(v),
            _ => None,
        })
    }
    fn broadcast_versions(self) -> OutputStream<'scope, ModelVersion> {
        self.versions().broadcast()
    }
}
