//! The plumbing every CSV loader shares: opening a file, seeing through gzip and a byte-order mark, finding
//! columns by name in the header, and reading numbers without allocating per field.

use crate::error::{HeaderProblem, LoadError, RowProblem};
use crate::timestamp::TimeParser;
use chrono::{DateTime, Utc};
use csv::ByteRecord;
use flate2::read::MultiGzDecoder;
use rust_decimal::Decimal;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::rc::Rc;
use std::str::FromStr;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// Opens `path` for one of the loaders; errors are named by the path as the user gave it.
pub(crate) fn open(path: &Path) -> Result<(File, String), LoadError> {
    let label = path.display().to_string();
    match File::open(path) {
        Ok(file) => Ok((file, label)),
        Err(source) => Err(LoadError::Open { file: label, source }),
    }
}

/// A CSV file being read record by record, with the line each record is on.
pub(crate) struct CsvInput<'a> {
    reader: csv::Reader<LineCounter<Box<dyn Read + 'a>>>,
    lines: Lines,
    file: String,
}

impl<'a> CsvInput<'a> {
    /// Reads `reader` as CSV, gunzipped when it starts with the gzip magic bytes (whatever the file is
    /// called) and without a leading UTF-8 byte-order mark (spreadsheets and .NET write one).
    pub(crate) fn new(reader: impl Read + 'a, file: &str) -> Result<Self, LoadError> {
        let read_error = |source| LoadError::Read { file: file.to_string(), line: None, source };
        let (magic, reader) = peek(reader, GZIP_MAGIC.len()).map_err(read_error)?;
        let decoded: Box<dyn Read + 'a> =
            if magic == GZIP_MAGIC { Box::new(MultiGzDecoder::new(reader)) } else { Box::new(reader) };
        let (bom, decoded) = peek(decoded, UTF8_BOM.len()).map_err(read_error)?;
        let text: Box<dyn Read + 'a> =
            if bom == UTF8_BOM { Box::new(decoded.take_tail(UTF8_BOM.len())) } else { Box::new(decoded) };
        let newlines = Rc::new(RefCell::new(VecDeque::new()));
        let counter = LineCounter { inner: text, offset: 0, newlines: Rc::clone(&newlines) };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            // Short rows get our own "missing column" error naming the column, not csv's generic one.
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(counter);
        Ok(CsvInput { reader, lines: Lines { newlines, passed: 0, last: None }, file: file.to_string() })
    }

    /// Reads the header row; an absent or blank header is an error because columns are only known by name.
    pub(crate) fn header(&mut self) -> Result<Header, LoadError> {
        let mut record = ByteRecord::new();
        let line = self.next_record(&mut record)?;
        let line = match line {
            Some(line) if !record.iter().all(|f| f.trim_ascii().is_empty()) => line,
            _ => {
                return Err(LoadError::Header {
                    file: self.file.clone(),
                    line: line.unwrap_or(1),
                    problem: HeaderProblem::Empty,
                });
            }
        };
        let names = record.iter().map(|f| String::from_utf8_lossy(f.trim_ascii()).to_ascii_lowercase()).collect();
        Ok(Header { names, raw: record, line })
    }

    /// Reads the next record into `record`, returning the 1-based line it starts on, or None at the end.
    pub(crate) fn next_record(&mut self, record: &mut ByteRecord) -> Result<Option<u64>, LoadError> {
        match self.reader.read_byte_record(record) {
            Ok(true) => Ok(Some(self.lines.start_line(self.reader.position().byte(), record))),
            Ok(false) => Ok(None),
            Err(e) => Err(read_error(e, &self.file)),
        }
    }
}

/// Passes bytes through, noting where each newline is.
struct LineCounter<R> {
    inner: R,
    offset: u64,
    newlines: Rc<RefCell<VecDeque<u64>>>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut newlines = self.newlines.borrow_mut();
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            newlines.push_back(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Turns the byte offset where the csv reader finished a record into the line the record started on.
///
/// The csv crate's own record positions count from before any skipped blank lines and miscount CRLF
/// files, so we count newlines ourselves. Only newlines in the reader's look-ahead are kept.
struct Lines {
    newlines: Rc<RefCell<VecDeque<u64>>>,
    /// Newlines before the last record's end.
    passed: u64,
    last: Option<u64>,
}

impl Lines {
    fn start_line(&mut self, end: u64, record: &ByteRecord) -> u64 {
        let mut newlines = self.newlines.borrow_mut();
        while let Some(&at) = newlines.front().filter(|&&at| at < end) {
            newlines.pop_front();
            self.passed += 1;
            self.last = Some(at);
        }
        // The csv reader stops just past an LF terminator but just before the LF of a CRLF one.
        let terminated = end > 0 && self.last == Some(end - 1);
        let end_line = 1 + self.passed - u64::from(terminated);
        // Quoted fields may span lines; the record began that many lines earlier.
        let inside = record.as_slice().iter().filter(|b| **b == b'\n').count() as u64;
        end_line.saturating_sub(inside).max(1)
    }
}

/// The first `n` bytes of `reader` (fewer at end of input), and a reader that still yields all of it.
fn peek<R: Read>(mut reader: R, n: usize) -> io::Result<(Vec<u8>, Peeked<R>)> {
    let mut head = vec![0; n];
    let mut filled = 0;
    while filled < n {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok((head.clone(), Peeked { inner: Cursor::new(head).chain(reader) }))
}

struct Peeked<R> {
    inner: io::Chain<Cursor<Vec<u8>>, R>,
}

impl<R: Read> Peeked<R> {
    /// Drops the first `n` peeked bytes.
    fn take_tail(mut self, n: usize) -> Self {
        let (head, _) = self.inner.get_mut();
        head.set_position(n as u64);
        self
    }
}

impl<R: Read> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Header names, lower-cased and trimmed, for lookup by name.
#[derive(Debug)]
pub(crate) struct Header {
    names: Vec<String>,
    raw: ByteRecord,
    line: u64,
}

impl Header {
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The index of the first column named any of `names` (given in lower case).
    pub(crate) fn find(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|want| self.names.iter().position(|n| n == want))
    }

    /// The time column: a known name, else an unnamed first column (a pandas index), else the first name
    /// containing "time" or "date" (`timestamp_utc`, `Gmt time`, `Local time`).
    pub(crate) fn time_column(&self) -> Option<usize> {
        const NAMES: &[&str] =
            &["time", "timestamp", "date", "datetime", "date_time", "open_time", "open_time_ms", "opentime"];
        self.find(NAMES)
            .or_else(|| self.names.first().filter(|n| n.is_empty()).map(|_| 0))
            .or_else(|| self.names.iter().position(|n| n.contains("time") || n.contains("date")))
    }

    /// The header as the file spells it, for error messages.
    pub(crate) fn text(&self) -> String {
        let fields: Vec<_> = self.raw.iter().map(String::from_utf8_lossy).collect();
        fields.join(",")
    }

    pub(crate) fn error(&self, file: &str, problem: HeaderProblem) -> LoadError {
        LoadError::Header { file: file.to_string(), line: self.line, problem }
    }
}

fn read_error(error: csv::Error, file: &str) -> LoadError {
    let source = match error.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
    };
    LoadError::Read { file: file.to_string(), line: None, source }
}

/// One row, with the context a row error needs.
pub(crate) struct Row<'r> {
    pub record: &'r ByteRecord,
    pub header_fields: usize,
}

impl Row<'_> {
    pub(crate) fn field(&self, index: usize, column: &'static str) -> Result<&[u8], RowProblem> {
        self.record.get(index).map(<[u8]>::trim_ascii).ok_or(RowProblem::MissingColumn {
            column,
            fields: self.record.len(),
            header_fields: self.header_fields,
        })
    }

    pub(crate) fn time(&self, index: usize, parser: &mut TimeParser) -> Result<DateTime<Utc>, RowProblem> {
        let text = self.field(index, "time")?;
        if text.is_empty() {
            return Err(RowProblem::EmptyField { column: "time" });
        }
        parser.parse(text).ok_or_else(|| RowProblem::BadTime { value: String::from_utf8_lossy(text).into_owned() })
    }

    pub(crate) fn decimal(&self, index: usize, column: &'static str) -> Result<Decimal, RowProblem> {
        let text = self.field(index, column)?;
        if text.is_empty() {
            return Err(RowProblem::EmptyField { column });
        }
        parse_decimal(text)
            .ok_or_else(|| RowProblem::NotANumber { column, value: String::from_utf8_lossy(text).into_owned() })
    }

    /// A number that may be left blank, as volume often is; blank reads as zero.
    pub(crate) fn decimal_or_zero(&self, index: usize, column: &'static str) -> Result<Decimal, RowProblem> {
        match self.record.get(index).map(<[u8]>::trim_ascii) {
            None | Some(b"") => Ok(Decimal::ZERO),
            Some(_) => self.decimal(index, column),
        }
    }
}

fn parse_decimal(text: &[u8]) -> Option<Decimal> {
    if let Some(d) = parse_plain_decimal(text) {
        return Some(d);
    }
    let s = std::str::from_utf8(text).ok()?;
    match Decimal::from_str(s) {
        Ok(d) => Some(d),
        // Python and pandas write very small or large floats as 1e-05.
        Err(_) if s.contains(['e', 'E']) => Decimal::from_scientific(s).ok(),
        Err(_) => None,
    }
}

/// The shape nearly every price in a file has, `-123.456` with at most 18 digits, read straight into a
/// mantissa and scale: several times faster than the general parser, which handles everything else.
fn parse_plain_decimal(text: &[u8]) -> Option<Decimal> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    let mut mantissa: i64 = 0;
    let mut count = 0;
    let mut scale = 0;
    let mut seen_point = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                if count == 18 {
                    return None;
                }
                mantissa = mantissa * 10 + i64::from(b - b'0');
                count += 1;
                scale += u32::from(seen_point);
            }
            b'.' if !seen_point => seen_point = true,
            _ => return None,
        }
    }
    if count == 0 {
        return None;
    }
    let mut value = Decimal::new(mantissa, scale);
    value.set_sign_negative(negative);
    Some(value)
}

/// `(a + b) / 2`, exactly and with no trailing zeros, in integer arithmetic where the numbers allow: the
/// mid of two quotes is computed for four prices of every row of a bid/ask file.
pub(crate) fn mid(a: Decimal, b: Decimal) -> Decimal {
    // Prices fit in 64 bits almost always, and 64-bit division is far cheaper than 128-bit.
    let small = || {
        let scale = a.scale().max(b.scale());
        let widen = |d: Decimal| i64::try_from(d.mantissa()).ok()?.checked_mul(10i64.checked_pow(scale - d.scale())?);
        // Halving is multiplying by 5 one decimal place further right.
        let mut mantissa = widen(a)?.checked_add(widen(b)?)?.checked_mul(5)?;
        let mut scale = scale + 1;
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        (scale <= 28).then(|| Decimal::new(mantissa, scale))
    };
    let general = || {
        let sum = a.checked_add(b).map(|sum| sum / Decimal::TWO);
        // Near Decimal::MAX the sum overflows; halves can still round past it, and then the larger of
        // the two is within one unit in the last place of the answer.
        sum.or_else(|| (a / Decimal::TWO).checked_add(b / Decimal::TWO)).unwrap_or(a.max(b)).normalize()
    };
    small().unwrap_or_else(general)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut input = CsvInput::new(bytes, "x.csv").unwrap();
        let header = input.header().unwrap();
        let mut rows = vec![(header.line, header.names)];
        let mut record = ByteRecord::new();
        while let Some(line) = input.next_record(&mut record).unwrap() {
            let fields = record.iter().map(|f| String::from_utf8_lossy(f).into_owned());
            rows.push((line, fields.collect()));
        }
        rows
    }

    #[test]
    fn sees_through_gzip_and_bom_in_any_combination() {
        let plain = b"Time,Open\n1,2\n".to_vec();
        let with_bom = [&UTF8_BOM[..], &plain].concat();
        let want = vec![(1, vec!["time".to_string(), "open".into()]), (2, vec!["1".into(), "2".into()])];
        for bytes in [plain.clone(), with_bom.clone(), gzip(&plain), gzip(&with_bom)] {
            assert_eq!(read_all(&bytes), want);
        }
    }

    #[test]
    fn lines_are_counted_through_blank_lines_crlf_and_quoted_newlines() {
        let lines = |text: &str| -> Vec<u64> { read_all(text.as_bytes()).into_iter().map(|(l, _)| l).collect() };
        assert_eq!(lines("h\n\na\nb\n"), vec![1, 3, 4]);
        assert_eq!(lines("\n\nh\na\n"), vec![3, 4]);
        assert_eq!(lines("h\r\n\r\na\r\nb\r\n"), vec![1, 3, 4]);
        assert_eq!(lines("h\r\na\r\nb"), vec![1, 2, 3]);
        assert_eq!(lines("h\n\"x\ny\"\nb\n\n\nc"), vec![1, 2, 4, 7]);
        // Far more lines than the reader's buffer holds, so look-ahead is exercised.
        let long: String = std::iter::once("h\n".to_string())
            .chain((0..50_000).map(|i| if i % 7 == 0 { "\n".to_string() } else { format!("{i},x\n") }))
            .collect();
        let got = lines(&long);
        let want: Vec<u64> = std::iter::once(1).chain((0..50_000u64).filter(|i| i % 7 != 0).map(|i| i + 2)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn tiny_inputs_do_not_confuse_the_sniffing() {
        for empty in [&b""[..], b"\n\n", &UTF8_BOM[..], b",,\n"] {
            let err = CsvInput::new(empty, "x.csv").unwrap().header().unwrap_err();
            assert!(matches!(err, LoadError::Header { problem: HeaderProblem::Empty, .. }), "{empty:?}: {err}");
        }
        assert_eq!(read_all(b"a"), vec![(1, vec!["a".to_string()])]);
        assert_eq!(read_all(&[0x1f]), vec![(1, vec!["\u{1f}".to_string()])]);
    }

    #[test]
    fn corrupt_gzip_is_a_read_error_naming_the_file() {
        let body: String = (0..5000).map(|i| format!("{i},{i}\n")).collect();
        let mut bytes = gzip(format!("time,open\n{body}").as_bytes());
        bytes.truncate(bytes.len() / 2);
        let mut input = CsvInput::new(&bytes[..], "x.csv.gz").unwrap();
        let mut record = ByteRecord::new();
        let err = input
            .header()
            .and_then(|_| {
                loop {
                    if input.next_record(&mut record)?.is_none() {
                        break Ok(());
                    }
                }
            })
            .unwrap_err();
        assert!(err.to_string().starts_with("x.csv.gz: cannot read"), "{err}");
    }

    #[test]
    fn mid_is_exact_and_trimmed() {
        assert_eq!(mid(dec!(1.31927), dec!(1.32027)), dec!(1.31977));
        assert_eq!(mid(dec!(1.0), dec!(1.2)).to_string(), "1.1");
        assert_eq!(mid(dec!(1.3187), dec!(1.3197)).to_string(), "1.3192");
        assert_eq!(mid(dec!(1), dec!(2)).to_string(), "1.5");
        assert_eq!(mid(dec!(100), dec!(300)).to_string(), "200");
        assert_eq!(mid(dec!(-1.5), dec!(0.5)), dec!(-0.5));
        assert_eq!(mid(Decimal::MAX, Decimal::MAX), Decimal::MAX);
        assert_eq!(mid(dec!(12345678901234567890.1), dec!(0.1)), dec!(6172839450617283945.1));
        let below = Decimal::MAX - Decimal::ONE;
        assert!(mid(Decimal::MAX, below) >= below);
    }

    #[test]
    fn plain_fast_path_agrees_with_the_general_parser() {
        for text in ["0", "1", "-1.5", "+2.25", "0.09946999000000001", "123456789012345678", ".5", "7.", "00012.3400"] {
            let fast = parse_plain_decimal(text.as_bytes()).unwrap();
            let slow = Decimal::from_str(text).unwrap();
            assert_eq!((fast, fast.scale()), (slow, slow.scale()), "{text}");
        }
        for text in ["", "-", ".", "1.2.3", "1e5", "1,000", "1234567890123456789", "0x10"] {
            assert_eq!(parse_plain_decimal(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_decimal(b"1.31927"), Some(dec!(1.31927)));
        assert_eq!(parse_decimal(b"-2"), Some(dec!(-2)));
        assert_eq!(parse_decimal(b"1e-05"), Some(dec!(0.00001)));
        assert_eq!(parse_decimal(b"0.09946999000000001"), Some(dec!(0.09946999000000001)));
        assert_eq!(parse_decimal(b"abc"), None);
        assert_eq!(parse_decimal(b"1.2.3"), None);
        assert_eq!(parse_decimal(b"NaN"), None);
    }
}
