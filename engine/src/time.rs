//! Event time, ticks and watermarks.
//!
//! A record's exact event time is kept in the record ([`crate::Timed::time`], Unix milliseconds).
//! Its timely timestamp is that time *rounded up* to a tick ([`Tick`]), so that progress
//! tracking costs one step per tick, not per millisecond: a replay of a month of history with a
//! one-second tick makes 2.6M steps, with a one-minute tick 43k. A window or any other result
//! for event times `< t` is final once the frontier has passed `tick_of(t - 1)`.

use serde::{Deserialize, Serialize};

/// The timely timestamp of a record: its event time in ms rounded up to a multiple of the tick.
pub type Tick = u64;

/// How event time is spelled in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeFormat {
    /// Unix seconds, integer or fractional (`1767225600` or `1767225600.25`).
    EpochSeconds,
    /// Unix milliseconds (`1767225600000`).
    EpochMillis,
    /// RFC 3339 text (`2026-01-01T00:00:00.250Z`).
    Rfc3339,
}

impl std::str::FromStr for TimeFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "s" | "epoch-s" | "seconds" => Ok(TimeFormat::EpochSeconds),
            "ms" | "epoch-ms" | "millis" => Ok(TimeFormat::EpochMillis),
            "rfc3339" => Ok(TimeFormat::Rfc3339),
            other => Err(format!("unknown time format {other:?} (use epoch-s, epoch-ms or rfc3339)")),
        }
    }
}

/// Which field holds the event time and how it is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSpec {
    pub field: String,
    pub format: TimeFormat,
}

impl TimeSpec {
    pub fn new(field: impl Into<String>, format: TimeFormat) -> Self {
        TimeSpec { field: field.into(), format }
    }
    /// `ts` in Unix milliseconds: the layout `weir gen` writes.
    pub fn millis(field: impl Into<String>) -> Self {
        Self::new(field, TimeFormat::EpochMillis)
    }

    /// Parses a textual value (a CSV cell, a JSON string, or a JSON number's text).
    pub fn parse_text(&self, text: &str) -> Result<i64, String> {
        let text = text.trim();
        match self.format {
            // Integer milliseconds (the common case) skip the detour through `f64`.
            TimeFormat::EpochMillis => match text.parse::<i64>() {
                Ok(ms) => Ok(ms),
                Err(_) => parse_number(text).map(|ms| ms.round() as i64),
            },
            TimeFormat::EpochSeconds => parse_number(text).map(|s| (s * 1000.0).round() as i64),
            TimeFormat::Rfc3339 => chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_millis())
                .map_err(|e| format!("bad RFC 3339 time {text:?}: {e}")),
        }
        .and_then(check_range)
    }

    /// Checks an integer event time in milliseconds already read from the record.
    pub fn check_millis(&self, ms: i64) -> Result<i64, String> {
        check_range(ms)
    }

    /// Converts a numeric value already decoded (a Parquet integer or float cell).
    pub fn from_number(&self, value: f64) -> Result<i64, String> {
        let ms = match self.format {
            TimeFormat::EpochMillis => value,
            TimeFormat::EpochSeconds => value * 1000.0,
            TimeFormat::Rfc3339 => return Err("an RFC 3339 time field must hold text, not a number".into()),
        };
        if !ms.is_finite() {
            return Err(format!("time {value} is not finite"));
        }
        check_range(ms.round() as i64)
    }
}

fn parse_number(text: &str) -> Result<f64, String> {
    if let Ok(int) = text.parse::<i64>() {
        return Ok(int as f64);
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(format!("time {text:?} is not a number")),
    }
}

/// Event times before 1970 or after year 9999 are rejected: ticks are unsigned.
fn check_range(ms: i64) -> Result<i64, String> {
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    if (0..=MAX_MS).contains(&ms) { Ok(ms) } else { Err(format!("event time {ms} ms is out of range (1970..9999)")) }
}

/// Rounds event times up to ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickSpec {
    pub tick_ms: u64,
}

impl Default for TickSpec {
    fn default() -> Self {
        TickSpec { tick_ms: 1000 }
    }
}

impl TickSpec {
    pub fn new(tick_ms: u64) -> Self {
        assert!(tick_ms > 0, "a tick must be at least 1 ms");
        TickSpec { tick_ms }
    }
    /// The tick a record with event time `ms` travels at (`ms` rounded up).
    #[inline]
    pub fn tick_of(&self, ms: i64) -> Tick {
        let ms = ms.max(0) as u64;
        ms.div_ceil(self.tick_ms) * self.tick_ms
    }
    /// The tick at which everything with event time `< end_ms` is complete: results for a
    /// window ending at `end_ms` are stamped with it.
    #[inline]
    pub fn closing_tick(&self, end_ms: i64) -> Tick {
        self.tick_of(end_ms - 1)
    }
}

/// [`TickSpec::tick_of`] for a stream of nearby times: it remembers the last tick's range, so
/// the thousands of records in one tick cost a comparison each instead of a division.
#[derive(Clone, Copy, Debug)]
pub struct TickMemo {
    spec: TickSpec,
    /// The last tick and the times that round up to it: `(tick - tick_ms, tick]`.
    tick: Tick,
    after: i64,
}

impl TickMemo {
    pub fn new(spec: TickSpec) -> Self {
        // An empty range: the first call computes.
        TickMemo { spec, tick: 0, after: 0 }
    }
    #[inline]
    pub fn tick_of(&mut self, ms: i64) -> Tick {
        if ms > self.after && ms <= self.tick as i64 {
            return self.tick;
        }
        self.tick = self.spec.tick_of(ms);
        self.after = self.tick as i64 - self.spec.tick_ms as i64;
        self.tick
    }
}

/// Tracks a watermark: the largest event time seen minus the allowed out-of-orderness.
/// A record older than the watermark is *late*.
#[derive(Clone, Debug)]
pub struct Watermark {
    max_seen: Option<i64>,
    out_of_orderness_ms: i64,
}

impl Watermark {
    pub fn new(out_of_orderness_ms: u64) -> Self {
        Watermark { max_seen: None, out_of_orderness_ms: out_of_orderness_ms as i64 }
    }
    /// The current watermark (None before the first record).
    pub fn current(&self) -> Option<i64> {
        self.max_seen.map(|max| max - self.out_of_orderness_ms)
    }
    /// The largest event time seen so far.
    pub fn max_seen(&self) -> Option<i64> {
        self.max_seen
    }
    /// Notes a record's time; returns `false` if it is late (older than the watermark before it).
    pub fn observe(&mut self, ms: i64) -> bool {
        let on_time = self.current().is_none_or(|mark| ms >= mark);
        if on_time {
            self.max_seen = Some(self.max_seen.map_or(ms, |max| max.max(ms)));
        }
        on_time
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tick_memo_agrees_with_tick_of() {
        for tick_ms in [1, 7, 1000] {
            let spec = super::TickSpec::new(tick_ms);
            let mut memo = super::TickMemo::new(spec);
            for ms in [-5, 0, 1, 2, 999, 1000, 1001, 1000, 6, 5, 3001, 3000, 2999, 0, -1] {
                assert_eq!(memo.tick_of(ms), spec.tick_of(ms), "{ms} ms, tick {tick_ms}");
            }
        }
    }

    use super::*;

    #[test]
    fn ticks_round_up() {
        let ticks = TickSpec::new(1000);
        assert_eq!(ticks.tick_of(0), 0);
        assert_eq!(ticks.tick_of(1), 1000);
        assert_eq!(ticks.tick_of(1000), 1000);
        assert_eq!(ticks.tick_of(1001), 2000);
        assert_eq!(ticks.closing_tick(60_000), 60_000);
        assert_eq!(ticks.closing_tick(60_001), 60_000);
        assert_eq!(ticks.closing_tick(60_002), 61_000);
    }

    #[test]
    fn parses_formats() {
        assert_eq!(TimeSpec::millis("ts").parse_text("1767225600123"), Ok(1_767_225_600_123));
        assert_eq!(TimeSpec::millis("ts").parse_text("1767225600123.6"), Ok(1_767_225_600_124));
        assert!(TimeSpec::millis("ts").parse_text("-1").is_err());
        let secs = TimeSpec::new("t", TimeFormat::EpochSeconds);
        assert_eq!(secs.parse_text("1767225600.5"), Ok(1_767_225_600_500));
        let rfc = TimeSpec::new("t", TimeFormat::Rfc3339);
        assert_eq!(rfc.parse_text("2026-01-01T00:00:00.250Z"), Ok(1_767_225_600_250));
        assert!(rfc.parse_text("yesterday").is_err());
        assert!(secs.parse_text("-5").is_err());
        assert!(secs.parse_text("NaN").is_err());
    }

    #[test]
    fn watermark_flags_late_records() {
        let mut mark = Watermark::new(10);
        assert!(mark.observe(100));
        assert!(mark.observe(95));
        assert!(mark.observe(90));
        assert!(!mark.observe(89));
        assert!(mark.observe(200));
        assert!(!mark.observe(150));
        assert_eq!(mark.current(), Some(190));
    }
}
