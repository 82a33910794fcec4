//! Errors from reading market data files.
//!
//! Every message starts with the file and, where a row is at fault, its 1-based line number, so a user can
//! open the file at the right place without reading any code: `data.csv line 17: close "abc" is not a number`.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::{CandleError, PriceError};
use std::fmt;

/// Why a candle or tick file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot open: {source}")]
    Open {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The bytes could not be read or decompressed (a truncated or corrupt gzip file, a disk error).
    #[error("{file}{}: cannot read: {source}", LineSuffix(*.line))]
    Read {
        file: String,
        line: Option<u64>,
        #[source]
        source: std::io::Error,
    },
    /// The header row does not name the columns we need.
    #[error("{file} line {line}: {problem}")]
    Header { file: String, line: u64, problem: HeaderProblem },
    #[error("{file} line {line}: {problem}")]
    Row { file: String, line: u64, problem: RowProblem },
}

impl LoadError {
    /// The file label the error names.
    pub fn file(&self) -> &str {
        match self {
            LoadError::Open { file, .. }
            | LoadError::Read { file, .. }
            | LoadError::Header { file, .. }
            | LoadError::Row { file, .. } => file,
        }
    }

    /// The 1-based line at fault, where one is.
    pub fn line(&self) -> Option<u64> {
        match self {
            LoadError::Open { .. } => None,
            LoadError::Read { line, .. } => *line,
            LoadError::Header { line, .. } => Some(*line),
            LoadError::Row { line, .. } => Some(*line),
        }
    }
}

struct LineSuffix(Option<u64>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " line {line}"),
            None => Ok(()),
        }
    }
}

/// What is wrong with a header row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    #[error("the file is empty: expected a header row such as time,open,high,low,close,volume")]
    Empty,
    #[error(
        "no time column: expected one named time, timestamp, date, datetime or open_time (the header is {header:?})"
    )]
    NoTimeColumn { header: String },
    #[error("missing column {}: the header is {header:?}", .missing.join(", "))]
    MissingColumns { missing: Vec<&'static str>, header: String },
    #[error("no price columns: expected bid and ask, or price, or last (the header is {header:?})")]
    NoTickPrice { header: String },
}

/// What is wrong with one data row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowProblem {
    #[error("{column} {value:?} is not a number")]
    NotANumber { column: &'static str, value: String },
    #[error("{column} is empty")]
    EmptyField { column: &'static str },
    #[error(
        "time {value:?} is not a date/time in a known format (RFC 3339, YYYY-MM-DD HH:MM:SS, YYYYMMDD HH:MM, DD.MM.YYYY HH:MM:SS, M/D/YYYY or Unix seconds/milliseconds)"
    )]
    BadTime { value: String },
    #[error("missing column {column}: the row has {fields} fields, the header has {header_fields}")]
    MissingColumn { column: &'static str, fields: usize, header_fields: usize },
    #[error("bad candle: {0}")]
    BadCandle(CandleError),
    #[error("{column}: {source}")]
    BadPrice { column: &'static str, source: PriceError },
    #[error("duplicate time {}: line {first_line} has the same time", Rfc3339(*.time))]
    DuplicateTime { time: DateTime<Utc>, first_line: u64 },
    #[error(
        "time {} is earlier than {} on line {previous_line}: rows must be in time order",
        Rfc3339(*.time),
        Rfc3339(*.previous)
    )]
    OutOfOrder { time: DateTime<Utc>, previous: DateTime<Utc>, previous_line: u64 },
}

/// Shows a time the way files and APIs write it, not chrono's `2017-01-03 00:00:00 UTC`.
pub(crate) struct Rfc3339(pub DateTime<Utc>);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}
