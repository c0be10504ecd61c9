//! Sources: where complaint lines come from. Every source turns bytes into
//! complete lines (and a position to resume from); none of them knows
//! anything about records, windows or alerts.
//!
//! * [`lines`] — a chunked line splitter over any `Read` (files, stdin),
//!   used by replay and by the live service's stdin source.

pub mod lines;

pub use lines::LineReader;
