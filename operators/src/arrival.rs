//! The batching of the plain scorer ([`ScoreExt::score`](crate::score::ScoreExt::score)):
//! records stay in the containers they arrived in, and each record's feature row is written the
//! moment it arrives.
//!
//! The versioned scorer must hold records until the version frontier has passed their ticks,
//! so it queues them ([`crate::batching::Pending`]) and fills rows when a batch is taken. A fixed
//! model can fill at once, and then a record needs to move only when it is emitted: the input
//! container is kept whole (it is not copied into a queue and out again), and each flush sends
//! one output container per input container, at that container's capability. At a million
//! records a second those moves were a visible share of the operator.
//!
//! The model runs on exactly `max_batch` rows as soon as that many are filled (rows beyond the
//! last full batch wait, moved to the front of the buffers), and on whatever is held once the
//! input frontier has passed the tick of a held record — so a replay never waits on a timer and
//! live latency is bounded by the tick.

use std::collections::VecDeque;

use ort::session::Session;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilderSession;
use timely::progress::frontier::MutableAntichain;
use weir_engine::record::Timed;
use weir_engine::time::Tick;

use crate::score::{MappedTensors, Rejection, ScoreMapping, Scored};

/// The operator's output handle, for output records `E`: a [`Scored`] result, or what the
/// caller turns one into.
pub(crate) type ScoredOutput<'a, E> = OutputBuilderSession<'a, Tick, CapacityContainerBuilder<Vec<E>>>;

/// Records held since their rows were filled, and the rows themselves.
pub(crate) struct ArrivalScorer<D, M: ScoreMapping<D>> {
    tensors: MappedTensors<D, M>,
    max_batch: usize,
    version: u64,
    /// The held records, in arrival order, in the containers they came in.
    held: VecDeque<(Capability<Tick>, Vec<Timed<D>>)>,
    /// The arrival number of the first held record.
    first: u64,
    held_records: usize,
    /// Held records that got no row (bad features), by arrival number, in order.
    turned_away: VecDeque<(u64, String)>,
    /// Rows filled, the held records' that did not get turned away, in order.
    rows: usize,
}

impl<D: 'static, M: ScoreMapping<D>> ArrivalScorer<D, M> {
    pub(crate) fn new(mapping: M, max_batch: usize, version: u64) -> Self {
        ArrivalScorer {
            tensors: MappedTensors::new(mapping, max_batch),
            max_batch,
            version,
            held: VecDeque::new(),
            first: 0,
            held_records: 0,
            turned_away: VecDeque::new(),
            rows: 0,
        }
    }

    /// Holds one input container, filling a row for each record; with `no_session`, every
    /// record is turned away with that reason instead.
    pub(crate) fn absorb(&mut self, capability: Capability<Tick>, container: &mut Vec<Timed<D>>, no_session: Option<&str>) {
        let records = std::mem::take(container);
        if records.is_empty() {
            return;
        }
        let arrival = self.first + self.held_records as u64;
        let turned_away = &mut self.turned_away;
        match no_session {
            Some(reason) => turned_away.extend((0..records.len() as u64).map(|offset| (arrival + offset, format!("no ONNX Runtime session: {reason}")))),
            None => self.rows += self.tensors.fill_rows(self.rows, &records, |offset, reason| turned_away.push_back((arrival + offset as u64, reason))),
        }
        self.held_records += records.len();
        self.held.push_back((capability, records));
    }

    /// Whether a full batch of rows is waiting.
    pub(crate) fn has_full_batch(&self) -> bool {
        self.rows >= self.max_batch
    }

    /// Whether `frontier` has passed the tick of a held record: then everything held goes.
    pub(crate) fn holds_complete_tick(&self, frontier: &MutableAntichain<Tick>) -> bool {
        self.held.iter().any(|(capability, _)| !frontier.less_equal(capability.time()))
    }

    /// Scores the full batches (`everything`: all held rows) and emits their records, and the
    /// turned-away records among them, in arrival order.
    pub(crate) fn flush<E: 'static>(&mut self, session: Option<&mut Session>, everything: bool, output: &mut ScoredOutput<'_, E>, outcome: &impl Fn(Scored<M::Output, D>) -> E) {
        let scored = if everything { self.rows } else { self.rows / self.max_batch * self.max_batch };
        let failed = match session {
            Some(session) => self.run(session, scored),
            None => VecDeque::new(),
        };
        let records = if everything { self.held_records } else { self.records_through_row(scored) };
        self.emit(records, failed, output, outcome);
        self.tensors.buffers.move_rows_to_front(scored, self.rows - scored);
        self.rows -= scored;
    }

    /// How many held records come up to and including row `rows - 1`.
    fn records_through_row(&self, rows: usize) -> usize {
        let mut records = rows;
        for (arrival, _) in &self.turned_away {
            // A turned-away record before the cut moves the cut on by one.
            if *arrival < self.first + records as u64 {
                records += 1;
            } else {
                break;
            }
        }
        records
    }

    /// Runs rows `0..rows` in batches of at most `max_batch`; the rows ONNX Runtime refused (a
    /// batch that fails is run row by row, so only its bad rows fail), with the reasons.
    fn run(&mut self, session: &mut Session, rows: usize) -> VecDeque<(usize, String)> {
        self.tensors.clear_outputs();
        let mut failed = VecDeque::new();
        let mut start = 0;
        while start < rows {
            let n = self.max_batch.min(rows - start);
            if self.tensors.run(session, start, n).is_err() {
                self.tensors.truncate_outputs(start);
                for row in start..start + n {
                    if let Err(reason) = self.tensors.run(session, row, 1) {
                        // Keep the outputs aligned with the rows.
                        self.tensors.truncate_outputs(row);
                        self.tensors.skip_output_row();
                        failed.push_back((row, reason));
                    }
                }
            }
            start += n;
        }
        failed
    }

    /// Emits the first `records` held records: one output container per input container.
    fn emit<E: 'static>(&mut self, mut records: usize, mut failed: VecDeque<(usize, String)>, output: &mut ScoredOutput<'_, E>, outcome: &impl Fn(Scored<M::Output, D>) -> E) {
        let mut row = 0;
        while records > 0 {
            let (capability, container) = self.held.front_mut().expect("the records are held");
            let take = records.min(container.len());
            let mut out = Vec::with_capacity(take);
            let clean = self.turned_away.front().is_none_or(|(arrival, _)| *arrival >= self.first + take as u64) && failed.front().is_none_or(|(failed_row, _)| *failed_row >= row + take);
            if clean {
                // The common case: every record of the chunk was scored, so no record needs
                // to be checked against the turned-away and failed ones.
                let (tensors, version) = (&self.tensors, self.version);
                out.extend(container.drain(..take).enumerate().map(|(offset, record)| outcome(Ok(tensors.emit(version, row + offset, record)))));
                self.first += take as u64;
                row += take;
            } else {
                for record in container.drain(..take) {
                    let arrival = self.first;
                    self.first += 1;
                    if self.turned_away.front().is_some_and(|(a, _)| *a == arrival) {
                        let (_, reason) = self.turned_away.pop_front().expect("just seen");
                        out.push(outcome(Rejection::of_record(record, reason)));
                        continue;
                    }
                    if failed.front().is_some_and(|(r, _)| *r == row) {
                        let (_, reason) = failed.pop_front().expect("just seen");
                        out.push(outcome(Rejection::of_record(record, format!("ONNX Runtime rejected the record: {reason}"))));
                    } else {
                        out.push(outcome(Ok(self.tensors.emit(self.version, row, record))));
                    }
                    row += 1;
                }
            }
            output.session(capability).give_container(&mut out);
            if container.is_empty() {
                self.held.pop_front();
            }
            records -= take;
            self.held_records -= take;
        }
    }
}
