//! Reading a CSV file into its header and rows of text cells, and reading a cell as a
//! number: every problem with the file is an error that names the file, the line and the
//! column, and says how to fix it.
//!
//! The file is read whole and must be UTF-8 (a leading byte-order mark, as spreadsheet
//! programs write, is skipped). The delimiter is whichever of `,`, `;` and tab occurs most
//! often in the header line (`,` on a tie or when none occurs): a header of one column
//! cannot hold a target and a feature, so no guess is needed there. Quoting is the `csv`
//! crate's (RFC 4180); cells are trimmed of surrounding spaces; blank lines are skipped.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A CSV file as text: its header and its data rows, each row as long as the header.
#[derive(Debug, Clone)]
pub(crate) struct RawTable {
    /// The file, for error messages.
    pub path: PathBuf,
    /// The column names, in file order, unique and non-empty.
    pub header: Vec<String>,
    /// The data rows: `rows[r][c]` is the (trimmed) cell of column `c`.
    pub rows: Vec<Vec<String>>,
    /// The 1-based line of the file each row starts on.
    pub lines: Vec<u64>,
}

impl RawTable {
    /// Reads and checks `path`: readable, UTF-8, a header, at least one data row, every
    /// row with the header's number of fields, unique column names.
    pub fn read(path: &Path) -> Result<RawTable> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read the table {}: check the path (a CSV file with a header row)",
                path.display()
            )
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
                bail!(
                    "{}: line {line} is not UTF-8 text (byte {at}); save the table as UTF-8 CSV",
                    path.display()
                );
            }
        };
        Self::parse(path, &text)
    }

    /// Parses CSV `text` as read from `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<RawTable> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
            bail!(
                "{}: the table is empty; it needs a header row of column names and data rows",
                path.display()
            );
        };
        let delimiter = detect_delimiter(first);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .with_context(|| format!("{}: cannot read the header row", path.display()))?
            .iter()
            .map(str::to_string)
            .collect();
        check_header(path, &header)?;
        let (mut rows, mut lines) = (Vec::new(), Vec::new());
        let mut counter = LineCounter::new(text);
        for record in reader.records() {
            let record = record.with_context(|| format!("{}: bad CSV", path.display()))?;
            let line = counter.line_of(record.position().map_or(0, |p| p.byte() as usize));
            if record.len() != header.len() {
                bail!(
                    "{}: line {line} has {} field(s), the header has {}; every row needs one \
                     value per column (check for a missing or extra delimiter {:?})",
                    path.display(),
                    record.len(),
                    header.len(),
                    delimiter as char
                );
            }
            rows.push(record.iter().map(str::to_string).collect());
            lines.push(line);
        }
        if rows.is_empty() {
            bail!(
                "{}: the table has a header row but no data rows",
                path.display()
            );
        }
        Ok(RawTable {
            path: path.to_path_buf(),
            header,
            rows,
            lines,
        })
    }

    /// The index of the column called `name`, or `None`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The column names as a readable list (`` `a`, `b`, `c` ``).
    pub fn column_list(&self) -> String {
        quoted_list(&self.header)
    }
}

/// Line numbers of records from their byte offsets. The `csv` crate's own line count is
/// off after blank lines and with CRLF ends, and its byte offset of a record may point at
/// the line ends before it; so the lines are counted here, records arriving in order.
struct LineCounter<'a> {
    text: &'a [u8],
    /// The byte counted up to, and the 1-based line it is on.
    at: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line of the record whose offset the reader gives as `byte`.
    fn line_of(&mut self, byte: usize) -> u64 {
        let mut start = byte.min(self.text.len());
        while start < self.text.len() && matches!(self.text[start], b'\r' | b'\n') {
            start += 1;
        }
        if start >= self.at {
            self.line += self.text[self.at..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.at = start;
        }
        self.line
    }
}

/// `` `a`, `b`, `c` ``.
pub(crate) fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The delimiter of a CSV whose header line is `line`: the most frequent of `,`, `;` and
/// tab, `,` on a tie or when none occurs.
pub(crate) fn detect_delimiter(line: &str) -> u8 {
    let count = |c: char| line.chars().filter(|&x| x == c).count();
    let mut best = (b',', count(','));
    for (d, c) in [(b';', count(';')), (b'\t', count('\t'))] {
        if c > best.1 {
            best = (d, c);
        }
    }
    best.0
}

/// Column names must be non-empty and unique; there must be at least two columns.
fn check_header(path: &Path, header: &[String]) -> Result<()> {
    if header.len() < 2 {
        bail!(
            "{}: the header has {} column(s) ({}); a table needs a target column and at least \
             one feature column, separated by `,`, `;` or tabs",
            path.display(),
            header.len(),
            quoted_list(header)
        );
    }
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            bail!(
                "{}: column {i} (0-based) of the header has no name; name it (an unnamed \
                 first column is often a row index written by pandas' to_csv: write with \
                 index=False, or name it and drop it)",
                path.display()
            );
        }
        if let Some(j) = header[..i].iter().position(|h| h == name) {
            bail!(
                "{}: the column name `{name}` appears twice in the header (columns {j} and \
                 {i}, 0-based); rename one of them",
                path.display()
            );
        }
    }
    Ok(())
}

/// Whether a cell stands for a missing value: empty, `NA`, `N/A`, `NaN`, `null`, `None` or
/// `?` (any case), the spellings of R, pandas, spreadsheets and the UCI repository.
pub(crate) fn is_missing(cell: &str) -> bool {
    cell.is_empty()
        || cell == "?"
        || ["na", "n/a", "nan", "null", "none"]
            .iter()
            .any(|m| cell.eq_ignore_ascii_case(m))
}

/// A cell read as a number, or why not (the caller adds where it is).
pub(crate) enum Cell {
    /// A finite number within f32's range.
    Number(f64),
    /// A missing value ([`is_missing`]).
    Missing,
    /// A number too large for f32, or infinite.
    NonFinite,
    /// Not a number at all.
    Text,
}

/// Reads one cell as a number.
pub(crate) fn read_number(cell: &str) -> Cell {
    if is_missing(cell) {
        return Cell::Missing;
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= f32::MAX as f64 => Cell::Number(v),
        Ok(v) if v.is_nan() => Cell::Missing,
        Ok(_) => Cell::NonFinite,
        Err(_) => Cell::Text,
    }
}

/// The error for a cell of a feature column that is not a usable number.
pub(crate) fn feature_error(path: &Path, line: u64, column: &str, cell: &str) -> anyhow::Error {
    let at = format!("{}: line {line}, column `{column}`", path.display());
    match read_number(cell) {
        Cell::Missing => anyhow::anyhow!(
            "{at}: missing value ({cell:?}); drop the rows with missing values or fill them \
             (for example with the column's mean) before training"
        ),
        Cell::NonFinite => anyhow::anyhow!(
            "{at}: {cell:?} is not a finite number within f32's range; fix or drop the row"
        ),
        Cell::Text | Cell::Number(_) => anyhow::anyhow!(
            "{at}: {cell:?} is not a number; every feature must be numeric: drop the column \
             (it is an id or a text column?) or encode it as numbers (one-hot columns for \
             categories)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RawTable> {
        RawTable::parse(Path::new("t.csv"), text)
    }

    #[test]
    fn delimiter_is_the_most_frequent_of_comma_semicolon_tab() {
        assert_eq!(detect_delimiter("a,b,c"), b',');
        assert_eq!(detect_delimiter("a;b;c"), b';');
        assert_eq!(detect_delimiter("a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter("a;b,c;d"), b';');
        assert_eq!(detect_delimiter("a"), b',');
    }

    #[test]
    fn quoted_cells_bom_blank_lines_and_spaces_are_read() {
        let t = parse("\u{feff}name;x;y\n\"a;b\";1;2\n\n c ;3; 4 \n").unwrap();
        assert_eq!(t.header, ["name", "x", "y"]);
        assert_eq!(t.rows, [["a;b", "1", "2"], ["c", "3", "4"]]);
        assert_eq!(t.lines, [2, 4]);
    }

    #[test]
    fn line_numbers_count_blank_lines_crlf_and_quoted_newlines() {
        let lines = |text: &str| parse(text).unwrap().lines;
        assert_eq!(lines("a,b\n1,2\n\n\n3,4\n5,6\n"), [2, 5, 6]);
        assert_eq!(lines("a,b\r\n1,2\r\n\r\n3,4\r\n"), [2, 4]);
        assert_eq!(lines("a,b\n\"x\ny\",2\n3,4\n"), [2, 4]);
        let e = parse("a,b\r\n1,2\r\n\r\n3\r\n").unwrap_err().to_string();
        assert!(e.contains("line 4 has 1 field(s), the header has 2"), "{e}");
    }

    #[test]
    fn missing_spellings_and_numbers() {
        for m in ["", "NA", "na", "N/A", "NaN", "nan", "null", "None", "?"] {
            assert!(is_missing(m), "{m:?}");
            assert!(matches!(read_number(m), Cell::Missing));
        }
        assert!(matches!(read_number("-1.5e3"), Cell::Number(v) if v == -1500.0));
        assert!(matches!(read_number("inf"), Cell::NonFinite));
        assert!(matches!(read_number("1e39"), Cell::NonFinite));
        assert!(matches!(read_number("abc"), Cell::Text));
    }
}
