//! Tick files: CSV (optionally gzipped) with a header naming a time column and either `bid` and `ask`
//! columns or a single `price` (or `last`) column, read into [`Tick`]s for one symbol.
//!
//! Times are read as in candle files. Ticks may share a timestamp (feeds stamp bursts with the same
//! millisecond) but must not go backwards. Prices go through [`Price`], so a zero, negative or over-precise
//! price is an error naming the file and line. A crossed quote (bid above ask) is kept: real feeds print
//! them for an instant, and dropping them would hide what the market did.

use crate::error::{HeaderProblem, LoadError, RowProblem};
use crate::input::{self, CsvInput, Row};
use crate::timestamp::TimeParser;
use chrono::{DateTime, Utc};
use csv::ByteRecord;
use domain::{Price, Symbol, Tick};
use std::io::Read;
use std::path::Path;

/// Loads the ticks of a CSV or gzipped CSV file as quotes of `symbol`.
pub fn load_ticks(path: &Path, symbol: &Symbol) -> Result<Vec<Tick>, LoadError> {
    let (file, label) = input::open(path)?;
    parse_ticks(file, &label, symbol)
}

/// Reads ticks from any reader; `file_label` is the name errors give the input.
pub fn parse_ticks(reader: impl Read, file_label: &str, symbol: &Symbol) -> Result<Vec<Tick>, LoadError> {
    let mut csv = CsvInput::new(reader, file_label)?;
    let header = csv.header()?;
    let time_col = header
        .time_column()
        .ok_or_else(|| header.error(file_label, HeaderProblem::NoTimeColumn { header: header.text() }))?;
    let columns = match (header.find(&["bid"]), header.find(&["ask"])) {
        (Some(bid), Some(ask)) => Columns::BidAsk { bid, ask },
        _ => match header.find(&["price", "last", "last_price"]) {
            Some(price) => Columns::Last { price },
            None => {
                return Err(header.error(file_label, HeaderProblem::NoTickPrice { header: header.text() }));
            }
        },
    };

    let mut ticks = Vec::new();
    let mut times = TimeParser::default();
    let mut previous: Option<(DateTime<Utc>, u64)> = None;
    let mut record = ByteRecord::new();
    while let Some(line) = csv.next_record(&mut record)? {
        let row = Row { record: &record, header_fields: header.len() };
        let row_error = |problem| LoadError::Row { file: file_label.to_string(), line, problem };
        let (time, bid, ask) = read_tick(&row, time_col, &columns, &mut times).map_err(row_error)?;
        if let Some((prev_time, prev_line)) = previous
            && time < prev_time
        {
            return Err(row_error(RowProblem::OutOfOrder { time, previous: prev_time, previous_line: prev_line }));
        }
        previous = Some((time, line));
        ticks.push(Tick { symbol: symbol.clone(), time, bid, ask, synthetic_from: None });
    }
    Ok(ticks)
}

enum Columns {
    BidAsk { bid: usize, ask: usize },
    Last { price: usize },
}

fn read_tick(
    row: &Row,
    time_col: usize,
    columns: &Columns,
    times: &mut TimeParser,
) -> Result<(DateTime<Utc>, Price, Price), RowProblem> {
    let time = row.time(time_col, times)?;
    let price = |index, column| {
        let value = row.decimal(index, column)?;
        Price::new(value).map_err(|source| RowProblem::BadPrice { column, source })
    };
    Ok(match *columns {
        Columns::BidAsk { bid, ask } => (time, price(bid, "bid")?, price(ask, "ask")?),
        Columns::Last { price: index } => {
            let p = price(index, "price")?;
            (time, p, p)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn parse(text: &str) -> Result<Vec<Tick>, LoadError> {
        parse_ticks(text.as_bytes(), "ticks.csv", &Symbol::normalize("EURUSD"))
    }

    #[test]
    fn bid_ask_and_last_price_files() {
        let ticks =
            parse("Time,Bid,Ask\n2024-01-02T00:00:00.5Z,1.1,1.1002\n2024-01-02T00:00:00.5Z,1.1001,1.1003\n").unwrap();
        assert_eq!(ticks.len(), 2);
        assert_eq!(ticks[0].ask.value(), dec!(1.1002));
        assert_eq!(ticks[1].symbol.as_str(), "EURUSD");
        let ticks = parse("timestamp,last\n1704153600000,42000.5\n").unwrap();
        assert_eq!(ticks[0].bid, ticks[0].ask);
        assert_eq!(ticks[0].bid.value(), dec!(42000.5));
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse("time,bid,ask\n2024-01-02T00:00:01Z,1.1,1.2\n2024-01-02T00:00:00Z,1.1,1.2\n").unwrap_err();
        assert!(err.to_string().starts_with("ticks.csv line 3: time 2024-01-02T00:00:00Z is earlier"), "{err}");
        let err = parse("time,price\n2024-01-02T00:00:00Z,0\n").unwrap_err();
        assert!(err.to_string().starts_with("ticks.csv line 2: price: a price must be greater than zero"), "{err}");
        let err = parse("time,volume\n").unwrap_err();
        assert!(err.to_string().contains("no price columns"), "{err}");
    }
}
