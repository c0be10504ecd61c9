//! Sources: where complaint lines come from. Every source turns bytes into
//! complete lines (and a position to resume from); none of them knows
//! anything about records, windows or alerts.
//!
//! * [`lines`] — a chunked line splitter over any `Read` (files, stdin),
//!   used by replay and by the live sources below.
//! * [`http`] — `POST /v1/complaints`.
//! * [`stdin`] — standard input of `hotspot run --stdin`.
//! * [`follow`] — a growing file, like `tail -F`.
//! * `fluvio` — partitions of a Fluvio topic (with the `fluvio` feature),
//!   with [`offsets`] checking that every offset arrives exactly once.

#[cfg(feature = "fluvio")]
pub mod fluvio;
pub mod follow;
pub mod http;
pub mod lines;
pub mod offsets;
pub mod stdin;

pub use lines::LineReader;
