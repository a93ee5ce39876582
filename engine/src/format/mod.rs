//! Input and output formats: JSON lines (with a decoder that parses only the fields a record
//! reads: [`flat_json`], and an encoder byte-identical to serde_json's, faster for flat
//! records: [`json_line`]), CSV, Parquet, and the Arrow ↔ serde bridge.

pub mod arrow_serde;
pub mod flat_json;
pub mod json_line;
pub mod json_time;

use serde::{Deserialize, Serialize};

/// A file format for replay sources and file sinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileFormat {
    Jsonl,
    Csv,
    Parquet,
}

impl FileFormat {
    /// Guesses the format from a file name's extension (`.jsonl`/`.json`/`.ndjson`, `.csv`,
    /// `.parquet`/`.pq`).
    pub fn from_path(path: &str) -> Option<FileFormat> {
        let lower = path.to_ascii_lowercase();
        let ext = lower.rsplit('.').next()?;
        match ext {
            "jsonl" | "json" | "ndjson" => Some(FileFormat::Jsonl),
            "csv" => Some(FileFormat::Csv),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            _ => None,
        }
    }
}

impl std::str::FromStr for FileFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "jsonl" | "json" | "ndjson" => Ok(FileFormat::Jsonl),
            "csv" => Ok(FileFormat::Csv),
            "parquet" => Ok(FileFormat::Parquet),
            other => Err(format!("unknown format {other:?} (use jsonl, csv or parquet)")),
        }
    }
}
