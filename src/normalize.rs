//! Text normalisation before matching: Unicode NFKC, then ASCII lower-case
//! (CONTRACT 2). Keywords go through the same function when rules load, so
//! `ＧＰＲＳ`, `Gprs` and `gprs` all meet.
//!
//! Full NFKC is expensive (decomposition, reordering, composition with
//! tables), yet complaint text is overwhelmingly made of characters that
//! NFKC leaves alone or maps one-to-one: ASCII, CJK ideographs, the common
//! Chinese punctuation, and the full-width ASCII forms (`，` `：` `４Ｇ`) that
//! input methods produce. The fast path handles exactly those characters
//! with a byte loop; the first character outside that set sends the whole
//! text through the general algorithm instead, so the result is always
//! exactly NFKC + ASCII lower-case.
//!
//! Why this is sound: none of the fast-path characters take part in
//! canonical composition with each other (composition needs a combining mark,
//! a Hangul jamo or one of a few Indic vowel signs as its second part, and
//! none of those is on the fast path), so NFKC of a fast-path-only text is
//! the concatenation of each character's own mapping. The table test below
//! checks each fast-path mapping against `unicode-normalization`, and a
//! property test checks whole strings.

use unicode_normalization::UnicodeNormalization;

/// What the fast path does with one character.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fast {
    /// NFKC leaves it alone: copy its bytes.
    Keep,
    /// NFKC maps it to this ASCII byte (full-width forms, ideographic space).
    Ascii(u8),
    /// Needs the general algorithm.
    Slow,
}

/// Classifies a three-byte UTF-8 character (`U+0800..=U+FFFF`).
#[inline]
fn classify3(cp: u32) -> Fast {
    match cp {
        // CJK Unified Ideographs and Extension A, Yijing hexagram symbols.
        0x3400..=0x9FFF => Fast::Keep,
        // Full-width ASCII variants map to ASCII.
        0xFF01..=0xFF5E => Fast::Ascii((cp - 0xFF01 + 0x21) as u8),
        // Ideographic space.
        0x3000 => Fast::Ascii(b' '),
        // 、。 〈〉《》「」『』【】 〔〕〖〗〘〙〚〛 〜
        0x3001 | 0x3002 | 0x3008..=0x3011 | 0x3014..=0x301B | 0x301C => Fast::Keep,
        // ‐ – — ‘ ’ “ ” • ※ and the like.
        0x2010 | 0x2012..=0x2015 | 0x2018..=0x201F | 0x2020..=0x2022 | 0x2030 | 0x203B => {
            Fast::Keep
        }
        // Geometric shapes and arrows used as bullets: ← ↑ → ↓ ■ □ ▲ △ ● ○ ★ ☆
        0x2190..=0x2193 | 0x25A0 | 0x25A1 | 0x25B2 | 0x25B3 | 0x25CB | 0x25CF | 0x2605 | 0x2606 => {
            Fast::Keep
        }
        // Full-width yen/pound/cent and similar are not on the fast path.
        _ => Fast::Slow,
    }
}

/// What the fast path maps the character `cp` to, or `None` when the
/// character needs the general algorithm. The matcher folds this mapping
/// into its symbol table, so that text needing only the fast path is
/// matched without being copied ([`crate::matcher::Matcher::find_text`]);
/// it must stay exactly the per-character mapping of the fast path below
/// (a test checks every code point).
pub fn fast_fold(cp: u32) -> Option<u32> {
    if cp < 0x80 {
        return Some((cp as u8).to_ascii_lowercase() as u32);
    }
    if !(0x800..=0xFFFF).contains(&cp) {
        return None;
    }
    match classify3(cp) {
        Fast::Keep => Some(cp),
        Fast::Ascii(a) => Some(a.to_ascii_lowercase() as u32),
        Fast::Slow => None,
    }
}

/// A reusable normaliser: holds the output buffer so the steady state does
/// not allocate.
#[derive(Default, Debug)]
pub struct Normalizer {
    buf: String,
}

impl Normalizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Normalises `text` and returns the result, which borrows the
    /// normaliser's buffer until the next call.
    pub fn normalize<'s>(&'s mut self, text: &str) -> &'s str {
        if !fast_path(text, &mut self.buf) {
            self.buf.clear();
            slow_path(text, &mut self.buf);
        }
        &self.buf
    }
}

/// Normalises into a new string (for keywords and tests).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    if !fast_path(text, &mut out) {
        out.clear();
        slow_path(text, &mut out);
    }
    out
}

fn slow_path(text: &str, out: &mut String) {
    for c in text.nfkc() {
        out.push(c.to_ascii_lowercase());
    }
}

/// The byte loop. Returns `false` (with `out` partly written) on the first
/// character it cannot handle.
///
/// The output is never longer than the input (ASCII stays one byte, a kept
/// character keeps its bytes, a full-width form shrinks to one byte), so the
/// loop writes into capacity reserved up front instead of pushing byte by
/// byte.
#[inline]
fn fast_path(text: &str, out: &mut String) -> bool {
    let b = text.as_bytes();
    out.clear();
    out.reserve(b.len());
    // SAFETY: `as_mut_vec` lets us write bytes; we only write complete UTF-8
    // sequences copied from `text` (valid UTF-8) or ASCII bytes, and set the
    // length to exactly what was written.
    let v = unsafe { out.as_mut_vec() };
    let dst = v.spare_capacity_mut();
    let mut o = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            dst[o].write(c.to_ascii_lowercase());
            o += 1;
            i += 1;
            continue;
        }
        if c & 0xF0 == 0xE0 && i + 2 < b.len() {
            let cp = ((c as u32 & 0x0F) << 12)
                | ((b[i + 1] as u32 & 0x3F) << 6)
                | (b[i + 2] as u32 & 0x3F);
            match classify3(cp) {
                Fast::Keep => {
                    dst[o].write(c);
                    dst[o + 1].write(b[i + 1]);
                    dst[o + 2].write(b[i + 2]);
                    o += 3;
                }
                Fast::Ascii(a) => {
                    dst[o].write(a.to_ascii_lowercase());
                    o += 1;
                }
                Fast::Slow => return false,
            }
            i += 3;
            continue;
        }
        return false;
    }
    // SAFETY: bytes 0..o were written above.
    unsafe { v.set_len(o) };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> String {
        text.nfkc().map(|c| c.to_ascii_lowercase()).collect()
    }

    #[test]
    fn fast_path_table_agrees_with_nfkc() {
        for cp in 0x800u32..=0xFFFF {
            let Some(ch) = char::from_u32(cp) else {
                continue;
            };
            let s = ch.to_string();
            let mut out = String::new();
            if fast_path(&s, &mut out) {
                assert_eq!(out, reference(&s), "U+{cp:04X}");
            }
        }
        for cp in 0u32..0x80 {
            let s = (cp as u8 as char).to_string();
            let mut out = String::new();
            assert!(fast_path(&s, &mut out));
            assert_eq!(out, reference(&s));
        }
    }

    #[test]
    fn fast_fold_is_the_fast_path_per_character() {
        for cp in 0u32..0x11000 {
            let Some(ch) = char::from_u32(cp) else {
                continue;
            };
            let mut out = String::new();
            let fast = fast_path(&ch.to_string(), &mut out);
            match fast_fold(cp) {
                Some(f) => {
                    assert!(fast, "U+{cp:04X}");
                    assert_eq!(out, char::from_u32(f).unwrap().to_string(), "U+{cp:04X}");
                }
                None => assert!(!fast, "U+{cp:04X}"),
            }
        }
    }

    #[test]
    fn normalisation_table() {
        let cases: &[(&str, &str)] = &[
            ("彩铃复制失败", "彩铃复制失败"),
            ("ＧＰＲＳ连接失败", "gprs连接失败"),
            ("４Ｇ信号差，要求回电：１５７", "4g信号差,要求回电:157"),
            ("VoLTE高清通话", "volte高清通话"),
            ("Gprs异常", "gprs异常"),
            ("ｅＳＩＭ", "esim"),
            ("139邮箱⽹页打不开", "139邮箱网页打不开"), // Kangxi radical ⽹ → 网
            ("①号", "1号"),
            ("ｶﾀｶﾅ", "カタカナ"),
            ("Ａ\u{3000}Ｂ", "a b"),
            ("É", "É"), // only ASCII is lower-cased
            ("e\u{301}", "é"),
            ("…", "..."),
            ("😡客户", "😡客户"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), *want, "{input}");
            assert_eq!(reference(input), *want, "reference for {input}");
            let mut n = Normalizer::new();
            assert_eq!(n.normalize(input), *want);
        }
    }

    proptest::proptest! {
        #[test]
        fn equals_reference_on_mixed_text(s in "[a-zA-Z0-9 ，。：！（）ＡＢＣａｂｃ０１２３彩铃信号\u{3000}⽹\u{301}ｶﾞé…①、《》—“”]{0,40}") {
            proptest::prop_assert_eq!(normalize(&s), reference(&s));
        }

        #[test]
        fn equals_reference_on_any_text(s in "\\PC{0,30}") {
            proptest::prop_assert_eq!(normalize(&s), reference(&s));
        }
    }
}
