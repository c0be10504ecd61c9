//! Sinks: where alert lines and dead letters go.
//!
//! * [`jsonl`] — alert lines to a file or standard output (replay).
//! * [`dead_letter`] — rejected input lines with their reason, masked.
//! * [`outbox`] — the live service's ordered, optionally durable queue of
//!   alert lines, with one cursor per sink.
//! * [`deliver`] — one delivery task per sink: retries with backoff.
//! * [`file`], [`webhook`], [`alertmanager`] — the live service's sinks.

pub mod alertmanager;
pub mod dead_letter;
pub mod deliver;
pub mod file;
pub mod jsonl;
pub mod outbox;
pub mod webhook;

pub use dead_letter::{DeadLetter, dead_letter_json};
pub use jsonl::JsonlWriter;
