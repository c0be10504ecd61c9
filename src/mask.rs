//! Personal data masking (CONTRACT 5.12): phone and ID-card numbers never
//! leave hotspot in clear — not in alert samples, dead letters or logs.
//!
//! * An 11-digit mainland mobile number (first digit `1`, ASCII or
//!   full-width digits, an optional space or hyphen after the 3rd and the 7th
//!   digit) keeps its first three and last four digits; the middle becomes
//!   `****` and the separators go with it: `188-6943-9335` → `188****9335`.
//!   A `86` country prefix written directly before the number is kept.
//! * An 18-character ID-card number (17 digits and a digit or `X`) keeps its
//!   six-digit area code and four last characters; the eight birth-date
//!   digits become `********`.
//!
//! A number is only recognised as a whole: a run of digits that is longer
//! than a phone or ID number (an order number, say) is left alone, which is
//! what a reader expects and what keeps `4G` or `139邮箱` intact.
//!
//! Alert samples are masked once, when a complaint is kept as a possible
//! sample ([`mask_cut_into`], writing into the sample's reused buffer), so
//! that window state — and the checkpoints it is saved in — never holds a
//! number in clear. Dead letters and log lines are masked when written.

use std::borrow::Cow;

#[inline]
fn digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

#[inline]
fn is_one(c: char) -> bool {
    c == '1' || c == '１'
}

/// If a mobile number starts at `s[0]`, its length in chars (separators
/// included) and the index of its last four digits. The boundary after it is
/// checked by the caller.
fn phone_at(s: &[char]) -> Option<(usize, usize)> {
    if !s.first().copied().is_some_and(is_one) {
        return None;
    }
    let all_digits = |from: usize, n: usize| {
        s.get(from..from + n)
            .is_some_and(|d| d.iter().all(|&c| digit(c)))
    };
    let sep = |at: usize| matches!(s.get(at), Some(' ' | '-'));
    if !all_digits(0, 3) {
        return None;
    }
    let mut i = 3;
    if sep(i) {
        i += 1;
    }
    if !all_digits(i, 4) {
        return None;
    }
    i += 4;
    if sep(i) {
        i += 1;
    }
    if !all_digits(i, 4) {
        return None;
    }
    Some((i + 4, i))
}

/// Characters a number looks at from its first digit: an ID card and the
/// character after it (19), or `86`, a phone with both separators and the
/// character after it (16).
const LOOK: usize = 19;

/// Whether the character starting with byte `x` (followed by `y`, `z`) is
/// a digit: ASCII, or full-width (`EF BC 90..=99` in UTF-8). Branch-free,
/// so that a loop over a block of bytes is vectorised.
#[inline(always)]
fn digit_bytes(x: u8, y: u8, z: u8) -> bool {
    (x.wrapping_sub(b'0') < 10) | ((x == 0xEF) & (y == 0xBC) & (z.wrapping_sub(0x90) < 10))
}

/// Whether a digit starts at byte `j` of `b` (a char boundary).
#[inline]
fn digit_at(b: &[u8], j: usize) -> bool {
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    digit_bytes(b[j], at(j + 1), at(j + 2))
}

/// Bytes [`next_digit`] tests at once.
const BLOCK: usize = 32;

/// The first `k` in `skip..BLOCK` at which a digit starts in `x`. The
/// tests run as one vectorised pass writing a flag byte each; the flags are
/// then read eight at a time.
#[inline(always)]
fn first_digit_in(x: &[u8; BLOCK + 2], skip: usize) -> Option<usize> {
    let mut flags = [0u8; BLOCK];
    for k in 0..BLOCK {
        flags[k] = digit_bytes(x[k], x[k + 1], x[k + 2]) as u8;
    }
    flags[..skip.min(BLOCK)].fill(0);
    flags.chunks_exact(8).enumerate().find_map(|(w, f)| {
        let v = u64::from_le_bytes(f.try_into().expect("8 bytes"));
        (v != 0).then(|| w * 8 + v.trailing_zeros() as usize / 8)
    })
}

/// The byte index of the first digit at or after `from` (a char
/// boundary; so is the answer: only a lead byte matches), [`BLOCK`] bytes
/// at a time; the last ones in a block that ends with the text (or, in a
/// text shorter than a block, one by one).
#[inline]
fn next_digit(b: &[u8], from: usize) -> Option<usize> {
    let window =
        |i: usize| -> &[u8; BLOCK + 2] { b[i..i + BLOCK + 2].try_into().expect("BLOCK + 2 bytes") };
    let mut i = from;
    while i + BLOCK + 2 <= b.len() {
        if let Some(k) = first_digit_in(window(i), 0) {
            return Some(i + k);
        }
        i += BLOCK;
    }
    if i >= b.len() {
        return None;
    }
    if b.len() >= BLOCK + 2 {
        // The last block, overlapping what was tested or is before
        // `from`: only its part from `i` on counts.
        let last = b.len() - (BLOCK + 2);
        if let Some(k) = first_digit_in(window(last), i - last) {
            return Some(last + k);
        }
        i = i.max(last + BLOCK);
    }
    (i..b.len()).find(|&j| digit_at(b, j))
}

/// The digits of the run that starts at byte `p`, and the byte after it.
#[inline]
fn run_at(b: &[u8], p: usize) -> (usize, usize) {
    let (mut j, mut n) = (p, 0);
    while j < b.len() {
        if b[j].is_ascii_digit() {
            j += 1;
        } else if digit_at(b, j) {
            j += 3;
        } else {
            break;
        }
        n += 1;
    }
    (n, j)
}

/// Appends `text` to `out` with its phone and ID-card numbers masked;
/// returns whether any was. Text is copied in whole stretches; only at the
/// start of a run of 3 to 18 digits are the next [`LOOK`] characters
/// decoded, into a fixed array. Every run is met at its start: a masked
/// number, and a run passed over, end before a non-digit.
fn mask_into(text: &str, out: &mut String) -> bool {
    let b = text.as_bytes();
    let mut changed = false;
    // `text[copied..]` is still to be appended.
    let mut copied = 0;
    let mut from = 0;
    while let Some(p) = next_digit(b, from) {
        // A number starts with at least three digits in a row (a phone's
        // first three, `86` and a phone's first, an ID card's first 17),
        // and none continues a run of more than 18. Any other run stays as
        // it is, so that no number is found inside a longer one; nearly
        // every run (times, counts, `4G`) is passed over here.
        let (digits, end) = run_at(b, p);
        if !(3..=18).contains(&digits) {
            from = end;
            continue;
        }
        // The usual numbers, written in ASCII without separators, are
        // recognised from the run alone: what the general case below
        // decides for them, without decoding characters.
        if end - p == digits {
            let id_x = digits == 17
                && matches!(b.get(end), Some(b'X' | b'x'))
                && !(end + 1 < b.len() && digit_at(b, end + 1));
            if digits == 11 && b[p] == b'1' {
                out.push_str(&text[copied..p + 3]);
                out.push_str("****");
                copied = p + 7;
                from = end;
                changed = true;
                continue;
            }
            if digits == 18 || id_x {
                out.push_str(&text[copied..p + 6]);
                out.push_str("********");
                copied = p + 14;
                from = p + 18;
                changed = true;
                continue;
            }
        }
        let rest = &text[p..];
        let mut chars = ['\0'; LOOK];
        let mut offs = [rest.len(); LOOK + 1];
        let mut n = 0;
        for (off, c) in rest.char_indices().take(LOOK) {
            chars[n] = c;
            offs[n] = off;
            n += 1;
        }
        let look = &chars[..n];
        let ends_at = |len: usize| !look.get(len).copied().is_some_and(digit);
        let at = |k: usize| p + offs[k];
        // ID card: 17 digits and a digit or X, standing alone.
        if n >= 18
            && look[..17].iter().all(|&c| digit(c))
            && (digit(look[17]) || look[17] == 'X' || look[17] == 'x')
            && ends_at(18)
        {
            out.push_str(&text[copied..at(6)]);
            out.push_str("********");
            out.push_str(&text[at(14)..at(18)]);
            copied = at(18);
            from = copied;
            changed = true;
            continue;
        }
        // Mobile number, with or without a directly written 86 prefix.
        let prefix = if n >= 13
            && matches!(look[0], '8' | '８')
            && matches!(look[1], '6' | '６')
            && phone_at(&look[2..]).is_some_and(|(len, _)| ends_at(2 + len))
        {
            2
        } else {
            0
        };
        if let Some((len, last)) = phone_at(&look[prefix..]) {
            if ends_at(prefix + len) {
                out.push_str(&text[copied..at(prefix + 3)]);
                out.push_str("****");
                out.push_str(&text[at(prefix + last)..at(prefix + last + 4)]);
                copied = at(prefix + len);
                from = copied;
                changed = true;
                continue;
            }
        }
        from = end;
    }
    out.push_str(&text[copied..]);
    changed
}

/// Whether `text` has at least 11 digits, the fewest a number to mask has.
#[inline]
fn may_hold_a_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    for _ in 0..11 {
        match next_digit(b, from) {
            Some(p) => from = p + 1,
            None => return false,
        }
    }
    true
}

/// Masks phone and ID-card numbers in `text` (see the module docs).
/// Returns the text unchanged, without copying, when it has none.
pub fn mask(text: &str) -> Cow<'_, str> {
    if !may_hold_a_number(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    if mask_into(text, &mut out) {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Appends `text`, masked and then cut to at most `max_chars` characters,
/// to `out`: what [`mask_and_cut`] returns, without allocating when `out`
/// has room. This is how an alert sample is kept.
pub(crate) fn mask_cut_into(text: &str, max_chars: usize, out: &mut String) {
    let start = out.len();
    mask_into(text, out);
    // Fewer bytes than `max_chars` are fewer characters too; else count the
    // characters (their first bytes, in one vectorised pass) before looking
    // for where to cut.
    let added = &out.as_bytes()[start..];
    if added.len() > max_chars && added.iter().filter(|&&c| (c as i8) >= -0x40).count() > max_chars
    {
        if let Some((at, _)) = out[start..].char_indices().nth(max_chars) {
            out.truncate(start + at);
        }
    }
}

/// Masks `text`, then cuts it to at most `max_chars` characters.
pub fn mask_and_cut(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    mask_cut_into(text, max_chars, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_table() {
        let cases: &[(&str, &str)] = &[
            ("回访号码：15942834747。", "回访号码：159****4747。"),
            ("联系电话188-6943-9335。", "联系电话188****9335。"),
            ("电话138 1234 5678", "电话138****5678"),
            ("电话138-12345678", "电话138****5678"),
            ("电话1381234-5678", "电话138****5678"),
            (
                "号码：１５７０１０５６５０５。",
                "号码：１５７****６５０５。",
            ),
            ("mixed １5７0105６505", "mixed １5７****６505"),
            ("13812345678", "138****5678"),
            ("a13812345678b", "a138****5678b"),
            ("+8613812345678", "+86138****5678"),
            ("8613812345678", "86138****5678"),
            (
                "两个13812345678和13987654321",
                "两个138****5678和139****4321",
            ),
            // ID cards: area code and the last four stay.
            (
                "身份证号330103200309159552，",
                "身份证号330103********9552，",
            ),
            ("身份证33010619800101123X", "身份证330106********123X"),
            ("身份证33010619800101123x。", "身份证330106********123x。"),
            (
                "ＩＤ３３０１０６１９８００１０１１２３４",
                "ＩＤ３３０１０６********１２３４",
            ),
            // Not numbers to mask.
            ("23812345678", "23812345678"),
            ("138123456789", "138123456789"),
            ("1381234567", "1381234567"),
            (
                "订单号 2026031500000123456789",
                "订单号 2026031500000123456789",
            ),
            ("139邮箱打不开，4G信号差", "139邮箱打不开，4G信号差"),
            ("138--1234-5678", "138--1234-5678"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(mask(input), *want, "{input}");
        }
    }

    #[test]
    fn unchanged_text_is_borrowed() {
        assert!(matches!(mask("客户反映彩铃复制失败"), Cow::Borrowed(_)));
        assert!(matches!(
            mask("订单号 2026031500000123456789"),
            Cow::Borrowed(_)
        ));
    }

    /// The masking this module did before it wrote into a buffer: the
    /// whole text as a `Vec<char>`, every run of digits looked at from its
    /// start. [`mask`] must agree with it on every text.
    fn reference(text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !(digit(c) && (i == 0 || !digit(chars[i - 1]))) {
                out.push(c);
                i += 1;
                continue;
            }
            let rest = &chars[i..];
            let ends_at = |len: usize| !rest.get(len).copied().is_some_and(digit);
            if rest.len() >= 18
                && rest[..17].iter().all(|&c| digit(c))
                && (digit(rest[17]) || rest[17] == 'X' || rest[17] == 'x')
                && ends_at(18)
            {
                out.extend(&rest[..6]);
                out.push_str("********");
                out.extend(&rest[14..18]);
                i += 18;
                continue;
            }
            let prefix = if rest.len() >= 13
                && matches!(rest[0], '8' | '８')
                && matches!(rest[1], '6' | '６')
                && phone_at(&rest[2..]).is_some_and(|(len, _)| ends_at(2 + len))
            {
                2
            } else {
                0
            };
            if let Some((len, last)) = phone_at(&rest[prefix..]) {
                if ends_at(prefix + len) {
                    let p = &rest[prefix..];
                    out.extend(&rest[..prefix]);
                    out.extend(&p[..3]);
                    out.push_str("****");
                    out.extend(&p[last..last + 4]);
                    i += prefix + len;
                    continue;
                }
            }
            while i < chars.len() && digit(chars[i]) {
                out.push(chars[i]);
                i += 1;
            }
        }
        out
    }

    proptest::proptest! {
        /// Texts made of the characters that matter (digits of both
        /// widths, separators, `X`, `8` and `6`, CJK): the buffer-writing
        /// masker equals the reference, cutting after masking equals
        /// cutting its result, and masking twice changes nothing more.
        #[test]
        fn mask_equals_the_reference(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "1", "3", "8", "6", "0", "9", "１", "８", "６", "５", " ", "-", "X", "x",
                    "号", "码", "a", "13812345678", "330106198001011234", "+86",
                ]),
                0..60,
            ),
            cut in 0usize..80,
        ) {
            let text: String = parts.concat();
            let want = reference(&text);
            proptest::prop_assert_eq!(mask(&text).into_owned(), want.clone());
            let cut_want: String = want.chars().take(cut).collect();
            proptest::prop_assert_eq!(mask_and_cut(&text, cut), cut_want.clone());
            let mut out = String::from("kept:");
            mask_cut_into(&text, cut, &mut out);
            proptest::prop_assert_eq!(out, format!("kept:{cut_want}"));
            proptest::prop_assert_eq!(mask(&want).into_owned(), want);
        }
    }

    #[test]
    fn cut_counts_characters_after_masking() {
        let text = format!("{}13812345678", "字".repeat(290));
        let cut = mask_and_cut(&text, 300);
        assert_eq!(cut.chars().count(), 300);
        assert!(cut.ends_with("138****567"), "{cut}");
        assert_eq!(mask_and_cut("短", 300), "短");
    }
}
