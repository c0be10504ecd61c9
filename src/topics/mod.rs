//! New topics (CONTRACT 8, `[discovery]`): batch complaints that no
//! template names yet. [`phrase`] cuts a complaint into candidate phrases
//! and merges overlapping ones.

pub mod phrase;
