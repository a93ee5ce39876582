//! Typed errors of the engine.

use std::path::PathBuf;

/// Everything that can stop a pipeline before or while it runs.
///
/// Bad *records* never appear here: they go to the dead-letter output and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no input files match {0}")]
    NoInputFiles(String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("bad glob pattern {pattern}: {message}")]
    Glob { pattern: String, message: String },
    #[error("{path}: CSV header has no time column {column:?}")]
    MissingTimeColumn { path: PathBuf, column: String },
    #[error("{path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("cannot encode output record: {0}")]
    Encode(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("timely execution failed: {0}")]
    Execution(String),
    #[error("a worker failed: {0}")]
    Worker(String),
    #[error("{0}")]
    Kafka(String),
}

impl EngineError {
    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Read { path: path.into(), source }
    }
    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Write { path: path.into(), source }
    }
}
