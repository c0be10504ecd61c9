//! Complaint records: decoding one JSON line into a [`Record`] that borrows
//! from the input, or into a [`Reject`] with the reason the contract names
//! (CONTRACT 1 and 5.10).
//!
//! Why a hand-written JSON scanner instead of `serde_json`: every record goes
//! through here, and we need three things at once that no general parser
//! gives together — (1) the exact reject reason in the contract's order
//! (`invalid_utf8`, then `invalid_json` for the *whole* line, then
//! `missing_field`, then `bad_ts`), (2) zero allocation for the common line
//! (fields borrow from the input; only escaped strings are unescaped, into a
//! reused scratch buffer), and (3) no recursion, so a line nested 100,000
//! deep is a clean `invalid_json`, never a stack overflow.
//!
//! The grammar is strict RFC 8259 JSON: no raw control characters inside
//! strings, no `NaN`, no trailing commas, nothing after the value. Nesting
//! deeper than [`MAX_DEPTH`] is `invalid_json`. Duplicate keys are allowed
//! and the last one wins (as in most JSON readers). A `\u` escape holding a
//! lone surrogate is accepted and decoded as U+FFFD, so one odd character
//! never costs a complaint.

// Every `unsafe` block says why it is sound (CI runs clippy with
// `-D warnings`).
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(not(target_arch = "x86_64"))]
use memchr::memchr2;

/// The deepest nesting of arrays and objects accepted on one line (the top
/// object counts as 1). Deeper lines are `invalid_json`.
pub(crate) const MAX_DEPTH: usize = 128;

/// Why a line was rejected, in the order the checks run (CONTRACT 5.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// Some byte of the line is not valid UTF-8.
    InvalidUtf8,
    /// The line is not one JSON value, or nests deeper than [`MAX_DEPTH`].
    InvalidJson,
    /// Not an object; `id`, `ts`, `region` or `text` absent; or `id`,
    /// `region`, `text` not strings.
    MissingField,
    /// `ts` is neither an RFC 3339 date-time nor integer epoch milliseconds.
    BadTs,
}

impl Reject {
    /// Every reason, in check order.
    pub const ALL: [Reject; 4] = [
        Reject::InvalidUtf8,
        Reject::InvalidJson,
        Reject::MissingField,
        Reject::BadTs,
    ];

    /// The reason's name in summaries, dead letters and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Reject::InvalidUtf8 => "invalid_utf8",
            Reject::InvalidJson => "invalid_json",
            Reject::MissingField => "missing_field",
            Reject::BadTs => "bad_ts",
        }
    }

    /// Index into per-reason counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A rejected line: the reason, a short human explanation and the byte
/// offset (0-based) on the line where the problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectInfo {
    pub reason: Reject,
    pub detail: &'static str,
    pub at: usize,
}

/// A valid complaint record. Strings borrow from the input line, or from the
/// decoder's scratch buffer when the JSON string held escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub id: &'a str,
    /// Event time, epoch milliseconds.
    pub ts: i64,
    pub region: &'a str,
    pub text: &'a str,
    /// `None` when absent or not a string: the complaint is its own caller.
    pub caller: Option<&'a str>,
    pub channel: Option<&'a str>,
}

/// The result of decoding one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Empty or whitespace only: skipped, neither accepted nor rejected.
    Blank,
    Record(Record<'a>),
    Rejected(RejectInfo),
}

/// Where the text of one field of a decoded record is: a range of the line,
/// or of the decoder's scratch buffer when the JSON string held escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    in_scratch: bool,
    start: usize,
    end: usize,
}

/// `&line[p.start..p.end]` without its checks: bounds, and a character
/// boundary at each end, which cost a twentieth of the time to decode a
/// line (five fields, two ends each).
///
/// # Safety
///
/// `p.start <= p.end <= line.len()`, and both are character boundaries of
/// `line`.
#[inline(always)]
unsafe fn line_piece(line: &str, p: Piece) -> &str {
    debug_assert!(p.start <= p.end && p.end <= line.len());
    debug_assert!(line.is_char_boundary(p.start) && line.is_char_boundary(p.end));
    // SAFETY: the caller's precondition is exactly `get_unchecked`'s.
    unsafe { line.get_unchecked(p.start..p.end) }
}

/// A valid record as positions rather than borrowed strings, so that it
/// can wait (the engine's pipeline holds a few records at once) without
/// holding a borrow of its decoder; [`Decoder::record`] turns it into a
/// [`Record`] while the decoder still holds this line's scratch text.
///
/// It holds its line as the `&str` the decoder validated, so that reading
/// the record needs no second UTF-8 check and cannot be handed another
/// line's bytes. Invariant (its fields are private, and only
/// `Decoder::build` makes one): every piece of it that is not in the
/// scratch buffer is a range of `line` between two character boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpans<'l> {
    /// Event time, epoch milliseconds.
    pub ts: i64,
    line: &'l str,
    id: Piece,
    region: Piece,
    text: Piece,
    caller: Option<Piece>,
    channel: Option<Piece>,
}

/// [`Decoded`] with the record as positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodedSpans<'l> {
    Blank,
    Record(RecordSpans<'l>),
    Rejected(RejectInfo),
}

/// Decodes lines; owns the scratch buffer for unescaped strings so that the
/// steady state allocates nothing.
#[derive(Default)]
pub struct Decoder {
    scratch: String,
    /// Bit `i` is set when byte `i` of the current line is a `"` or a `\`
    /// (see [`Structure`]).
    specials: Vec<u64>,
    /// The date of the last RFC 3339 `ts` (most share it).
    dates: crate::time::DateCache,
}

/// What one pass over a line finds before it is parsed: where its quotes
/// and backslashes are, and whether it holds any control byte at all.
///
/// With that bitmap a string scan jumps from one quote or backslash to the
/// next in a few instructions instead of reading the string's bytes: on the
/// common line (no escapes) a string ends at its next quote, and on the app
/// channel's lines, whose `\uXXXX` escapes come every six bytes, each
/// escape is one jump. Strings were the largest single cost of decoding (a
/// line has some twenty). A line with a control byte (legal only as
/// whitespace between tokens, an error inside a string) takes the
/// byte-wise scanner, which checks every string for one; both scanners
/// accept and reject exactly the same lines, and the decoder's unit tests
/// and fuzz tests run every line through both.
#[derive(Clone, Copy)]
struct Structure {
    control: bool,
}

impl Structure {
    /// Fills `specials` with the quote-or-backslash bitmap of `line` (one
    /// bit per byte; exactly `line.len().div_ceil(64)` words).
    fn scan(line: &[u8], specials: &mut Vec<u64>) -> Self {
        let words = line.len().div_ceil(64);
        // Every word is written below: no need to zero them first.
        if specials.len() != words {
            specials.resize(words, 0);
        }
        let control = specials_of(line, specials);
        Structure { control }
    }
}

/// Writes the quote-or-backslash bits of `line` into `out` (one word per
/// 64 bytes, the last padded with spaces) and tells whether any byte is
/// below 0x20. With AVX2 (checked once per call; the CPU feature test is
/// a cached flag) 32 bytes a step, else SSE2's 16, which every x86-64 has.
#[inline]
fn specials_of(line: &[u8], out: &mut [u64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { specials_avx2(line, out) };
        }
    }
    specials_with(line, out, masks64)
}

/// [`specials_of`] with AVX2.
///
/// # Safety
///
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn specials_avx2(line: &[u8], out: &mut [u64]) -> bool {
    specials_with(line, out, |b| {
        // SAFETY: the CPU supports AVX2 (this function's precondition).
        unsafe { masks64_avx2(b) }
    })
}

/// The loop of [`specials_of`] over 64-byte blocks, with `masks` giving a
/// block's (quote-or-backslash bits, any byte below 0x20).
#[inline(always)]
fn specials_with(line: &[u8], out: &mut [u64], masks: impl Fn(&[u8; 64]) -> (u64, bool)) -> bool {
    let mut control = false;
    let mut chunks = line.chunks_exact(64);
    for (w, chunk) in out.iter_mut().zip(chunks.by_ref()) {
        let (m, c) = masks(chunk.try_into().unwrap_or(&[b' '; 64]));
        *w = m;
        control |= c;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        // Pad with spaces: neither a quote, a backslash nor a control.
        let mut buf = [b' '; 64];
        buf[..tail.len()].copy_from_slice(tail);
        let (m, c) = masks(&buf);
        if let Some(w) = out.last_mut() {
            *w = m;
        }
        control |= c;
    }
    control
}

/// (quote-or-backslash bits, any byte below 0x20) of 64 bytes, with AVX2.
///
/// # Safety
///
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn masks64_avx2(b: &[u8; 64]) -> (u64, bool) {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8, _mm256_testz_si256,
    };
    // The function enables AVX2, so its intrinsics are safe to call here
    // but for the loads, which read through a pointer.
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let x1f = _mm256_set1_epi8(0x1f);
    let (lo_half, hi_half) = b.split_at(32);
    // SAFETY: the CPU supports AVX2 (this function's precondition), and
    // each unaligned load reads the 32 bytes of a 32-byte half of `b`.
    let (lo, hi) = unsafe {
        (
            _mm256_loadu_si256(lo_half.as_ptr().cast::<__m256i>()),
            _mm256_loadu_si256(hi_half.as_ptr().cast::<__m256i>()),
        )
    };
    let sl = _mm256_or_si256(
        _mm256_cmpeq_epi8(lo, quote),
        _mm256_cmpeq_epi8(lo, backslash),
    );
    let sh = _mm256_or_si256(
        _mm256_cmpeq_epi8(hi, quote),
        _mm256_cmpeq_epi8(hi, backslash),
    );
    let m =
        (_mm256_movemask_epi8(sl) as u32 as u64) | ((_mm256_movemask_epi8(sh) as u32 as u64) << 32);
    // c <= 0x1f exactly when max(c, 0x1f) == 0x1f (unsigned).
    let cl = _mm256_cmpeq_epi8(_mm256_max_epu8(lo, x1f), x1f);
    let ch = _mm256_cmpeq_epi8(_mm256_max_epu8(hi, x1f), x1f);
    let c = _mm256_or_si256(cl, ch);
    (m, _mm256_testz_si256(c, c) == 0)
}

/// (quote-or-backslash bits, any byte below 0x20) of 64 bytes.
#[inline(always)]
fn masks64(b: &[u8; 64]) -> (u64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128,
        };
        let mut m = 0u64;
        // SAFETY: SSE2 is part of x86-64 (the intrinsics need it), and each
        // unaligned load reads the 16 bytes of one 16-byte block of `b`.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let x1f = _mm_set1_epi8(0x1f);
            let mut c = _mm_setzero_si128();
            for (k, block) in b.chunks_exact(16).enumerate() {
                let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
                let sp = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
                m |= (_mm_movemask_epi8(sp) as u16 as u64) << (16 * k as u32);
                // c <= 0x1f exactly when max(c, 0x1f) == 0x1f (unsigned).
                c = _mm_or_si128(c, _mm_cmpeq_epi8(_mm_max_epu8(v, x1f), x1f));
            }
            (m, _mm_movemask_epi8(c) != 0)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (mut m, mut c) = (0u64, false);
        for (i, &x) in b.iter().enumerate() {
            m |= ((x == b'"' || x == b'\\') as u64) << i;
            c |= x < 0x20;
        }
        (m, c)
    }
}

/// The fast path of [`Decoder::scan`] for a line without control bytes
/// (so its only whitespace is the space) whose quotes and backslashes are
/// in `specials`: the object's members in one tight loop, each string found
/// by jumping through the bitmap. It gives up — `None` — at anything
/// unusual (a key with escapes, any syntax error), and the decoder then
/// scans the line again with the general scanner, which finds the precise
/// error. So it only needs to be right on lines it accepts: there it yields
/// the same fields as the general scanner, which the tests check on every
/// line they decode.
#[inline]
fn scan_plain(line: &str, specials: &[u64]) -> Option<[Field; 6]> {
    let b = line.as_bytes();
    let n = b.len();
    // The byte at `i`, or 0 (never valid there) past the end.
    let at = |i: usize| -> u8 { b.get(i).copied().unwrap_or(0) };
    // Spaces from `i` on; the separators of generated and hand-written
    // JSON are followed by none or one, so the loop runs rarely.
    let spaces = |mut i: usize| -> usize {
        while at(i) == b' ' {
            i += 1;
        }
        i
    };
    let mut i = spaces(0);
    if at(i) != b'{' {
        return None;
    }
    i = spaces(i + 1);
    // id, ts, region, text, caller, channel
    let mut f = [Field::Absent; 6];
    if at(i) == b'}' {
        i += 1;
    } else {
        loop {
            if at(i) != b'"' {
                return None;
            }
            let end = next_bit(specials, i + 1)?;
            if b[end] != b'"' {
                return None;
            }
            let slot = key_of(&b[i + 1..end]) as usize;
            i = end + 1;
            if at(i) != b':' {
                i = spaces(i);
                if at(i) != b':' {
                    return None;
                }
            }
            i += 1;
            if at(i) == b' ' {
                i = spaces(i + 1);
            }
            let v = if at(i) == b'"' {
                // A string: from one quote-or-backslash bit to the next,
                // each escape checked on the way.
                let start = i + 1;
                let mut j = next_bit(specials, start)?;
                let mut escaped = false;
                while b[j] == b'\\' {
                    escaped = true;
                    j = next_bit(specials, escape_end(b, j)?)?;
                }
                i = j + 1;
                Field::Str(Span {
                    start,
                    end: j,
                    escaped,
                })
            } else {
                let mut s = Scanner {
                    line,
                    b,
                    i,
                    ctrl: false,
                    specials: Some(specials),
                };
                let v = s.value(1).ok()?;
                i = s.i;
                v
            };
            if let Some(x) = f.get_mut(slot) {
                *x = v;
            }
            if at(i) == b' ' {
                i = spaces(i + 1);
            }
            match at(i) {
                b',' => {
                    i += 1;
                    if at(i) == b' ' {
                        i = spaces(i + 1);
                    }
                }
                b'}' => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (spaces(i) == n).then_some(f)
}

/// The index after the escape that starts at the backslash `b[i]`, if it
/// is a valid one.
#[inline]
fn escape_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Some(i + 2),
        Some(b'u') => {
            let hex = b.get(i + 2..i + 6)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 6)
        }
        _ => None,
    }
}

/// The first set bit at or after `from` in `bits`.
#[inline]
fn next_bit(bits: &[u64], from: usize) -> Option<usize> {
    let mut w = from / 64;
    let mut m = *bits.get(w)? & (!0u64 << (from % 64));
    loop {
        if m != 0 {
            return Some(w * 64 + m.trailing_zeros() as usize);
        }
        w += 1;
        m = *bits.get(w)?;
    }
}

/// Where a string value lies: raw bytes of the line between the quotes, and
/// whether it holds escapes that must be decoded.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    escaped: bool,
}

#[derive(Clone, Copy, Debug)]
enum Field {
    Absent,
    Str(Span),
    /// Present but not a string (number, object, ...).
    Other,
    Null,
    /// A JSON integer (only tracked for `ts`); `None` when it overflows i64.
    Int(Option<i64>),
}

type Res<T> = Result<T, RejectInfo>;

#[inline]
fn json_err(detail: &'static str, at: usize) -> RejectInfo {
    RejectInfo {
        reason: Reject::InvalidJson,
        detail,
        at,
    }
}

struct Scanner<'a> {
    /// The line, and the same as bytes (what the scanner mostly reads).
    line: &'a str,
    b: &'a [u8],
    i: usize,
    /// Whether the line holds any byte below 0x20 at all; when it does not
    /// (nearly always), strings need no control-character check.
    ctrl: bool,
    /// The line's bitmap of quotes and backslashes, when the line holds no
    /// control byte (see [`Structure`]).
    specials: Option<&'a [u64]>,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn expect(&mut self, c: u8, detail: &'static str) -> Res<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(json_err(detail, self.i))
        }
    }

    /// Scans a string whose opening quote is at `self.i`.
    #[inline(always)]
    fn string(&mut self) -> Res<Span> {
        let open = self.i;
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            // The next quote or backslash: from the line's bitmap when it
            // has one (no control bytes anywhere), else found byte-wise.
            let k = if let Some(specials) = self.specials {
                let Some(at) = next_bit(specials, self.i) else {
                    return Err(json_err("unterminated string", open));
                };
                at - self.i
            } else {
                let rest = &self.b[self.i..];
                let Some(k) = find_quote(rest) else {
                    return Err(json_err("unterminated string", open));
                };
                if self.ctrl && has_control(&rest[..k]) {
                    let at = self.i + rest[..k].iter().position(|&c| c < 0x20).unwrap_or(0);
                    return Err(json_err("control character in string", at));
                }
                k
            };
            self.i += k;
            if self.b[self.i] == b'"' {
                let end = self.i;
                self.i += 1;
                return Ok(Span {
                    start,
                    end,
                    escaped,
                });
            }
            escaped = true;
            match self.b.get(self.i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                Some(b'u') => {
                    let hex = self.b.get(self.i + 2..self.i + 6);
                    if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                        return Err(json_err("bad \\u escape", self.i));
                    }
                    self.i += 6;
                }
                _ => return Err(json_err("bad escape", self.i)),
            }
        }
    }

    /// Scans a number at `self.i`; returns its value when it is an integer
    /// (`Some(None)` when the integer overflows i64), `None` for a number
    /// with a fraction or exponent.
    #[inline]
    fn number(&mut self) -> Res<Option<Option<i64>>> {
        let start = self.i;
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        let int_start = self.i;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
            }
            _ => return Err(json_err("bad number", start)),
        }
        let int_end = self.i;
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.i += 1;
            let s = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            if self.i == s {
                return Err(json_err("bad number", start));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer = false;
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let s = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            if self.i == s {
                return Err(json_err("bad number", start));
            }
        }
        if !integer {
            return Ok(None);
        }
        let mut v: i64 = 0;
        for &c in &self.b[int_start..int_end] {
            let d = (c - b'0') as i64;
            v = match v.checked_mul(10).and_then(|v| {
                if neg {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            }) {
                Some(v) => v,
                None => return Ok(Some(None)),
            };
        }
        Ok(Some(Some(v)))
    }

    #[inline]
    fn literal(&mut self, word: &'static [u8]) -> Res<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(json_err("unexpected character", self.i))
        }
    }

    /// Scans any JSON value at `self.i` (after whitespace), nested at
    /// `depth` (the depth of the container holding it). Containers are
    /// walked iteratively with an explicit stack.
    fn value(&mut self, depth: usize) -> Res<Field> {
        self.ws();
        match self.peek() {
            Some(b'"') => Ok(Field::Str(self.string()?)),
            Some(b'-' | b'0'..=b'9') => Ok(match self.number()? {
                Some(int) => Field::Int(int),
                None => Field::Other,
            }),
            Some(b't') => self.literal(b"true").map(|_| Field::Other),
            Some(b'f') => self.literal(b"false").map(|_| Field::Other),
            Some(b'n') => self.literal(b"null").map(|_| Field::Null),
            Some(b'{' | b'[') => self.container(depth).map(|_| Field::Other),
            Some(_) => Err(json_err("unexpected character", self.i)),
            None => Err(json_err("unexpected end of line", self.i)),
        }
    }

    /// Walks a whole array or object starting at `self.i`.
    fn container(&mut self, depth: usize) -> Res<()> {
        // stack[k] is true for an object, false for an array.
        let mut stack = [false; MAX_DEPTH + 1];
        let mut top = 0usize; // number of open containers
        // Open the first container.
        let open = |s: &mut Self, stack: &mut [bool; MAX_DEPTH + 1], top: &mut usize| -> Res<()> {
            if depth + *top + 1 > MAX_DEPTH {
                return Err(json_err("nested too deep", s.i));
            }
            stack[*top] = s.b[s.i] == b'{';
            *top += 1;
            s.i += 1;
            Ok(())
        };
        open(self, &mut stack, &mut top)?;
        // `true` when the next thing is the first member (empty allowed).
        let mut first = true;
        loop {
            self.ws();
            let is_obj = stack[top - 1];
            let close = if is_obj { b'}' } else { b']' };
            if first && self.peek() == Some(close) {
                self.i += 1;
                top -= 1;
            } else {
                if !first {
                    // After a member: a comma or the close.
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            self.ws();
                        }
                        Some(c) if c == close => {
                            self.i += 1;
                            top -= 1;
                            if top == 0 {
                                return Ok(());
                            }
                            first = false;
                            continue;
                        }
                        _ => return Err(json_err("expected ',' or a closing bracket", self.i)),
                    }
                }
                if is_obj {
                    if self.peek() != Some(b'"') {
                        return Err(json_err("expected a key", self.i));
                    }
                    self.string()?;
                    self.ws();
                    self.expect(b':', "expected ':'")?;
                    self.ws();
                }
                match self.peek() {
                    Some(b'{' | b'[') => {
                        open(self, &mut stack, &mut top)?;
                        first = true;
                        continue;
                    }
                    _ => {
                        self.value(depth + top)?;
                    }
                }
            }
            if top == 0 {
                return Ok(());
            }
            first = false;
        }
    }
}

/// The first `"` or `\\` in `s`.
///
/// Keys and most values are short, and memchr's set-up costs more than it
/// saves on a dozen bytes; on x86-64 sixteen bytes are compared at a time
/// with SSE2 (part of the x86-64 baseline, so always there), the tail byte
/// by byte.
#[inline(always)]
fn find_quote(s: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut i = 0;
        // SAFETY: SSE2 is part of x86-64; every load reads 16 bytes at
        // `i`, and `i + 16 <= s.len()` holds inside the loop.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            while i + 16 <= s.len() {
                let v = _mm_loadu_si128(s.as_ptr().add(i) as *const __m128i);
                let hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
                let mask = _mm_movemask_epi8(hit) as u32;
                if mask != 0 {
                    return Some(i + mask.trailing_zeros() as usize);
                }
                i += 16;
            }
        }
        s[i..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\')
            .map(|k| k + i)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let head = s.len().min(16);
        for (i, &c) in s[..head].iter().enumerate() {
            if c == b'"' || c == b'\\' {
                return Some(i);
            }
        }
        memchr2(b'"', b'\\', &s[head..]).map(|k| k + head)
    }
}

#[inline]
fn has_control(s: &[u8]) -> bool {
    // Written so that it vectorises.
    s.iter().fold(false, |acc, &c| acc | (c < 0x20))
}

/// Decodes the escapes of a JSON string body into `out`.
///
/// Written for the app channel, which escapes every non-ASCII character:
/// escapes come every six bytes there. So the loop writes bytes straight
/// into `out`'s spare capacity (no `push_str` per piece, which was a
/// `memcpy` call per character), decodes hex without a loop, and encodes
/// each character's UTF-8 itself.
///
/// The scanner only hands it string bodies it accepted, whose every
/// backslash starts a complete, valid escape. It is sound on any `str`
/// all the same, at one test per escape: a backslash that does not start
/// an escape is kept as it is, and a `\u` escape is decoded only when its
/// four digits are ASCII (digits that are ASCII but not hex give some
/// character, never a surrogate). So the output is always valid UTF-8:
/// the runs between escapes are copied whole (an escape is all ASCII, so
/// it starts and ends at character boundaries of `raw`), and every escape
/// is written as the UTF-8 of one scalar value.
fn unescape(raw: &str, out: &mut String) {
    let raw = raw.as_bytes();
    let n = raw.len();
    // The output is never longer than the input: `\uXXXX` (6 bytes) is at
    // most 3 bytes of UTF-8, a surrogate pair (12) is 4, a short escape (2)
    // is 1, and plain bytes (a kept backslash too) are copied.
    out.reserve(n);
    // SAFETY: the bytes this function adds to `out` are valid UTF-8 (see
    // above), and they become part of it only through the `set_len` at the
    // end; if anything panics before, `out` keeps its old, valid length.
    let v = unsafe { out.as_mut_vec() };
    let start = v.len();
    // Room for `n` bytes, checked once here (`reserve` made it); every
    // write below is a checked index into it, and `o <= i < n` holds at
    // each one, so none fails.
    let dst = &mut v.spare_capacity_mut()[..n];
    let mut o = 0usize;
    let mut i = 0usize;
    while i < n {
        let c = raw[i];
        if c != b'\\' {
            dst[o].write(c);
            o += 1;
            i += 1;
            continue;
        }
        // The escape at `raw[i]`, as (character, bytes it takes).
        let (cp, len) = match raw[i..] {
            [_, b'u', a, b, c, d, ref after @ ..] => match hex_digits([a, b, c, d]) {
                Some(hi) if !(0xD800..0xE000).contains(&hi) => (hi, 6),
                // A high surrogate followed by a low one.
                Some(hi) if hi < 0xDC00 => match *after {
                    [b'\\', b'u', a, b, c, d, ..] => match hex_digits([a, b, c, d]) {
                        Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                            (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), 12)
                        }
                        _ => (0xFFFD, 6),
                    },
                    _ => (0xFFFD, 6),
                },
                // A lone surrogate.
                Some(_) => (0xFFFD, 6),
                None => (u32::from(b'\\'), 1),
            },
            [_, e @ (b'"' | b'\\' | b'/'), ..] => (u32::from(e), 2),
            [_, b'n', ..] => (0x0A, 2),
            [_, b't', ..] => (0x09, 2),
            [_, b'r', ..] => (0x0D, 2),
            [_, b'b', ..] => (0x08, 2),
            [_, b'f', ..] => (0x0C, 2),
            // Not an escape (the scanner never lets one through): the
            // backslash is kept, and what follows it read as text.
            _ => (u32::from(b'\\'), 1),
        };
        i += len;
        // `cp` is a scalar value: surrogates were replaced above.
        debug_assert!(char::from_u32(cp).is_some());
        if cp < 0x80 {
            dst[o].write(cp as u8);
            o += 1;
        } else if cp < 0x800 {
            let d = &mut dst[o..o + 2];
            d[0].write(0xC0 | (cp >> 6) as u8);
            d[1].write(0x80 | (cp & 0x3F) as u8);
            o += 2;
        } else if cp < 0x10000 {
            let d = &mut dst[o..o + 3];
            d[0].write(0xE0 | (cp >> 12) as u8);
            d[1].write(0x80 | ((cp >> 6) & 0x3F) as u8);
            d[2].write(0x80 | (cp & 0x3F) as u8);
            o += 3;
        } else {
            let d = &mut dst[o..o + 4];
            d[0].write(0xF0 | (cp >> 18) as u8);
            d[1].write(0x80 | ((cp >> 12) & 0x3F) as u8);
            d[2].write(0x80 | ((cp >> 6) & 0x3F) as u8);
            d[3].write(0x80 | (cp & 0x3F) as u8);
            o += 4;
        }
    }
    debug_assert!(o <= n);
    // SAFETY: `dst[..o]`, the `o` bytes after `start`, were written above
    // (each write a checked index into the spare capacity, so `start + o`
    // is within it), and they are valid UTF-8 (see the doc comment).
    unsafe { v.set_len(start + o) };
    debug_assert!(std::str::from_utf8(&v[start..]).is_ok());
}

/// The value of the four digits of a `\u` escape, or `None` when one is
/// not ASCII. (The scanner has checked that they are hex; ASCII that is
/// not hex gives some value below 0x10000.)
#[inline(always)]
fn hex_digits(digits: [u8; 4]) -> Option<u32> {
    let x = u32::from_be_bytes(digits);
    (x & 0x8080_8080 == 0).then(|| hex4(x))
}

/// The value of four hex digits, all four at once (`x` holds them, the
/// first in the top byte): '0'..='9' are 0x30..=0x39; 'A'..='F' and
/// 'a'..='f' have bit 6 set and low nibbles 1..=6, so adding 9 for them
/// gives 10..=15.
#[inline]
fn hex4(x: u32) -> u32 {
    // One nibble value per byte, the first digit in the top byte.
    let n = (x & 0x0f0f_0f0f) + 9 * ((x >> 6) & 0x0101_0101);
    // Pairs of nibbles into bytes, then the two bytes together.
    let t = (n | (n >> 4)) & 0x00ff_00ff;
    ((t >> 8) & 0xff00) | (t & 0xff)
}

/// Which of the fields we read a key names.
/// (The discriminants are the slots of the decoder's field array.)
#[derive(Clone, Copy)]
enum Key {
    Id = 0,
    Ts,
    Region,
    Text,
    Caller,
    Channel,
    Other,
}

#[inline]
fn key_of(name: &[u8]) -> Key {
    // By length first, then one comparison of the whole name as an integer.
    match *name {
        [a, b] => match u16::from_le_bytes([a, b]) {
            x if x == u16::from_le_bytes(*b"id") => Key::Id,
            x if x == u16::from_le_bytes(*b"ts") => Key::Ts,
            _ => Key::Other,
        },
        [a, b, c, d] if u32::from_le_bytes([a, b, c, d]) == u32::from_le_bytes(*b"text") => {
            Key::Text
        }
        [a, b, c, d, e, f] => match u64::from_le_bytes([a, b, c, d, e, f, 0, 0]) {
            x if x == u64::from_le_bytes(*b"region\0\0") => Key::Region,
            x if x == u64::from_le_bytes(*b"caller\0\0") => Key::Caller,
            _ => Key::Other,
        },
        [a, b, c, d, e, f, g]
            if u64::from_le_bytes([a, b, c, d, e, f, g, 0])
                == u64::from_le_bytes(*b"channel\0") =>
        {
            Key::Channel
        }
        _ => Key::Other,
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one line (without its `\n`; a trailing `\r` is whitespace).
    #[inline]
    pub fn decode<'a>(&'a mut self, line: &'a [u8]) -> Decoded<'a> {
        match self.decode_with(line, true) {
            DecodedSpans::Blank => Decoded::Blank,
            DecodedSpans::Rejected(r) => Decoded::Rejected(r),
            DecodedSpans::Record(r) => Decoded::Record(self.record(&r)),
        }
    }

    /// [`Decoder::decode`] giving the record as positions; read it with
    /// [`Decoder::record`] before this decoder decodes another line.
    #[cfg(test)]
    #[inline]
    pub(crate) fn decode_spans<'l>(&mut self, line: &'l [u8]) -> DecodedSpans<'l> {
        self.decode_with(line, true)
    }

    /// The record `r` that [`Decoder::decode_spans`] made of the last line
    /// this decoder decoded.
    ///
    /// The unescaped strings of `r` are in this decoder's scratch buffer
    /// until it decodes another line. Read after that, they are whatever
    /// the buffer then holds, or this panics (a checked slice of a `str`
    /// that falls outside it or inside a character); never worse.
    #[inline]
    pub fn record<'a>(&'a self, r: &RecordSpans<'a>) -> Record<'a> {
        let line = r.line;
        let get = |p: Piece| -> &'a str {
            if p.in_scratch {
                // Checked: `r` may be read after the next line replaced
                // the scratch text.
                &self.scratch[p.start..p.end]
            } else {
                // SAFETY: `p` is a piece of `r.line` between character
                // boundaries (the invariant of `RecordSpans`).
                unsafe { line_piece(line, p) }
            }
        };
        Record {
            id: get(r.id),
            ts: r.ts,
            region: get(r.region),
            text: get(r.text),
            caller: r.caller.map(get),
            channel: r.channel.map(get),
        }
    }

    /// [`Decoder::decode`] with the bitmap never used: every string
    /// scanned byte-wise. Only for tests that check both scanners agree.
    #[doc(hidden)]
    pub fn decode_bytewise<'a>(&'a mut self, line: &'a [u8]) -> Decoded<'a> {
        match self.decode_with(line, false) {
            DecodedSpans::Blank => Decoded::Blank,
            DecodedSpans::Rejected(r) => Decoded::Rejected(r),
            DecodedSpans::Record(r) => Decoded::Record(self.record(&r)),
        }
    }

    fn decode_with<'l>(&mut self, line: &'l [u8], bitmap: bool) -> DecodedSpans<'l> {
        // From here on the line is a `str`: every piece of it the decoder
        // hands out is a checked slice, with no unchecked UTF-8 view.
        let text = match simdutf8::compat::from_utf8(line) {
            Ok(text) => text,
            Err(e) => {
                return DecodedSpans::Rejected(RejectInfo {
                    reason: Reject::InvalidUtf8,
                    detail: "invalid UTF-8",
                    at: e.valid_up_to(),
                });
            }
        };
        let structure = Structure::scan(line, &mut self.specials);
        if bitmap && !structure.control {
            if let Some(fields) = scan_plain(text, &self.specials) {
                return self.build(text, fields);
            }
        }
        let mut s = Scanner {
            line: text,
            b: line,
            i: 0,
            ctrl: structure.control,
            specials: (bitmap && !structure.control).then_some(self.specials.as_slice()),
        };
        s.ws();
        if s.i == line.len() {
            return DecodedSpans::Blank;
        }
        let fields = match Self::scan(&mut s) {
            Ok(Some(f)) => f,
            Ok(None) => {
                return DecodedSpans::Rejected(RejectInfo {
                    reason: Reject::MissingField,
                    detail: "not a JSON object",
                    at: 0,
                });
            }
            Err(e) => return DecodedSpans::Rejected(e),
        };
        self.build(text, fields)
    }

    /// Scans the whole line; `Ok(None)` when it is valid JSON but not an
    /// object.
    fn scan(s: &mut Scanner<'_>) -> Res<Option<[Field; 6]>> {
        if s.peek() != Some(b'{') {
            s.value(0)?;
            s.ws();
            if s.i != s.b.len() {
                return Err(json_err("unexpected data after the value", s.i));
            }
            return Ok(None);
        }
        s.i += 1;
        // id, ts, region, text, caller, channel
        let mut f = [Field::Absent; 6];
        s.ws();
        if s.peek() == Some(b'}') {
            s.i += 1;
        } else {
            loop {
                s.ws();
                if s.peek() != Some(b'"') {
                    return Err(json_err("expected a key", s.i));
                }
                let k = s.string()?;
                let key = if k.escaped {
                    let mut name = String::new();
                    unescape(&s.line[k.start..k.end], &mut name);
                    key_of(name.as_bytes())
                } else {
                    key_of(&s.b[k.start..k.end])
                };
                s.ws();
                s.expect(b':', "expected ':'")?;
                let v = s.value(1)?;
                let slot = match key {
                    Key::Id => 0,
                    Key::Ts => 1,
                    Key::Region => 2,
                    Key::Text => 3,
                    Key::Caller => 4,
                    Key::Channel => 5,
                    Key::Other => usize::MAX,
                };
                if slot != usize::MAX {
                    f[slot] = v;
                }
                s.ws();
                match s.peek() {
                    Some(b',') => s.i += 1,
                    Some(b'}') => {
                        s.i += 1;
                        break;
                    }
                    _ => return Err(json_err("expected ',' or '}'", s.i)),
                }
            }
        }
        s.ws();
        if s.i != s.b.len() {
            return Err(json_err("unexpected data after the object", s.i));
        }
        Ok(Some(f))
    }

    fn build<'l>(&mut self, line: &'l str, f: [Field; 6]) -> DecodedSpans<'l> {
        let missing = |detail| {
            DecodedSpans::Rejected(RejectInfo {
                reason: Reject::MissingField,
                detail,
                at: 0,
            })
        };
        let (Field::Str(id), Field::Str(region), Field::Str(text)) = (f[0], f[2], f[3]) else {
            return missing(match (f[0], f[2], f[3]) {
                (Field::Absent, ..) => "no id",
                (Field::Str(_), Field::Absent, _) => "no region",
                (Field::Str(_), Field::Str(_), Field::Absent) => "no text",
                (Field::Str(_), Field::Str(_), _) => "text is not a string",
                (Field::Str(_), ..) => "region is not a string",
                _ => "id is not a string",
            });
        };
        let caller = match f[4] {
            Field::Str(s) => Some(s),
            _ => None,
        };
        let channel = match f[5] {
            Field::Str(s) => Some(s),
            _ => None,
        };
        // Unescape what needs it into the scratch buffer; remember where.
        self.scratch.clear();
        let dates = &mut self.dates;
        let scratch = &mut self.scratch;
        let mut place = |span: Span| -> Piece {
            if span.escaped {
                let from = scratch.len();
                unescape(&line[span.start..span.end], scratch);
                Piece {
                    in_scratch: true,
                    start: from,
                    end: scratch.len(),
                }
            } else {
                Piece {
                    in_scratch: false,
                    start: span.start,
                    end: span.end,
                }
            }
        };
        let ts_place = match f[1] {
            Field::Absent | Field::Null => return missing("no ts"),
            Field::Str(span) => Some(place(span)),
            Field::Int(_) | Field::Other => None,
        };
        let id = place(id);
        let region = place(region);
        let text = place(text);
        let caller = caller.map(&mut place);
        let channel = channel.map(&mut place);
        let scratch = self.scratch.as_str();
        let get = |p: Piece| -> &str {
            if p.in_scratch {
                &scratch[p.start..p.end]
            } else {
                // SAFETY: `p` is a span of `line` that a scanner found:
                // from just after an opening quote to its closing quote,
                // both ASCII, so both ends are character boundaries.
                unsafe { line_piece(line, p) }
            }
        };
        let bad_ts = |detail| {
            DecodedSpans::Rejected(RejectInfo {
                reason: Reject::BadTs,
                detail,
                at: 0,
            })
        };
        let ts = match (f[1], ts_place) {
            (_, Some(p)) => match crate::time::parse_rfc3339_cached(get(p), dates) {
                Some(ts) => ts,
                None => return bad_ts("ts is not an RFC 3339 date-time with an offset"),
            },
            (Field::Int(Some(ms)), _)
                if (crate::time::MIN_MS..=crate::time::MAX_MS).contains(&ms) =>
            {
                ms
            }
            (Field::Int(_), _) => return bad_ts("ts is out of range"),
            _ => return bad_ts("ts is neither a string nor an integer"),
        };
        DecodedSpans::Record(RecordSpans {
            ts,
            line,
            id,
            region,
            text,
            caller,
            channel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_by_length_and_integer() {
        let plain = |k: &[u8]| match k {
            b"id" => 0,
            b"ts" => 1,
            b"region" => 2,
            b"text" => 3,
            b"caller" => 4,
            b"channel" => 5,
            _ => 6,
        };
        for k in [
            &b"id"[..],
            b"ts",
            b"region",
            b"text",
            b"caller",
            b"channel",
            b"",
            b"i",
            b"di",
            b"st",
            b"texts",
            b"tex",
            b"regio\0",
            b"region\0",
            b"Caller",
            b"channe",
            b"channel\0",
            b"channels",
            b"priority",
            b"agent",
            b"\0\0",
            b"idid",
            b"\xff\xfe",
        ] {
            assert_eq!(key_of(k) as usize, plain(k), "{k:?}");
        }
    }

    fn reason(line: &[u8]) -> Option<Reject> {
        let (mut d1, mut d2) = (Decoder::new(), Decoder::new());
        let decoded = d1.decode(line);
        assert_eq!(decoded, d2.decode_bytewise(line), "the two scanners differ");
        match decoded {
            Decoded::Rejected(r) => Some(r.reason),
            _ => None,
        }
    }

    const OK: &str = r#"{"id":"WO1","ts":"2026-03-15T09:27:41+08:00","region":"杭州","text":"彩铃复制失败","caller":"13800000000"}"#;

    #[test]
    fn decodes_a_record() {
        let mut d = Decoder::new();
        let Decoded::Record(r) = d.decode(OK.as_bytes()) else {
            panic!()
        };
        assert_eq!(r.id, "WO1");
        assert_eq!(r.ts, 1_773_538_061_000);
        assert_eq!(r.region, "杭州");
        assert_eq!(r.text, "彩铃复制失败");
        assert_eq!(r.caller, Some("13800000000"));
        assert_eq!(r.channel, None);
    }

    #[test]
    fn unescapes_strings() {
        let line = r#"{"id":"A\"1","ts":1773538061000,"region":"\u676d\u5dde","text":"a\nb\\c\/d\ud83d\ude00\ud800x","caller":123,"channel":"app"}"#;
        let mut d = Decoder::new();
        let Decoded::Record(r) = d.decode(line.as_bytes()) else {
            panic!()
        };
        assert_eq!(r.id, "A\"1");
        assert_eq!(r.region, "杭州");
        assert_eq!(r.text, "a\nb\\c/d😀\u{FFFD}x");
        assert_eq!(r.caller, None, "a non-string caller is anonymous");
        assert_eq!(r.channel, Some("app"));
        assert_eq!(r.ts, 1_773_538_061_000);
    }

    #[test]
    fn blank_lines_are_skipped() {
        for line in ["", " ", "\t \r", "\r"] {
            assert_eq!(
                Decoder::new().decode(line.as_bytes()),
                Decoded::Blank,
                "{line:?}"
            );
        }
    }

    #[test]
    fn every_reject_reason() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let deep_field = format!(
            r#"{{"id":"1","ts":1,"region":"r","text":"t","x":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let ok_nested = format!(
            r#"{{"id":"1","ts":1,"region":"r","text":"t","x":{}1{}}}"#,
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        let cases: Vec<(&[u8], Option<Reject>)> = vec![
            (OK.as_bytes(), None),
            (b"{\"id\":\"1\",\"ts\":1,\"region\":\"r\",\"text\":\"\xff\"}", Some(Reject::InvalidUtf8)),
            (b"\xe6\x9d", Some(Reject::InvalidUtf8)),
            (b"{'id': 'x'}", Some(Reject::InvalidJson)),
            (b"<html><body>502 Bad Gateway</body></html>", Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":1,"region":"r","text":"t"}{"id":"2"}"#, Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":1,"region":"r","text":"t""#, Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":1,"region":"r","text":"t"#, Some(Reject::InvalidJson)),
            (b"{\"id\":\"1\",\"ts\":1,\"region\":\"r\",\"text\":\"\tt\"}", Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":1,"region":"r","text":"t",}"#, Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":NaN,"region":"r","text":"t"}"#, Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":01,"region":"r","text":"t"}"#, Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":1.,"region":"r","text":"t"}"#, Some(Reject::InvalidJson)),
            (br#"{"id":"\x","ts":1,"region":"r","text":"t"}"#, Some(Reject::InvalidJson)),
            (br#"{"id":"\u12","ts":1,"region":"r","text":"t"}"#, Some(Reject::InvalidJson)),
            (br#"{"id" "1"}"#, Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":1,"region":"r","text":"t","x":[1,]}"#, Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":1,"region":"r","text":"t","x":{"a"}}"#, Some(Reject::InvalidJson)),
            (br#"{"id":"1","ts":1,"region":"r","text":"t","x":tru}"#, Some(Reject::InvalidJson)),
            (deep.as_bytes(), Some(Reject::InvalidJson)),
            (deep_field.as_bytes(), Some(Reject::InvalidJson)),
            (ok_nested.as_bytes(), None),
            (b"{}", Some(Reject::MissingField)),
            (b"[]", Some(Reject::MissingField)),
            (b"42", Some(Reject::MissingField)),
            (b"null", Some(Reject::MissingField)),
            (br#""text""#, Some(Reject::MissingField)),
            (br#"[{"id":"x"}]"#, Some(Reject::MissingField)),
            (br#"{"ts":1,"region":"r","text":"t"}"#, Some(Reject::MissingField)),
            (br#"{"id":1,"ts":1,"region":"r","text":"t"}"#, Some(Reject::MissingField)),
            (br#"{"id":"1","ts":1,"region":574,"text":"t"}"#, Some(Reject::MissingField)),
            (br#"{"id":"1","ts":1,"region":"r","text":["t"]}"#, Some(Reject::MissingField)),
            (br#"{"id":"1","ts":1,"region":"r"}"#, Some(Reject::MissingField)),
            (br#"{"id":"1","region":"r","text":"t"}"#, Some(Reject::MissingField)),
            (br#"{"id":"1","ts":null,"region":"r","text":"t"}"#, Some(Reject::MissingField)),
            (br#"{"id":"1","ts":"undefined","region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":"20260315092741","region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":"2026-03-15 09:27:41","region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":"2026-03-15T09:27:41","region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":true,"region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":[2026,3,15],"region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":{"$date":1},"region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":1773538061000.0,"region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":1.7e12,"region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":99999999999999999999,"region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":9999999999999999,"region":"r","text":"t"}"#, Some(Reject::BadTs)),
            (br#"{"id":"1","ts":-5,"region":"r","text":"t"}"#, None),
            (br#" {"id":"1","ts":1,"region":"r","text":"t"} "#, None),
            (br#"{"id":"1","ts":1,"region":"r","text":"t","id":"2"}"#, None),
            (br#"{"id":"1","ts":1,"region":"r","text":"","x":[{},[],{"a":[1,-2.5e3,true,false,null]}]}"#, None),
            // Missing field wins over a bad ts; invalid JSON wins over both.
            (br#"{"id":"1","ts":"bad","text":"t"}"#, Some(Reject::MissingField)),
            (br#"{"ts":"bad","text":"t",}"#, Some(Reject::InvalidJson)),
        ];
        for (line, want) in cases {
            assert_eq!(reason(line), want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn very_deep_nesting_is_invalid_json_without_recursion() {
        let line = format!(
            "{{\"a\":{}1{}}}",
            "{\"a\":".repeat(100_000),
            "}".repeat(100_000)
        );
        assert_eq!(reason(line.as_bytes()), Some(Reject::InvalidJson));
        let line = "[".repeat(1_000_000);
        assert_eq!(reason(line.as_bytes()), Some(Reject::InvalidJson));
    }

    #[test]
    fn a_one_megabyte_text_is_valid() {
        let text = "很长的备注".repeat(70_000);
        let line = format!(r#"{{"id":"H1","ts":1,"region":"r","text":"{text}"}}"#);
        let mut d = Decoder::new();
        let Decoded::Record(r) = d.decode(line.as_bytes()) else {
            panic!()
        };
        assert_eq!(r.text.len(), text.len());
    }

    /// `unescape` of `raw` appended to `prefix`, checked: valid UTF-8 (read
    /// back from the bytes, not trusted from the type), the prefix kept,
    /// and no longer than the input.
    fn unescaped(prefix: &str, raw: &str) -> String {
        let mut out = String::from(prefix);
        unescape(raw, &mut out);
        assert!(std::str::from_utf8(out.as_bytes()).is_ok(), "{raw:?}");
        assert!(out.starts_with(prefix));
        assert!(out.len() - prefix.len() <= raw.len(), "{raw:?} -> {out:?}");
        out[prefix.len()..].to_owned()
    }

    #[test]
    fn unescape_at_the_ends_of_the_input() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            (r"\n", "\n"),
            (r#"\""#, "\""),
            (r"\\", "\\"),
            (r"a\/", "a/"),
            (r"\tb", "\tb"),
            (r"\u00e9", "é"),
            (r"x\u00E9", "xé"),
            (r"\u676d\u5dde", "杭州"),
            (r"\u0000", "\0"),
            (r"\uffff", "\u{FFFF}"),
            // Surrogate pairs: whole, at the start and at the end.
            (r"\ud83d\ude00", "😀"),
            (r"a\ud83d\ude00", "a😀"),
            (r"\ud83d\ude00b", "😀b"),
            (r"\uDBFF\uDFFF", "\u{10FFFF}"),
            (r"\ud800\udc00", "\u{10000}"),
            // Lone surrogates become U+FFFD, one each.
            (r"\ud83d", "\u{FFFD}"),
            (r"a\ud83d", "a\u{FFFD}"),
            (r"\ude00", "\u{FFFD}"),
            (r"\ude00\ud83d", "\u{FFFD}\u{FFFD}"),
            (r"\ud83d\u0041", "\u{FFFD}A"),
            (r"\ud83d\ud83d\ude00", "\u{FFFD}😀"),
            (r"\ude00\ude00", "\u{FFFD}\u{FFFD}"),
            (r"\ud83d\n", "\u{FFFD}\n"),
            (r"\ud83dx\ude00", "\u{FFFD}x\u{FFFD}"),
            // A high surrogate whose low half is cut off by the end.
            (r"\ud83d\ude0", "\u{FFFD}\\ude0"),
            (r"\ud83d\u", "\u{FFFD}\\u"),
            (r"\ud83d\", "\u{FFFD}\\"),
            // Multi-byte text around escapes.
            (r"杭\n州", "杭\n州"),
            (r"😀\u0041😀", "😀A😀"),
        ];
        for (raw, want) in cases {
            assert_eq!(unescaped("", raw), *want, "{raw}");
            assert_eq!(unescaped("前缀", raw), *want, "{raw} after a prefix");
        }
    }

    #[test]
    fn unescape_keeps_what_is_not_an_escape() {
        // The scanner refuses all of these; `unescape` must stay sound on
        // them anyway: a backslash that starts no escape is kept.
        let cases: &[(&str, &str)] = &[
            (r"\", "\\"),
            (r"ab\", "ab\\"),
            (r"\x", "\\x"),
            (r"\u", "\\u"),
            (r"\u1", "\\u1"),
            (r"\u12", "\\u12"),
            (r"\u123", "\\u123"),
            (r"a\u12", "a\\u12"),
            (r"\杭", "\\杭"),
            (r"\😀", "\\😀"),
            (r"\u杭州", "\\u杭州"),
            (r"\u00杭", "\\u00杭"),
            (r"\u0é", "\\u0é"),
            (r"\U0041", "\\U0041"),
        ];
        for (raw, want) in cases {
            assert_eq!(unescaped("", raw), *want, "{raw}");
        }
        // Four ASCII digits that are not all hex give some character, never
        // a surrogate or invalid UTF-8 (the scanner refuses them too).
        for raw in [
            r"\uGGGG",
            r"\u12G4",
            r"\u    ",
            r"\u~~~~",
            r"\u\\\\",
            r"\ud83d\uzzzz",
        ] {
            unescaped("", raw);
        }
    }

    proptest::proptest! {
        #[test]
        fn unescape_is_sound_on_any_text(raw in r#"(\\|u|[0-9a-fA-FdD]|"|/|n|x|é|杭|😀){0,40}"#) {
            let out = unescaped("", &raw);
            if !raw.contains('\\') {
                proptest::prop_assert_eq!(out, raw);
            }
        }

        #[test]
        fn unescape_inverts_json_escaping(text in r"\PC{0,30}|[\x00-\x1f\x7f\\/]{0,10}") {
            // serde_json's escapes (short forms, `\u00XX` for controls) ...
            let json = serde_json::to_string(&text).unwrap();
            proptest::prop_assert_eq!(unescaped("", &json[1..json.len() - 1]), text.clone());
            // ... and the app channel's: every non-ASCII character as
            // `\uXXXX`, surrogate pairs for the rest.
            let mut app = String::new();
            for unit in text.encode_utf16() {
                if unit < 0x80 && unit != u16::from(b'\\') && unit != u16::from(b'"') {
                    app.push(unit as u8 as char);
                } else {
                    app.push_str(&format!("\\u{unit:04x}"));
                }
            }
            proptest::prop_assert_eq!(unescaped("", &app), text);
        }

        #[test]
        fn hex4_is_the_value_of_four_hex_digits(v in 0u32..0x10000, upper in proptest::bool::ANY) {
            let digits = if upper { format!("{v:04X}") } else { format!("{v:04x}") };
            let b = digits.as_bytes();
            proptest::prop_assert_eq!(hex4(u32::from_be_bytes([b[0], b[1], b[2], b[3]])), v);
        }
    }

    #[test]
    fn escapes_at_the_ends_of_fields_and_lines() {
        let ok: &[(&str, &str)] = &[
            (r#""a\\""#, "a\\"),
            (r#""\"""#, "\""),
            (r#""\\""#, "\\"),
            (r#""\u00e9""#, "é"),
            (r#""x\ud83d\ude00""#, "x😀"),
            (r#""\ud83d""#, "\u{FFFD}"),
            (r#""\ude00\ud83d""#, "\u{FFFD}\u{FFFD}"),
            (r#""\ud83d\u0041""#, "\u{FFFD}A"),
            (r#""\ud83d\ud83d\ude00""#, "\u{FFFD}😀"),
            (r#""\n""#, "\n"),
        ];
        for (text, want) in ok {
            // The field last on the line, and first.
            for line in [
                format!(r#"{{"id":"1","ts":1,"region":"r","text":{text}}}"#),
                format!(r#"{{"text":{text},"id":"1","ts":1,"region":"r"}}"#),
            ] {
                let (mut d1, mut d2) = (Decoder::new(), Decoder::new());
                let Decoded::Record(r) = d1.decode(line.as_bytes()) else {
                    panic!("{line}")
                };
                assert_eq!(r.text, *want, "{line}");
                assert_eq!(d2.decode_bytewise(line.as_bytes()), Decoded::Record(r));
            }
        }
        let bad = [
            r#"{"id":"1","ts":1,"region":"r","text":"a\"#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\""#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\u"#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\u12"#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\u12"}"#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\u123"}"#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\u12G4"}"#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\u杭州"}"#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\x"}"#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\杭"}"#,
            r#"{"id":"1","ts":1,"region":"r","text":"a\U0041"}"#,
            r#"{"id":"1","ts":1,"region":"r","text":"\ud83d\"}"#,
            r#"{"id":"1","ts":1,"region":"r","text":"t","\u12":1}"#,
            r#"{"id":"1","ts":1,"region":"r","text":"t","\x":1}"#,
        ];
        for line in bad {
            assert_eq!(reason(line.as_bytes()), Some(Reject::InvalidJson), "{line}");
        }
    }

    proptest::proptest! {
        /// Lines full of escapes, with a few bytes inserted, removed or
        /// replaced (most often by the bytes escapes are made of): both
        /// scanners agree, and every field of an accepted line is what
        /// `serde_json` reads there. Run without `--release`, this also
        /// checks the `debug_assert!`s behind the unchecked code.
        #[test]
        fn mutated_escapes_decode_like_serde_json(
            edits in proptest::collection::vec(
                (
                    0usize..200,
                    proptest::sample::select(
                        b"\\\"u/ntbfr0123456789abcdefABCDEFdDxX{}[]:, \xe6\x9d\xad\xf0\x9f\x98\x80".to_vec(),
                    ),
                    0u8..3,
                ),
                1..5,
            )
        ) {
            let mut line = br#"{"id":"\u0041\"1","ts":1,"region":"\u676d\u5dde","text":"a\\b\n\ud83d\ude00\u00e9\/\tz","caller":"\u0031"}"#.to_vec();
            for (at, byte, op) in edits {
                let at = at % (line.len() + 1);
                match op {
                    0 => line.insert(at, byte),
                    1 if at < line.len() => {
                        line.remove(at);
                    }
                    _ if at < line.len() => line[at] = byte,
                    _ => {}
                }
            }
            let (mut d1, mut d2) = (Decoder::new(), Decoder::new());
            let decoded = d1.decode(&line);
            proptest::prop_assert_eq!(decoded, d2.decode_bytewise(&line));
            if let Decoded::Record(r) = decoded {
                // serde_json refuses lone surrogates (which the decoder
                // reads as U+FFFD); where it reads a line and a field, it
                // must read what the decoder read.
                let v: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
                for (name, got) in [("id", r.id), ("region", r.region), ("text", r.text)] {
                    if let Some(want) = v.get(name).and_then(|x| x.as_str()) {
                        proptest::prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }

    #[test]
    fn escaped_keys_name_their_fields() {
        let line =
            r#"{"\u0069d":"1","t\u0073":1,"regio\u006e":"r","\u0074ext":"t\u00e9","caller":"c"}"#;
        let mut d = Decoder::new();
        let Decoded::Record(r) = d.decode(line.as_bytes()) else {
            panic!()
        };
        assert_eq!((r.id, r.ts, r.region, r.text), ("1", 1, "r", "té"));
        assert_eq!(
            Decoder::new().decode_bytewise(line.as_bytes()),
            Decoded::Record(r)
        );
    }

    #[test]
    fn spans_read_back_as_the_decoded_record() {
        let lines = [
            OK.to_owned(),
            r#"{"id":"A\"1","ts":"2026-03-15T09:27:41+08:00","region":"\u676d\u5dde","text":"a\nb😀","caller":"\u0031","channel":"app"}"#.to_owned(),
            format!(r#"{{"id":"{}","ts":1,"region":"r","text":"末尾\ud83d\ude00"}}"#, "长".repeat(40)),
        ];
        for line in &lines {
            let mut reference = Decoder::new();
            let want = reference.decode(line.as_bytes());
            let mut d = Decoder::new();
            let DecodedSpans::Record(spans) = d.decode_spans(line.as_bytes()) else {
                panic!("{line}")
            };
            assert_eq!(Decoded::Record(d.record(&spans)), want, "{line}");
        }
    }
}
