//! Sinks: where alert lines and dead letters go.
//!
//! * [`jsonl`] — alert lines to a file or standard output, one JSON object
//!   per line, in output order.
//! * [`dead_letter`] — rejected input lines with their reason, masked.

pub mod dead_letter;
pub mod jsonl;

pub use dead_letter::{DeadLetter, dead_letter_json};
pub use jsonl::JsonlWriter;
