//! nettrail's columnar parts: the files of the store's second tier.
//!
//! A part holds the events of one log group and one hour of event time as a Parquet
//! file that Athena, Trino, Spark and DuckDB read as they are. This crate owns the
//! part's layout and nothing else (the store decides when parts are written, where
//! they live and what they replace):
//! - [`layout`]: which columns a part has. Every part has the event's key and origin
//!   (`timestamp`, `ingestion_time`, `log_stream`, `event_seq`). A flow-log part adds
//!   one typed column per field of its flow-log format, with Athena's names and AWS's
//!   Parquet types (`-` is null), and keeps `message` only for the rare event whose
//!   text cannot be regenerated from its columns byte for byte. A VPN log part (Client
//!   VPN connection logs, Site-to-Site VPN tunnel logs) adds one typed column per
//!   documented key of its JSON events and keeps `message` for every event; any other
//!   part keeps `message` alone.
//! - [`write`]: events to a part, in key order (timestamp, then sequence), with the
//!   writer settings measured in `../shared/specs/flow-analytics.md` (zstd, dictionaries,
//!   page indexes, bloom filters on address columns, large row groups).
//! - [`read`]: a part back to events, row group by row group, the message of a typed
//!   event regenerated from its columns.
//! - [`detect`]: which layout suits a batch of events (the default VPC flow-log format
//!   is recognised from the text; another format is given by what wrote the events;
//!   VPN logs are recognised by their JSON keys).
//! - [`file`]: positioned reads of a shared file, so that many readers can use one
//!   open part at once (and a part deleted while being read stays readable).

#![warn(missing_docs)]

pub mod detect;
mod error;
mod event;
pub mod file;
pub mod layout;
pub mod read;
pub mod write;

pub use error::PartError;
pub use event::PartEvent;
pub use layout::{PartLayout, KEY_COLUMNS};
pub use read::{FieldTest, PartBatch, PartReader, TextNeedles};
pub use write::{record_batch, write_part, PartSummary, StreamSummary, WriteOptions};
