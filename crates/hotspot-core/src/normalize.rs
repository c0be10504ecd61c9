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

// Every `unsafe` block says why it is sound (CI runs clippy with
// `-D warnings`).
#![warn(clippy::undocumented_unsafe_blocks)]

use unicode_normalization::UnicodeNormalization;

/// What the fast path does with one character.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fast {
    /// NFKC leaves it alone: copy its bytes.
    Keep,
    /// NFKC maps it to this ASCII byte (full-width forms, ideographic space).
    Ascii(u8),
    /// NFKC maps it to this one character of the same UTF-8 length (Kangxi
    /// radicals, which some input methods produce for the ideograph).
    Map(char),
    /// Needs the general algorithm.
    Slow,
}

/// NFKC of the Kangxi radicals U+2F00..=U+2FD5: each is one CJK unified
/// ideograph (`⽤` → `用`); a test checks every entry against
/// `unicode-normalization`.
const KANGXI: [u16; 214] = [
    0x4E00, 0x4E28, 0x4E36, 0x4E3F, 0x4E59, 0x4E85, 0x4E8C, 0x4EA0, 0x4EBA, 0x513F, 0x5165, 0x516B,
    0x5182, 0x5196, 0x51AB, 0x51E0, 0x51F5, 0x5200, 0x529B, 0x52F9, 0x5315, 0x531A, 0x5338, 0x5341,
    0x535C, 0x5369, 0x5382, 0x53B6, 0x53C8, 0x53E3, 0x56D7, 0x571F, 0x58EB, 0x5902, 0x590A, 0x5915,
    0x5927, 0x5973, 0x5B50, 0x5B80, 0x5BF8, 0x5C0F, 0x5C22, 0x5C38, 0x5C6E, 0x5C71, 0x5DDB, 0x5DE5,
    0x5DF1, 0x5DFE, 0x5E72, 0x5E7A, 0x5E7F, 0x5EF4, 0x5EFE, 0x5F0B, 0x5F13, 0x5F50, 0x5F61, 0x5F73,
    0x5FC3, 0x6208, 0x6236, 0x624B, 0x652F, 0x6534, 0x6587, 0x6597, 0x65A4, 0x65B9, 0x65E0, 0x65E5,
    0x66F0, 0x6708, 0x6728, 0x6B20, 0x6B62, 0x6B79, 0x6BB3, 0x6BCB, 0x6BD4, 0x6BDB, 0x6C0F, 0x6C14,
    0x6C34, 0x706B, 0x722A, 0x7236, 0x723B, 0x723F, 0x7247, 0x7259, 0x725B, 0x72AC, 0x7384, 0x7389,
    0x74DC, 0x74E6, 0x7518, 0x751F, 0x7528, 0x7530, 0x758B, 0x7592, 0x7676, 0x767D, 0x76AE, 0x76BF,
    0x76EE, 0x77DB, 0x77E2, 0x77F3, 0x793A, 0x79B8, 0x79BE, 0x7A74, 0x7ACB, 0x7AF9, 0x7C73, 0x7CF8,
    0x7F36, 0x7F51, 0x7F8A, 0x7FBD, 0x8001, 0x800C, 0x8012, 0x8033, 0x807F, 0x8089, 0x81E3, 0x81EA,
    0x81F3, 0x81FC, 0x820C, 0x821B, 0x821F, 0x826E, 0x8272, 0x8278, 0x864D, 0x866B, 0x8840, 0x884C,
    0x8863, 0x897E, 0x898B, 0x89D2, 0x8A00, 0x8C37, 0x8C46, 0x8C55, 0x8C78, 0x8C9D, 0x8D64, 0x8D70,
    0x8DB3, 0x8EAB, 0x8ECA, 0x8F9B, 0x8FB0, 0x8FB5, 0x9091, 0x9149, 0x91C6, 0x91CC, 0x91D1, 0x9577,
    0x9580, 0x961C, 0x96B6, 0x96B9, 0x96E8, 0x9751, 0x975E, 0x9762, 0x9769, 0x97CB, 0x97ED, 0x97F3,
    0x9801, 0x98A8, 0x98DB, 0x98DF, 0x9996, 0x9999, 0x99AC, 0x9AA8, 0x9AD8, 0x9ADF, 0x9B25, 0x9B2F,
    0x9B32, 0x9B3C, 0x9B5A, 0x9CE5, 0x9E75, 0x9E7F, 0x9EA5, 0x9EBB, 0x9EC3, 0x9ECD, 0x9ED1, 0x9EF9,
    0x9EFD, 0x9F0E, 0x9F13, 0x9F20, 0x9F3B, 0x9F4A, 0x9F52, 0x9F8D, 0x9F9C, 0x9FA0,
];

/// Classifies a three-byte UTF-8 character (`U+0800..=U+FFFF`).
#[inline]
fn classify3(cp: u32) -> Fast {
    match cp {
        // Kangxi radicals: one-to-one onto ideographs.
        0x2F00..=0x2FD5 => match char::from_u32(KANGXI[(cp - 0x2F00) as usize] as u32) {
            Some(c) => Fast::Map(c),
            None => Fast::Slow,
        },
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

/// Whether NFKC leaves the four-byte character `cp` alone and the fast
/// path keeps it: the emoji blocks (complaints typed on phones carry 😡 and
/// 🙏) and CJK Extension B. None of these decomposes or composes with
/// anything; a test checks every code point of the ranges.
#[inline]
pub(crate) fn keeps_astral(cp: u32) -> bool {
    matches!(
        cp,
        0x1F300..=0x1F5FF // Miscellaneous Symbols and Pictographs
            | 0x1F600..=0x1F64F // Emoticons
            | 0x1F680..=0x1F6FF // Transport and Map Symbols
            | 0x1F900..=0x1F9FF // Supplemental Symbols and Pictographs
            | 0x1FA70..=0x1FAFF // Symbols and Pictographs Extended-A
            | 0x20000..=0x2A6DF // CJK Unified Ideographs Extension B
    )
}

/// What the fast path maps the character `cp` to, or `None` when the
/// character needs the general algorithm. The matcher folds this mapping
/// into its symbol table, so that text needing only the fast path is
/// matched without being copied ([`crate::matcher::Matcher::find_text`]);
/// it must stay exactly the per-character mapping of the fast path below
/// (a test checks every code point).
pub(crate) fn fast_fold(cp: u32) -> Option<u32> {
    if cp < 0x80 {
        return Some((cp as u8).to_ascii_lowercase() as u32);
    }
    if cp >= 0x10000 {
        return keeps_astral(cp).then_some(cp);
    }
    if cp < 0x800 {
        return None;
    }
    match classify3(cp) {
        Fast::Keep => Some(cp),
        Fast::Ascii(a) => Some(a.to_ascii_lowercase() as u32),
        Fast::Map(c) => Some(c as u32),
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

/// The byte loop. Returns `false` (with `out` empty) on the first character
/// it cannot handle.
///
/// The output is never longer than the input (ASCII stays one byte, a kept
/// character keeps its bytes, a full-width form shrinks to one byte, a
/// Kangxi radical and its ideograph are three bytes each), so the loop
/// writes into capacity reserved up front instead of pushing byte by byte.
///
/// What it writes is valid UTF-8 whatever `text` holds: ASCII bytes, whole
/// characters copied from `text` (a `str`, and the loop starts at 0 and
/// moves by whole characters, so `b[i]` is always a lead byte and the bytes
/// copied with it its continuation bytes), and the UTF-8 of a `char`.
#[inline]
fn fast_path(text: &str, out: &mut String) -> bool {
    let b = text.as_bytes();
    out.clear();
    out.reserve(b.len());
    // SAFETY: the bytes this function writes are valid UTF-8 (see above),
    // and they become part of `out` only through the `set_len` at the end;
    // on a `return false` or a panic before it, `out` stays empty.
    let v = unsafe { out.as_mut_vec() };
    // Room for `b.len()` bytes, checked once here (`reserve` made it);
    // every write below is a checked index into it, and the output never
    // passes the input (`o <= i`), so none fails.
    let dst = &mut v.spare_capacity_mut()[..b.len()];
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
                Fast::Map(m) => {
                    // Three bytes for three: Kangxi radicals and their
                    // ideographs are both in U+0800..=U+FFFF.
                    let mut buf = [0u8; 4];
                    for &x in m.encode_utf8(&mut buf).as_bytes() {
                        dst[o].write(x);
                        o += 1;
                    }
                }
                Fast::Slow => return false,
            }
            i += 3;
            continue;
        }
        if c & 0xF8 == 0xF0 && i + 3 < b.len() {
            let cp = ((c as u32 & 0x07) << 18)
                | ((b[i + 1] as u32 & 0x3F) << 12)
                | ((b[i + 2] as u32 & 0x3F) << 6)
                | (b[i + 3] as u32 & 0x3F);
            if !keeps_astral(cp) {
                return false;
            }
            for k in 0..4 {
                dst[o + k].write(b[i + k]);
            }
            o += 4;
            i += 4;
            continue;
        }
        return false;
    }
    debug_assert!(o <= b.len());
    // SAFETY: `out` was empty, and `dst[..o]`, its first `o` bytes, were
    // written above (each write a checked index into the spare capacity,
    // so `o` is within it); they are valid UTF-8 (see the doc comment).
    unsafe { v.set_len(o) };
    debug_assert!(std::str::from_utf8(v).is_ok());
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
        for cp in (0x800u32..=0xFFFF).chain(0x10000..=0x2FFFF) {
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
        for cp in 0u32..0x30000 {
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
            ("⽤户🙏彩铃", "用户🙏彩铃"),
            ("𠀀字", "𠀀字"),
            ("🈶", "有"), // an enclosed ideograph: not kept, NFKC maps it
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), *want, "{input}");
            assert_eq!(reference(input), *want, "reference for {input}");
            let mut n = Normalizer::new();
            assert_eq!(n.normalize(input), *want);
        }
    }

    #[test]
    fn fast_path_at_the_end_of_the_text() {
        // The last character of each length, and the fast path's refusal
        // (which leaves its output empty, whatever it held).
        let cases: &[(&str, Option<&str>)] = &[
            ("A", Some("a")),
            ("彩铃", Some("彩铃")),
            ("彩Ｇ", Some("彩g")),
            ("彩⽹", Some("彩网")),
            ("彩😡", Some("彩😡")),
            ("😡", Some("😡")),
            ("a𠀀", Some("a𠀀")),
            ("a\u{3000}", Some("a ")),
            ("彩é", None),
            ("彩🈶", None),
            ("彩\u{10FFFF}", None),
            ("①", None),
        ];
        for (text, want) in cases {
            let mut out = String::from("left over");
            let fast = fast_path(text, &mut out);
            assert_eq!(fast.then_some(out.as_str()), *want, "{text}");
            if !fast {
                assert!(out.is_empty(), "{text}");
            }
            assert_eq!(normalize(text), reference(text), "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_path_writes_valid_utf8_or_nothing(s in proptest::prelude::any::<String>()) {
            let mut out = String::from("left over");
            if fast_path(&s, &mut out) {
                proptest::prop_assert!(std::str::from_utf8(out.as_bytes()).is_ok());
                proptest::prop_assert!(out.len() <= s.len());
                proptest::prop_assert_eq!(out, reference(&s));
            } else {
                proptest::prop_assert!(out.is_empty());
            }
        }

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
