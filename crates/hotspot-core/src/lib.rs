//! hotspot's core: what turns one complaint line into the businesses it is
//! about, shared by the detector (`hotspot`) and the traffic generator
//! (`hotspot-gen`), which checks its texts against the same matcher.
//!
//! ```text
//! record    decode + validate one JSON line, or a reject reason
//! normalize NFKC + ASCII lower-case, with a fast path
//! matcher   one Aho-Corasick DFA → templates → businesses
//! rules     the rule library: load, validate, index
//! time      timestamps and durations; the wall clock
//! ```
//!
//! The unsafe code of the hot path lives here too (`record`'s UTF-8 and
//! escape handling, `normalize`'s output buffer, `matcher::char_dfa`), each
//! block with its `# Safety` note.

pub mod matcher;
pub mod normalize;
pub mod record;
pub mod rules;
pub mod time;
