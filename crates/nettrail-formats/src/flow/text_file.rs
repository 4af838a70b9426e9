//! Reading flow log text files as VPC Flow Logs writes them to S3: gzip, a header line
//! naming the fields, then one record per line.

use std::io::{self, BufRead};

use super::error::FlowError;
use super::format::LogFormat;

/// One line of a flow log text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLine<'r> {
    /// 1-based line number in the file (the header is line 1).
    pub number: u64,
    /// The line, without its line ending.
    pub text: &'r str,
}

/// Why a line of a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TextFileError {
    /// The file itself failed (a corrupt or truncated gzip stream, an I/O error).
    #[error("line {line}: {source}")]
    Io {
        /// The line being read.
        line: u64,
        /// What failed.
        source: io::Error,
    },
    /// A line that is not UTF-8.
    #[error("line {line}: not UTF-8")]
    NotUtf8 {
        /// The line.
        line: u64,
    },
    /// The header names something that is no flow log field.
    #[error("line 1 (header): {0}")]
    BadHeader(FlowError),
}

/// Reads the lines of a flow log text file (already decompressed; wrap a
/// `flate2::bufread::MultiGzDecoder` for `.log.gz`). The header decides the format: a
/// file whose first line is a header is read with it; a file without one (a CloudWatch
/// Logs export, a hand-made file) is read with the fallback format.
pub struct FlowTextReader<R> {
    input: R,
    format: LogFormat,
    buffer: Vec<u8>,
    /// A first line that turned out to be a record, not a header.
    pending_first: bool,
    had_header: bool,
    line: u64,
    /// Set after an I/O error: the rest of the stream cannot be trusted.
    failed: bool,
}

impl<R: BufRead> FlowTextReader<R> {
    /// Opens a file: reads its first line to learn the format.
    pub fn new(mut input: R, fallback: LogFormat) -> Result<FlowTextReader<R>, TextFileError> {
        let mut buffer = Vec::new();
        input
            .read_until(b'\n', &mut buffer)
            .map_err(|source| TextFileError::Io { line: 1, source })?;
        let first = std::str::from_utf8(trim_newline(&buffer))
            .map_err(|_| TextFileError::NotUtf8 { line: 1 })?;
        let had_header = LogFormat::is_header(first);
        let (format, pending_first) = if had_header {
            (
                LogFormat::from_header(first).map_err(TextFileError::BadHeader)?,
                false,
            )
        } else {
            (fallback, !buffer.is_empty())
        };
        Ok(FlowTextReader {
            input,
            format,
            buffer,
            pending_first,
            had_header,
            line: 1,
            failed: false,
        })
    }

    /// The format of the file's records.
    pub fn format(&self) -> &LogFormat {
        &self.format
    }

    /// Whether the file began with a header line.
    pub fn had_header(&self) -> bool {
        self.had_header
    }

    /// The next record line, skipping empty lines. `None` at the end of the file, and
    /// after an I/O error (which is returned once).
    pub fn next_line(&mut self) -> Option<Result<TextLine<'_>, TextFileError>> {
        if self.failed {
            return None;
        }
        // Find the next non-empty line first, then borrow it (returning a borrow from
        // inside the loop would keep the buffer borrowed across iterations).
        loop {
            if self.pending_first {
                self.pending_first = false;
            } else {
                self.buffer.clear();
                self.line += 1;
                match self.input.read_until(b'\n', &mut self.buffer) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(source) => {
                        self.failed = true;
                        return Some(Err(TextFileError::Io {
                            line: self.line,
                            source,
                        }));
                    }
                }
            }
            if !trim_newline(&self.buffer).is_empty() {
                break;
            }
        }
        let number = self.line;
        Some(match std::str::from_utf8(trim_newline(&self.buffer)) {
            Ok(text) => Ok(TextLine { number, text }),
            Err(_) => Err(TextFileError::NotUtf8 { line: number }),
        })
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str, fallback: LogFormat) -> (LogFormat, Vec<(u64, String)>) {
        let mut reader = FlowTextReader::new(text.as_bytes(), fallback).unwrap();
        let mut out = Vec::new();
        while let Some(line) = reader.next_line() {
            let line = line.unwrap();
            out.push((line.number, line.text.to_owned()));
        }
        (reader.format().clone(), out)
    }

    #[test]
    fn the_header_decides_the_format() {
        let (format, got) = lines(
            "srcaddr dstaddr\n10.0.0.1 10.0.0.2\r\n\n10.0.0.3 -\n",
            LogFormat::default_vpc(),
        );
        assert_eq!(format.header(), "srcaddr dstaddr");
        assert_eq!(
            got,
            [(2, "10.0.0.1 10.0.0.2".into()), (4, "10.0.0.3 -".into())]
        );
    }

    #[test]
    fn without_a_header_the_fallback_reads_the_first_line_too() {
        let (format, got) = lines(
            "2 1 eni-1 - - - - - - - 1 2 - NODATA",
            LogFormat::default_vpc(),
        );
        assert_eq!(format, LogFormat::default_vpc());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 1);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number_and_reading_goes_on() {
        let text = b"srcaddr\n\xff\xfe\n10.0.0.1\n";
        let mut reader = FlowTextReader::new(&text[..], LogFormat::default_vpc()).unwrap();
        assert!(matches!(
            reader.next_line(),
            Some(Err(TextFileError::NotUtf8 { line: 2 }))
        ));
        assert_eq!(reader.next_line().unwrap().unwrap().number, 3);
        assert!(reader.next_line().is_none());
    }
}
