//! Writing events as a part.
//!
//! Events are written in key order (timestamp, then sequence number), the order every
//! read of the store returns them in, so that a read streams a part row group by row
//! group and stops where its page is full. A flow part with both accepted and rejected
//! records is two runs instead, the rejected ones last, each run in key order and in
//! row groups of its own ([`ORDER_REJECTS_LAST`]): what users look for most is rejected
//! traffic, and a row group of one `action` value is left out by a search for the other
//! from its statistics alone. The writer settings follow the measurements
//! of `../shared/specs/flow-analytics.md` §2: zstd, dictionary encoding on every column
//! but the sequence number (unique, so delta-encoded instead), row groups of up to 1 Mi
//! rows (smaller ones repeat their dictionaries), page-level statistics with the page
//! index, and split-block bloom filters on the address columns for needle searches.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, SchemaRef};
use nettrail_formats::flow::{Field, LogFormat};
use nettrail_formats::vpn::columns::{ColumnType, ColumnValue, VpnLogKind};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::PartError;
use crate::event::PartEvent;
use crate::layout::{PartLayout, KEY_COLUMNS, LAYOUT_KEY, ORDER_KEY, ORDER_REJECTS_LAST};

/// Rows per record batch handed to the Parquet writer.
const BATCH_ROWS: usize = 65_536;

/// The columns that get bloom filters, when the layout has them.
const BLOOM_COLUMNS: [&str; 4] = ["srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr"];

/// How a part is written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The zstd level of every column.
    pub zstd_level: i32,
    /// Rows per row group at most.
    pub max_row_group_rows: usize,
    /// Extra key-value metadata (the log group, say).
    pub metadata: Vec<(String, String)>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            zstd_level: 3,
            max_row_group_rows: 1 << 20,
            metadata: Vec::new(),
        }
    }
}

/// What one stream contributed to a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Events of the stream.
    pub rows: u64,
    /// Its earliest event timestamp.
    pub min_ts: i64,
    /// Its latest event timestamp.
    pub max_ts: i64,
    /// Its earliest ingestion time.
    pub min_ingestion_time: i64,
    /// Its latest ingestion time.
    pub max_ingestion_time: i64,
    /// Its message bytes (before compression), to share the part's size out.
    pub message_bytes: u64,
}

/// What a written part holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSummary {
    /// Events.
    pub rows: u64,
    /// Events stored only as typed columns (their message regenerated on read).
    pub typed_rows: u64,
    /// Earliest and latest event timestamp.
    pub min_ts: i64,
    /// Latest event timestamp.
    pub max_ts: i64,
    /// Lowest sequence number.
    pub min_seq: u64,
    /// Highest sequence number.
    pub max_seq: u64,
    /// Per stream.
    pub streams: BTreeMap<Arc<str>, StreamSummary>,
}

/// Writes `events` (sorted here into key order, or into two runs: see the module's
/// doc) as a part of `layout` to `out`, and says what it holds.
pub fn write_part<W: Write + Send>(
    events: &mut [PartEvent],
    layout: &PartLayout,
    options: &WriteOptions,
    out: W,
) -> Result<(W, PartSummary), PartError> {
    if events.is_empty() {
        return Err(PartError::Empty);
    }
    // Key order within a run. Grouping the flow records of one timestamp by interface
    // and addresses was measured and lost: the addresses' 0.4 B/record saved cost the
    // delta-encoded sequence numbers more (20 M generated records: 12.88 -> 14.09).
    let rejects_from = order_rejects_last(layout, events);
    let schema = layout.schema();
    let order = rejects_from.map(|_| ORDER_REJECTS_LAST);
    let properties = properties(layout, options, order, events);
    let mut writer = ArrowWriter::try_new(out, Arc::clone(&schema), Some(properties))?;
    let mut summary = PartSummary {
        rows: events.len() as u64,
        typed_rows: 0,
        // Not the first and last rows': a part may be two runs.
        min_ts: events.iter().map(|e| e.timestamp).min().unwrap_or_default(),
        max_ts: events.iter().map(|e| e.timestamp).max().unwrap_or_default(),
        min_seq: u64::MAX,
        max_seq: 0,
        streams: BTreeMap::new(),
    };
    for event in events.iter() {
        summary.min_seq = summary.min_seq.min(event.seq);
        summary.max_seq = summary.max_seq.max(event.seq);
        let stream = summary
            .streams
            .entry(Arc::clone(&event.stream))
            .or_insert(StreamSummary {
                rows: 0,
                min_ts: event.timestamp,
                max_ts: event.timestamp,
                min_ingestion_time: event.ingestion_time,
                max_ingestion_time: event.ingestion_time,
                message_bytes: 0,
            });
        stream.rows += 1;
        stream.min_ts = stream.min_ts.min(event.timestamp);
        stream.max_ts = stream.max_ts.max(event.timestamp);
        stream.min_ingestion_time = stream.min_ingestion_time.min(event.ingestion_time);
        stream.max_ingestion_time = stream.max_ingestion_time.max(event.ingestion_time);
        stream.message_bytes += event.message.len() as u64;
    }
    let (others, rejects) = events.split_at(rejects_from.unwrap_or(events.len()));
    for run in [others, rejects] {
        for chunk in run.chunks(BATCH_ROWS) {
            let (batch, typed) = batch(&schema, layout, chunk)?;
            summary.typed_rows += typed;
            writer.write(&batch)?;
        }
        // Each run in row groups of its own.
        writer.flush()?;
    }
    Ok((writer.into_inner()?, summary))
}

/// Sorts `events` into key order, or, for a flow layout with an `action` field when
/// both runs are non-empty, into the others then the rejected records (each in key
/// order); returns where the rejected ones begin in that case.
fn order_rejects_last(layout: &PartLayout, events: &mut [PartEvent]) -> Option<usize> {
    let action = layout
        .flow_format()
        .and_then(|format| format.position(Field::ACTION));
    let Some(position) = action else {
        events.sort_unstable_by_key(|e| (e.timestamp, e.seq));
        return None;
    };
    // Only an order: a record is read back whole whichever run holds it.
    let rejected = |e: &PartEvent| e.message.split(' ').nth(position) == Some("REJECT");
    events.sort_by_cached_key(|e| (rejected(e), e.timestamp, e.seq));
    let first_rejected = events.partition_point(|e| !rejected(e));
    (first_rejected > 0 && first_rejected < events.len()).then_some(first_rejected)
}

fn properties(
    layout: &PartLayout,
    options: &WriteOptions,
    order: Option<&str>,
    events: &[PartEvent],
) -> WriterProperties {
    let level = ZstdLevel::try_new(options.zstd_level).unwrap_or_default();
    let mut metadata = vec![KeyValue::new(LAYOUT_KEY.to_owned(), layout.to_metadata())];
    if let Some(order) = order {
        metadata.push(KeyValue::new(ORDER_KEY.to_owned(), order.to_owned()));
    }
    metadata.extend(
        options
            .metadata
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    let seq = ColumnPath::from(KEY_COLUMNS[3]);
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(options.max_row_group_rows.max(1)))
        .set_key_value_metadata(Some(metadata))
        .set_column_dictionary_enabled(seq.clone(), false)
        .set_column_encoding(seq, Encoding::DELTA_BINARY_PACKED);
    if let PartLayout::Flow(format) = layout {
        let bloom_positions: Vec<usize> = format
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| BLOOM_COLUMNS.contains(&f.column().as_str()))
            .map(|(position, _)| position)
            .collect();
        // Sized for the values the part really has: a filter sized for the row group's
        // row count would be several times larger for the same error rate.
        let distinct = distinct_tokens(format, &bloom_positions, events);
        for (&position, distinct) in bloom_positions.iter().zip(distinct) {
            let path = ColumnPath::from(format.fields()[position].column().as_str());
            builder = builder
                .set_column_bloom_filter_enabled(path.clone(), true)
                .set_column_bloom_filter_fpp(path.clone(), 0.01)
                .set_column_bloom_filter_max_ndv(path, distinct.max(1));
        }
    }
    builder.build()
}

/// How many distinct values each field at `positions` takes across `events`, in one
/// pass over the records.
fn distinct_tokens(format: &LogFormat, positions: &[usize], events: &[PartEvent]) -> Vec<u64> {
    if positions.is_empty() {
        return Vec::new();
    }
    let mut tokens = Vec::new();
    let mut seen: Vec<HashSet<&str>> = vec![HashSet::new(); positions.len()];
    for event in events {
        if format.split_record(&event.message, &mut tokens).is_ok() {
            for (set, &position) in seen.iter_mut().zip(positions) {
                set.insert(tokens[position]);
            }
        }
    }
    seen.iter().map(|s| s.len() as u64).collect()
}

/// `rows` as one record batch of `layout`'s schema, as a part would hold them (in the
/// order given): for a query over the row tail beside the parts.
pub fn record_batch(rows: &[PartEvent], layout: &PartLayout) -> Result<RecordBatch, PartError> {
    Ok(batch(&layout.schema(), layout, rows)?.0)
}

/// One record batch of `rows`, and how many of them are stored as typed columns only.
fn batch(
    schema: &SchemaRef,
    layout: &PartLayout,
    rows: &[PartEvent],
) -> Result<(RecordBatch, u64), PartError> {
    let mut timestamps = Int64Builder::with_capacity(rows.len());
    let mut ingestion = Int64Builder::with_capacity(rows.len());
    let mut streams = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
    let mut seqs = Int64Builder::with_capacity(rows.len());
    for row in rows {
        timestamps.append_value(row.timestamp);
        ingestion.append_value(row.ingestion_time);
        streams.append_value(&row.stream);
        seqs.append_value(row.seq as i64);
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(timestamps.finish()),
        Arc::new(ingestion.finish()),
        Arc::new(streams.finish()),
        Arc::new(seqs.finish()),
    ];
    let mut typed = 0;
    match layout {
        PartLayout::Messages => {
            let mut messages = StringBuilder::with_capacity(rows.len(), 0);
            for row in rows {
                messages.append_value(&row.message);
            }
            columns.push(Arc::new(messages.finish()));
        }
        PartLayout::Flow(format) => {
            let (flow_columns, messages, count) = flow_columns(schema, format, rows);
            columns.extend(flow_columns);
            columns.push(messages);
            typed = count;
        }
        PartLayout::Vpn(kind) => {
            columns.extend(vpn_columns(*kind, rows));
            let mut messages = StringBuilder::with_capacity(rows.len(), 0);
            for row in rows {
                messages.append_value(&row.message);
            }
            columns.push(Arc::new(messages.finish()));
        }
    }
    Ok((RecordBatch::try_new(Arc::clone(schema), columns)?, typed))
}

/// The typed columns of a flow-log part, and its `message` column: null where the
/// typed columns regenerate the text byte for byte, the text where they do not (a
/// line of another format, a double space).
fn flow_columns(
    schema: &SchemaRef,
    format: &LogFormat,
    rows: &[PartEvent],
) -> (Vec<ArrayRef>, ArrayRef, u64) {
    enum Builder {
        Int32(Int32Builder),
        Int64(Int64Builder),
        Text(StringBuilder),
    }
    let mut builders: Vec<Builder> = format
        .fields()
        .iter()
        .enumerate()
        .map(
            |(i, _)| match schema.field(KEY_COLUMNS.len() + i).data_type() {
                DataType::Int32 => Builder::Int32(Int32Builder::with_capacity(rows.len())),
                DataType::Int64 => Builder::Int64(Int64Builder::with_capacity(rows.len())),
                _ => Builder::Text(StringBuilder::with_capacity(rows.len(), rows.len() * 8)),
            },
        )
        .collect();
    let mut messages = StringBuilder::with_capacity(rows.len(), 0);
    let mut tokens = Vec::with_capacity(format.len());
    let mut typed = 0;
    for row in rows {
        if regenerates(format, &row.message, &mut tokens) {
            typed += 1;
            messages.append_null();
            for (builder, token) in builders.iter_mut().zip(&tokens) {
                let token = (*token != "-").then_some(*token);
                // split_record checked every integer: canonical and in range.
                match builder {
                    Builder::Int32(b) => {
                        b.append_option(token.map(|t| t.parse().expect("checked")))
                    }
                    Builder::Int64(b) => {
                        b.append_option(token.map(|t| t.parse().expect("checked")))
                    }
                    Builder::Text(b) => b.append_option(token),
                }
            }
        } else {
            messages.append_value(&row.message);
            for builder in &mut builders {
                match builder {
                    Builder::Int32(b) => b.append_null(),
                    Builder::Int64(b) => b.append_null(),
                    Builder::Text(b) => b.append_null(),
                }
            }
        }
    }
    let columns = builders
        .into_iter()
        .map(|b| -> ArrayRef {
            match b {
                Builder::Int32(mut b) => Arc::new(b.finish()),
                Builder::Int64(mut b) => Arc::new(b.finish()),
                Builder::Text(mut b) => Arc::new(b.finish()),
            }
        })
        .collect();
    (columns, Arc::new(messages.finish()), typed)
}

/// The typed columns of a VPN log part: each event's documented keys, null where an
/// event lacks one (or is not an event of `kind` at all).
fn vpn_columns(kind: VpnLogKind, rows: &[PartEvent]) -> Vec<ArrayRef> {
    let columns = kind.columns();
    let mut values: Vec<Vec<ColumnValue>> = vec![Vec::with_capacity(rows.len()); columns.len()];
    for row in rows {
        match kind.values(&row.message) {
            Some(row_values) => {
                for (column, value) in values.iter_mut().zip(row_values) {
                    column.push(value);
                }
            }
            None => values.iter_mut().for_each(|c| c.push(ColumnValue::Null)),
        }
    }
    let int = |v: &ColumnValue| match v {
        ColumnValue::Int(n) => Some(*n),
        _ => None,
    };
    columns
        .iter()
        .zip(values)
        .map(|(column, values)| -> ArrayRef {
            match column.column_type {
                ColumnType::Text => {
                    Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
                        ColumnValue::Text(t) => Some(t.as_str()),
                        _ => None,
                    })))
                }
                ColumnType::Int32 => Arc::new(Int32Array::from_iter(
                    values
                        .iter()
                        .map(|v| int(v).and_then(|n| i32::try_from(n).ok())),
                )),
                ColumnType::Int64 => Arc::new(Int64Array::from_iter(values.iter().map(int))),
                ColumnType::Boolean => {
                    Arc::new(BooleanArray::from_iter(values.iter().map(|v| match v {
                        ColumnValue::Bool(b) => Some(*b),
                        _ => None,
                    })))
                }
                ColumnType::Timestamp => Arc::new(
                    TimestampMillisecondArray::from_iter(values.iter().map(int))
                        .with_timezone("UTC"),
                ),
            }
        })
        .collect()
}

/// Whether `message` is a record of `format` that its fields, joined by single spaces,
/// give back exactly. `split_record` accepts only canonical integers and no control
/// characters, so the one difference left is in the separators, which the length
/// shows.
pub(crate) fn regenerates<'m>(
    format: &LogFormat,
    message: &'m str,
    tokens: &mut Vec<&'m str>,
) -> bool {
    if format.split_record(message, tokens).is_err() {
        return false;
    }
    let joined_len = tokens.iter().map(|t| t.len()).sum::<usize>() + tokens.len().saturating_sub(1);
    joined_len == message.len()
}
