//! Reading a part back as events.
//!
//! A read goes row group by row group (row groups are in key order, so a read that
//! has filled its page stops at the next row group; a part written as two runs says
//! so, see [`PartReader::in_key_order`]), batch by batch within one. A
//! [`PartBatch`] gives each row's key and stream without building its message, so a
//! caller skips the rows it does not want before paying for the text; the message of
//! a typed row is regenerated from its columns.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::basic::Encoding;
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::properties::ReaderProperties;
use parquet::file::reader::ChunkReader;
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::file::statistics::Statistics;

use crate::error::PartError;
use crate::layout::{PartLayout, KEY_COLUMNS, LAYOUT_KEY, ORDER_KEY};

/// Rows per batch read.
const READ_BATCH_ROWS: usize = 8192;

/// An open part.
pub struct PartReader<R> {
    input: R,
    metadata: ArrowReaderMetadata,
    layout: PartLayout,
    in_key_order: bool,
}

impl<R: ChunkReader + Clone + 'static> PartReader<R> {
    /// Opens the part in `input`, reading its footer.
    pub fn open(input: R) -> Result<PartReader<R>, PartError> {
        let metadata = ArrowReaderMetadata::load(&input, ArrowReaderOptions::new())?;
        let value_of = |key: &str| {
            metadata
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .and_then(|kv| kv.iter().find(|kv| kv.key == key))
                .and_then(|kv| kv.value.clone())
        };
        let layout_value = value_of(LAYOUT_KEY)
            .ok_or_else(|| PartError::NotAPart(format!("no `{LAYOUT_KEY}` metadata")))?;
        // Any order named is not plain key order (an unknown one included).
        let in_key_order = value_of(ORDER_KEY).is_none();
        let layout = PartLayout::from_metadata(&layout_value)?;
        let expected = layout.schema();
        let found = metadata.schema();
        let names = |s: &arrow_schema::Schema| -> Vec<String> {
            s.fields().iter().map(|f| f.name().clone()).collect()
        };
        if names(&expected) != names(found) {
            return Err(PartError::NotAPart(format!(
                "columns {:?} are not those of its layout",
                names(found)
            )));
        }
        Ok(PartReader {
            input,
            metadata,
            layout,
            in_key_order,
        })
    }

    /// Whether the rows are in key order from the first row group to the last; else
    /// the part is runs, each in key order (see `write.rs`), and a read that has
    /// filled its page must look at every row group's time range, not stop at the
    /// first beyond it.
    pub fn in_key_order(&self) -> bool {
        self.in_key_order
    }

    /// Whether a row of `row_group` may pass `conditions` (see
    /// [`PartBatch::fields_may_pass`]), from the statistics alone: false when every
    /// row is typed and a condition's field is a text column holding one value (and
    /// perhaps nulls, which a message spells `-`) that fails it.
    pub fn row_group_may_pass(&self, row_group: usize, conditions: &[FieldTest<'_>]) -> bool {
        if conditions.is_empty() || !matches!(self.layout, PartLayout::Flow(_)) {
            return true;
        }
        let rg = self.metadata.metadata().row_group(row_group);
        let schema = self.metadata.schema();
        let message = schema.fields().len() - 1;
        let all_typed = rg.column(message).statistics().is_some_and(|s| {
            s.null_count_opt()
                .is_some_and(|n| n == rg.num_rows().max(0) as u64)
        });
        if !all_typed {
            return true;
        }
        conditions.iter().all(|&(field, holds)| {
            let column = KEY_COLUMNS.len() + field;
            if column >= message || schema.field(column).data_type() != &DataType::Utf8 {
                return true;
            }
            let Some(Statistics::ByteArray(stats)) = rg.column(column).statistics() else {
                return true;
            };
            let (Some(min), Some(max)) = (stats.min_opt(), stats.max_opt()) else {
                return true;
            };
            if min != max || !stats.min_is_exact() || !stats.max_is_exact() {
                return true;
            }
            let Ok(value) = std::str::from_utf8(min.data()) else {
                return true;
            };
            let has_nulls = stats.null_count_opt().is_none_or(|n| n > 0);
            !is_plain_field(value) || holds(value) || (has_nulls && holds("-"))
        })
    }

    /// The part's layout.
    pub fn layout(&self) -> &PartLayout {
        &self.layout
    }

    /// Row groups in the part, in key order.
    pub fn row_groups(&self) -> usize {
        self.metadata.metadata().num_row_groups()
    }

    /// Rows in the part.
    pub fn rows(&self) -> u64 {
        self.metadata.metadata().file_metadata().num_rows().max(0) as u64
    }

    /// The lowest and highest value of key column `column` (0 = `timestamp`, 3 =
    /// `event_seq`) in `row_group`, when the statistics say.
    fn key_range(&self, row_group: usize, column: usize) -> Option<(i64, i64)> {
        let rg = self.metadata.metadata().row_group(row_group);
        match rg.column(column).statistics()? {
            Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
            _ => None,
        }
    }

    /// The timestamp range of `row_group`.
    pub fn time_range(&self, row_group: usize) -> Option<(i64, i64)> {
        self.key_range(row_group, 0)
    }

    /// The sequence number range of `row_group`.
    pub fn seq_range(&self, row_group: usize) -> Option<(u64, u64)> {
        self.key_range(row_group, 3)
            .map(|(lo, hi)| (lo.max(0) as u64, hi.max(0) as u64))
    }

    /// The columns a message's text may come from as is: the text columns other than
    /// the key columns (one Parquet leaf each).
    fn text_columns(&self) -> Vec<usize> {
        self.metadata
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.data_type() == &DataType::Utf8 && !KEY_COLUMNS.contains(&f.name().as_str())
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Compressed bytes of `row_group`'s column chunks.
    pub fn row_group_bytes(&self, row_group: usize) -> u64 {
        let rg = self.metadata.metadata().row_group(row_group);
        rg.columns()
            .iter()
            .map(|c| c.compressed_size().max(0) as u64)
            .sum()
    }

    /// Whether a row of `row_group` may have a message that contains every one of
    /// `needles` (false only when certain), and the compressed bytes read to tell.
    ///
    /// For a flow layout, a needle that only text can hold (see
    /// [`decidable_by_text_columns`]), or a number longer than any number column's
    /// value in the row group can spell (by their statistics), is looked for in the
    /// row group's text columns (the flow fields that are strings, and `message`): in a
    /// column chunk whose data pages are all dictionary-encoded, in its dictionary page
    /// alone (every value is there, once); in other chunks, in their values. Other
    /// needles and other layouts always may.
    pub fn may_contain(
        &self,
        row_group: usize,
        needles: &[String],
    ) -> Result<TextCheck, PartError> {
        let mut check = TextCheck {
            may_match: true,
            bytes_read: 0,
        };
        if !matches!(self.layout, PartLayout::Flow(_)) {
            return Ok(check);
        }
        let rg = self.metadata.metadata().row_group(row_group);
        let widest_number = self.widest_number(row_group);
        let mut missing: Vec<memchr::memmem::Finder<'_>> = needles
            .iter()
            .filter(|n| {
                decidable_by_text_columns(n)
                    || (!n.contains(' ') && widest_number.is_some_and(|w| n.len() > w))
            })
            .map(|n| memchr::memmem::Finder::new(n.as_bytes()))
            .collect();
        if missing.is_empty() {
            return Ok(check);
        }
        let mut value_columns = Vec::new();
        for column in self.text_columns() {
            let chunk = rg.column(column);
            let Some(dictionary) = self.dictionary_values(chunk, rg.num_rows())? else {
                value_columns.push(column);
                continue;
            };
            check.bytes_read += dictionary.compressed_bytes;
            missing.retain(|needle| {
                !dictionary
                    .values()
                    .any(|value| needle.find(value).is_some())
            });
            if missing.is_empty() {
                return Ok(check);
            }
        }
        if !value_columns.is_empty() {
            check.bytes_read += value_columns
                .iter()
                .map(|&c| rg.column(c).compressed_size().max(0) as u64)
                .sum::<u64>();
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
                self.input.clone(),
                self.metadata.clone(),
            )
            .with_row_groups(vec![row_group])
            .with_projection(ProjectionMask::roots(
                self.metadata.parquet_schema(),
                value_columns,
            ))
            .with_batch_size(READ_BATCH_ROWS * 8)
            .build()?;
            for batch in reader {
                let batch = batch?;
                for column in batch.columns() {
                    let text = column.as_string::<i32>();
                    let offsets = text.value_offsets();
                    let (first, last) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
                    // The values back to back: a needle found across two values is a
                    // false "may", never a missed one.
                    let values = &text.value_data()[first..last];
                    missing.retain(|needle| needle.find(values).is_none());
                    if missing.is_empty() {
                        return Ok(check);
                    }
                }
            }
        }
        check.may_match = false;
        Ok(check)
    }

    /// The longest text any number column of a flow part's `row_group` spells (a `-`
    /// sign counted), by the chunks' statistics; `None` when one lacks them.
    fn widest_number(&self, row_group: usize) -> Option<usize> {
        let rg = self.metadata.metadata().row_group(row_group);
        let fields = self.layout.flow_format().map_or(0, |f| f.len());
        let text_len = |v: i64| {
            v.unsigned_abs().checked_ilog10().unwrap_or(0) as usize + 1 + usize::from(v < 0)
        };
        let mut widest = 1; // a null's `-`
        for column in KEY_COLUMNS.len()..KEY_COLUMNS.len() + fields {
            let (min, max) = match rg.column(column).statistics() {
                Some(Statistics::Int32(s)) => (i64::from(*s.min_opt()?), i64::from(*s.max_opt()?)),
                Some(Statistics::Int64(s)) => (*s.min_opt()?, *s.max_opt()?),
                Some(Statistics::ByteArray(_)) => continue,
                _ => return None,
            };
            widest = widest.max(text_len(min)).max(text_len(max));
        }
        Some(widest)
    }

    /// The dictionary page of a text column chunk whose data pages are all
    /// dictionary-encoded; `None` for any other chunk.
    fn dictionary_values(
        &self,
        chunk: &ColumnChunkMetaData,
        rows: i64,
    ) -> Result<Option<Dictionary>, PartError> {
        let all_dictionary = chunk.dictionary_page_offset().is_some()
            && chunk.page_encoding_stats_mask().is_some_and(|mask| {
                mask.is_only(Encoding::RLE_DICTIONARY) || mask.is_only(Encoding::PLAIN_DICTIONARY)
            });
        if !all_dictionary {
            return Ok(None);
        }
        let mut pages = SerializedPageReader::new_with_properties(
            Arc::new(self.input.clone()),
            chunk,
            usize::try_from(rows).unwrap_or(0),
            None,
            Arc::new(ReaderProperties::builder().build()),
        )?;
        let Some(Page::DictionaryPage { buf, encoding, .. }) = pages.get_next_page()? else {
            return Ok(None);
        };
        if !matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
            return Ok(None);
        }
        let compressed_bytes = chunk
            .dictionary_page_offset()
            .map_or(0, |d| (chunk.data_page_offset() - d).max(0) as u64);
        Ok(Some(Dictionary {
            plain: buf,
            compressed_bytes,
        }))
    }

    /// The batches of `row_group`; only the key columns when `keys_only`.
    pub fn read_row_group(
        &self,
        row_group: usize,
        keys_only: bool,
    ) -> Result<impl Iterator<Item = Result<PartBatch, PartError>> + use<R>, PartError> {
        let schema = self.metadata.parquet_schema();
        let projection = if keys_only {
            ProjectionMask::roots(schema, 0..KEY_COLUMNS.len())
        } else if let PartLayout::Vpn(_) = self.layout {
            // The text is the event; its typed columns are for queries only.
            let message = schema.root_schema().get_fields().len() - 1;
            ProjectionMask::roots(schema, (0..KEY_COLUMNS.len()).chain([message]))
        } else {
            ProjectionMask::all()
        };
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.input.clone(),
            self.metadata.clone(),
        )
        .with_row_groups(vec![row_group])
        .with_projection(projection)
        .with_batch_size(READ_BATCH_ROWS)
        .build()?;
        let layout = self.layout.clone();
        Ok(reader.map(move |batch| PartBatch::new(batch?, &layout, keys_only)))
    }
}

/// The two-digit numbers `00` to `99`, back to back.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends `value` in decimal, as `write!` would. Regenerating a flow record is mostly
/// this (a record has about 30 digits), so it takes two digits per division and no
/// formatting machinery: measured at a quarter of a whole-group scan's time before.
fn push_integer(out: &mut String, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + rest as u8;
    }
    if value < 0 {
        out.push('-');
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// Whether a field's text is one plain run of characters, as every splitter of
/// space-separated fields reads it: not empty, nothing blank in it, not opening with
/// `"` or `[` (which a pattern's splitter reads up to the closing mark).
fn is_plain_field(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(['"', '['])
        && !text.bytes().any(|b| b.is_ascii_whitespace())
}

/// The needles a read may look for in a typed row's text fields alone (see
/// [`PartBatch::texts_may_contain`]): those of a filter's required substrings that
/// only text can hold.
pub struct TextNeedles<'n>(Vec<memchr::memmem::Finder<'n>>);

impl<'n> TextNeedles<'n> {
    /// The needles of `required` that only a text field can hold.
    pub fn new(required: &'n [String]) -> TextNeedles<'n> {
        TextNeedles(
            required
                .iter()
                .filter(|n| decidable_by_text_columns(n))
                .map(|n| memchr::memmem::Finder::new(n.as_bytes()))
                .collect(),
        )
    }
}

/// Whether a needle can be looked for in text columns alone: it has no space (so it
/// lies within one field of a regenerated message) and a character no number has (so
/// no integer field, nor a null field's `-`, holds it).
fn decidable_by_text_columns(needle: &str) -> bool {
    !needle.is_empty()
        && !needle.contains(' ')
        && needle.bytes().any(|b| !b.is_ascii_digit() && b != b'-')
}

/// What [`PartReader::may_contain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextCheck {
    /// False only when no row of the row group can match.
    pub may_match: bool,
    /// Compressed bytes of the pages read to tell.
    pub bytes_read: u64,
}

/// A dictionary page: PLAIN-encoded byte arrays (a 4-byte little-endian length, then
/// the bytes).
struct Dictionary {
    plain: bytes::Bytes,
    compressed_bytes: u64,
}

impl Dictionary {
    fn values(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest: &[u8] = &self.plain;
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let value = tail.get(..len)?;
            rest = &tail[len..];
            Some(value)
        })
    }
}

/// A test of one flow field's text: the field's index, and whether a text passes.
pub type FieldTest<'a> = (usize, &'a dyn Fn(&str) -> bool);

/// A typed flow column of a batch.
enum FlowColumn {
    Int32(Int32Array),
    Int64(Int64Array),
    Text(StringArray),
}

/// Rows of a part, read.
pub struct PartBatch {
    timestamps: Int64Array,
    ingestion: Int64Array,
    streams: StringArray,
    seqs: Int64Array,
    flow: Vec<FlowColumn>,
    messages: Option<StringArray>,
}

impl PartBatch {
    fn new(
        batch: RecordBatch,
        layout: &PartLayout,
        keys_only: bool,
    ) -> Result<PartBatch, PartError> {
        let bad = |what: &str| PartError::NotAPart(format!("column `{what}` has the wrong type"));
        let int64 = |i: usize| -> Result<Int64Array, PartError> {
            batch
                .column(i)
                .as_primitive_opt::<Int64Type>()
                .cloned()
                .ok_or_else(|| bad(KEY_COLUMNS[i]))
        };
        let text = |i: usize, name: &str| -> Result<StringArray, PartError> {
            batch
                .column(i)
                .as_string_opt::<i32>()
                .cloned()
                .ok_or_else(|| bad(name))
        };
        let mut out = PartBatch {
            timestamps: int64(0)?,
            ingestion: int64(1)?,
            streams: text(2, KEY_COLUMNS[2])?,
            seqs: int64(3)?,
            flow: Vec::new(),
            messages: None,
        };
        if keys_only {
            return Ok(out);
        }
        let schema = batch.schema();
        let fields = layout.flow_format().map_or(0, |f| f.len());
        for i in KEY_COLUMNS.len()..KEY_COLUMNS.len() + fields {
            let name = schema.field(i).name();
            let column = batch.column(i);
            out.flow.push(match column.data_type() {
                DataType::Int32 => FlowColumn::Int32(column.as_primitive::<Int32Type>().clone()),
                DataType::Int64 => FlowColumn::Int64(column.as_primitive::<Int64Type>().clone()),
                DataType::Utf8 => FlowColumn::Text(text(i, name)?),
                _ => return Err(bad(name)),
            });
        }
        out.messages = Some(text(batch.num_columns() - 1, "message")?);
        Ok(out)
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`'s timestamp.
    pub fn timestamp(&self, i: usize) -> i64 {
        self.timestamps.value(i)
    }

    /// Row `i`'s sequence number.
    pub fn seq(&self, i: usize) -> u64 {
        self.seqs.value(i).max(0) as u64
    }

    /// Row `i`'s ingestion time.
    pub fn ingestion_time(&self, i: usize) -> i64 {
        self.ingestion.value(i)
    }

    /// Row `i`'s log stream.
    pub fn stream(&self, i: usize) -> &str {
        self.streams.value(i)
    }

    /// Whether row `i` may pass `conditions` (a flow field's index and a test of its
    /// text): false only when the row is typed and one of its fields, as its message
    /// would spell it, fails its test, so the message need not be built. A row kept
    /// as text, and a field a splitter might read otherwise than as one plain run of
    /// characters (empty, blank inside, or opening with `"` or `[`), always may.
    /// `scratch` holds a number's text.
    pub fn fields_may_pass(
        &self,
        i: usize,
        conditions: &[FieldTest<'_>],
        scratch: &mut String,
    ) -> bool {
        if conditions.is_empty() || self.messages.as_ref().is_none_or(|m| m.is_valid(i)) {
            return true;
        }
        conditions.iter().all(|&(field, holds)| {
            let Some(column) = self.flow.get(field) else {
                return true;
            };
            scratch.clear();
            let text: &str = match column {
                FlowColumn::Int32(a) if a.is_valid(i) => {
                    push_integer(scratch, i64::from(a.value(i)));
                    scratch
                }
                FlowColumn::Int64(a) if a.is_valid(i) => {
                    push_integer(scratch, a.value(i));
                    scratch
                }
                FlowColumn::Text(a) if a.is_valid(i) => a.value(i),
                _ => "-",
            };
            !is_plain_field(text) || holds(text)
        })
    }

    /// Whether row `i` may contain every one of `needles` (made by [`TextNeedles::new`],
    /// so each one lies within a text field): false only when the row is typed and one
    /// of them is in none of its text fields, so its message need not be built.
    pub fn texts_may_contain(&self, i: usize, needles: &TextNeedles<'_>) -> bool {
        if needles.0.is_empty() || self.messages.as_ref().is_none_or(|m| m.is_valid(i)) {
            return true;
        }
        needles.0.iter().all(|needle| {
            self.flow.iter().any(|column| match column {
                FlowColumn::Text(a) => {
                    a.is_valid(i) && needle.find(a.value(i).as_bytes()).is_some()
                }
                FlowColumn::Int32(_) | FlowColumn::Int64(_) => false,
            })
        })
    }

    /// Row `i`'s message: its text, or regenerated from its typed columns. None when
    /// the batch was read with the key columns only.
    pub fn message(&self, i: usize) -> Option<String> {
        let mut out = String::new();
        self.write_message(i, &mut out).then_some(out)
    }

    /// Puts row `i`'s message in `out` (replacing what it held), as [`message`]
    /// gives it, without allocating once `out` has grown: for reads that test most
    /// messages and keep few. False when the batch was read with the key columns only.
    ///
    /// [`message`]: PartBatch::message
    pub fn write_message(&self, i: usize, out: &mut String) -> bool {
        out.clear();
        let Some(messages) = self.messages.as_ref() else {
            return false;
        };
        if messages.is_valid(i) {
            out.push_str(messages.value(i));
            return true;
        }
        for (n, column) in self.flow.iter().enumerate() {
            if n > 0 {
                out.push(' ');
            }
            match column {
                FlowColumn::Int32(a) if a.is_valid(i) => push_integer(out, i64::from(a.value(i))),
                FlowColumn::Int64(a) if a.is_valid(i) => push_integer(out, a.value(i)),
                FlowColumn::Text(a) if a.is_valid(i) => out.push_str(a.value(i)),
                _ => out.push('-'),
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn integers_are_written_as_display_writes_them(value in any::<i64>()) {
            let mut out = String::from("x");
            push_integer(&mut out, value);
            prop_assert_eq!(out, format!("x{value}"));
        }
    }

    #[test]
    fn the_extreme_integers_are_written_whole() {
        for value in [i64::MIN, i64::MAX, 0, -1, 10] {
            let mut out = String::new();
            push_integer(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }
}
