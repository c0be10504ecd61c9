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
//! Masking is off the per-record hot path: it runs when an alert is built,
//! a dead letter is written or a log line carries text.

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

/// Masks phone and ID-card numbers in `text` (see the module docs).
/// Returns the text unchanged, without copying, when it has none.
pub fn mask(text: &str) -> Cow<'_, str> {
    // Fast exit: a text with fewer than 11 digits holds no number to mask.
    let mut count = 0;
    for c in text.chars() {
        if digit(c) {
            count += 1;
            if count >= 11 {
                break;
            }
        }
    }
    if count < 11 {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_run = digit(c) && (i == 0 || !digit(chars[i - 1]));
        if !starts_run {
            out.push(c);
            i += 1;
            continue;
        }
        let rest = &chars[i..];
        let ends_at = |len: usize| !rest.get(len).copied().is_some_and(digit);
        // ID card: 17 digits and a digit or X, standing alone.
        if rest.len() >= 18
            && rest[..17].iter().all(|&c| digit(c))
            && (digit(rest[17]) || rest[17] == 'X' || rest[17] == 'x')
            && ends_at(18)
        {
            out.extend(&rest[..6]);
            out.push_str("********");
            out.extend(&rest[14..18]);
            i += 18;
            changed = true;
            continue;
        }
        // Mobile number, with or without a directly written 86 prefix.
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
                changed = true;
                continue;
            }
        }
        // Any other run of digits is copied whole, so that no number is
        // found inside a longer one.
        while i < chars.len() && digit(chars[i]) {
            out.push(chars[i]);
            i += 1;
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Masks `text`, then cuts it to at most `max_chars` characters.
pub fn mask_and_cut(text: &str, max_chars: usize) -> String {
    let masked = mask(text);
    match masked.char_indices().nth(max_chars) {
        Some((at, _)) => masked[..at].to_owned(),
        None => masked.into_owned(),
    }
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

    #[test]
    fn cut_counts_characters_after_masking() {
        let text = format!("{}13812345678", "字".repeat(290));
        let cut = mask_and_cut(&text, 300);
        assert_eq!(cut.chars().count(), 300);
        assert!(cut.ends_with("138****567"), "{cut}");
        assert_eq!(mask_and_cut("短", 300), "短");
    }
}
