//! Stateful operators, each an extension trait in its own file.
//!
//! | operator | on | for |
//! |---|---|---|
//! | [`WindowExt::window_fold`] | insert-only streams | tumbling / sliding windows, closed on the frontier (fast path) |
//! | [`RunningExt::running_fold`] | insert-only streams | running per-key aggregates |
//! | [`ToCollectionExt::to_collection`], [`ChangesExt::changes`] | streams ↔ collections | meeting data that can change |
//! | [`JoinTableExt::join_table`] | a stream and a table collection | enrichment with retraction on table updates |
//! | [`WindowCountExt::window_count`] | collections | windowed counts that follow retractions |
//! | [`MapRecordsExt::map_records`] | any stream | a record-by-record map that keeps the containers whole |

pub mod collection;
pub mod join;
pub mod map_records;
pub mod running;
pub mod stash;
pub mod window;
pub mod window_differential;

pub use collection::{Change, ChangesExt, ToCollectionExt};
pub use join::JoinTableExt;
pub use map_records::MapRecordsExt;
pub use running::{Running, RunningExt};
pub use stash::TickStash;
pub use window::{Window, WindowExt, WindowResult, WindowSpec};
pub use window_differential::WindowCountExt;
