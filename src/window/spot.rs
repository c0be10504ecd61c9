//! Where in a city: the neighbourhood a complaint names, for the place
//! test of a surge (`surge = { …, place = K }`).
//!
//! A cell site, an OLT or a street cabinet serves a few streets, and the
//! customers of a failed one say where they live: `岱山县丽都花园小区`,
//! `西夏区新华小区`, `定海区东湖路`. A city key sees every neighbourhood's
//! complaints together, so an outage in a small city (six callers where the
//! city usually has one) is lost in the city's count; but six callers naming
//! one neighbourhood within half an hour almost never happens by chance.
//! This is the space-time scan statistic's idea (Kulldorff) at the finest
//! zone the records carry, without a gazetteer: the zone is read from the
//! text.
//!
//! The grammar is the one of Chinese addresses in work orders: a county or
//! district (two characters and `区`, `县`, or `市` for a county-level
//! city; the innermost one of `舟山市岱山县`), then one to five characters
//! and a place word ([`PLACE_WORDS`]: `小区`, `花园`, `路`, `村`, `中学`,
//! `医院`, `附近` …), the shortest such. `小区`, `社区`, `超市` and the like
//! are not counties. Only the first such place counts.

/// The place words that end a neighbourhood, tried in this order at each
/// length (so `丽都花园小区` gives `丽都花园`).
const PLACE_WORDS: [&str; 21] = [
    "小区", "花园", "苑", "公寓", "大厦", "广场", "村", "路", "街", "城", "园", "社区", "大道",
    "中学", "小学", "学校", "大学", "医院", "市场", "车站", "附近",
];

/// Whether `c` is the first character of one of [`PLACE_WORDS`].
fn starts_place_word(c: char) -> bool {
    matches!(
        c,
        '小' | '花'
            | '苑'
            | '公'
            | '大'
            | '广'
            | '村'
            | '路'
            | '街'
            | '城'
            | '园'
            | '社'
            | '中'
            | '学'
            | '医'
            | '市'
            | '车'
            | '附'
    )
}

/// Characters before `区`/`县` that make it a common word, not a county.
const NOT_COUNTY: [char; 9] = ['小', '社', '市', '城', '地', '景', '园', '郊', '街'];

/// Characters before `市` that make it a common word, not a county-level
/// city (`超市`, `城市`, `门市` …).
const NOT_CITY: [char; 8] = ['超', '城', '门', '夜', '上', '股', '菜', '都'];

/// Whether `c` marks a county: `区`, `县`, or a county-level city's `市`.
fn is_marker(c: char) -> bool {
    matches!(c, '区' | '县' | '市')
}

/// Whether `c1 c2 marker` names a county (`岱山县`), not a common word
/// (`小区`, `超市`).
fn is_county(c1: char, c2: char, marker: char) -> bool {
    let not = if marker == '市' {
        &NOT_CITY[..]
    } else {
        &NOT_COUNTY[..]
    };
    is_marker(marker) && is_cjk(c1) && is_cjk(c2) && !not.contains(&c2)
}

/// The most characters between the county and the place word.
const MAX_NAME: usize = 5;

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// The first neighbourhood `text` names (`岱山县丽都花园`), as a slice of
/// it, or `None`.
pub fn spot_in(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    // 区 is E5 8C BA, 县 E5 8E BF and 市 E5 B8 82 in UTF-8: look for
    // their last byte (rarer in Chinese text than their lead byte E5).
    let mut from = 0;
    while let Some(k) = memchr::memchr3(0xBA, 0xBF, 0x82, &bytes[from..]) {
        let end = from + k + 1;
        from = end;
        if end < 3 {
            continue;
        }
        let at = end - 3;
        let Some(marker) = text.get(at..end).and_then(|m| m.chars().next()) else {
            continue;
        };
        if !is_marker(marker) {
            continue;
        }
        // Two CJK characters before it.
        let mut before = text[..at].chars().rev();
        let (Some(c2), Some(c1)) = (before.next(), before.next()) else {
            continue;
        };
        if !is_county(c1, c2, marker) {
            continue;
        }
        let start = at - c1.len_utf8() - c2.len_utf8();
        let rest = &text[end..];
        let mut name_end = 0;
        let (mut p1, mut p2) = (c2, marker);
        for c in rest.chars().take(MAX_NAME) {
            // `舟山市岱山县…`: the county inside the city is the one to use,
            // the next round starts at it (`园区大道` is a name).
            if !is_cjk(c) || is_county(p1, p2, c) {
                break;
            }
            (p1, p2) = (p2, c);
            name_end += c.len_utf8();
            let tail = &rest[name_end..];
            // Most characters start no place word: one match first.
            if !tail.chars().next().is_some_and(starts_place_word) {
                continue;
            }
            if let Some(w) = PLACE_WORDS.iter().find(|w| tail.starts_with(**w)) {
                return Some(&text[start..end + name_end + w.len()]);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbourhoods_are_read_from_addresses() {
        let cases = [
            (
                "客户投诉称岱山县丽都花园小区从17点左右开始突然打不出电话",
                Some("岱山县丽都花园"),
            ),
            (
                "在线客服转单：客户称舟山市岱山县丽都花园小区１７点多开始电话打不进来",
                Some("岱山县丽都花园"),
            ),
            ("客户反映定海区东湖路今天下午IPTV花屏", Some("定海区东湖路")),
            // A county-level city.
            (
                "客户来电称龙泉市城南新村从１５点左右开始基站退服",
                Some("龙泉市城南新村"),
            ),
            ("客户反映超市门口路灯坏了", None),
            (
                "客户表示江山市园区大道11点多开始附近基站坏了",
                Some("江山市园区大道"),
            ),
            (
                "衢州市龙游县第二中学附近今天上午光猫亮红灯",
                Some("龙游县第二中学"),
            ),
            (
                "用户来电表示西夏区新华小区从16点23分起魔百和认证失败",
                Some("西夏区新华小区"),
            ),
            // 小区 is not a county; no place word within reach.
            ("客户反映小区停电，要求尽快处理", None),
            ("客户来电咨询话费余额", None),
            ("", None),
            ("区", None),
            ("普陀区", None),
            (
                "客户来电反映嵊州市人民路今天上午4G信号差",
                Some("嵊州市人民路"),
            ),
            // The byte 县 ends with, inside another character (信 is E4 BF A1).
            ("今天上午4G信号差，时有时无", None),
        ];
        for (text, want) in cases {
            assert_eq!(spot_in(text), want, "{text}");
        }
    }

    #[test]
    fn every_place_word_passes_the_first_character_filter() {
        for w in PLACE_WORDS {
            assert!(starts_place_word(w.chars().next().unwrap()), "{w}");
        }
    }

    proptest::proptest! {
        /// Any text: no panic, and the place is a slice of it.
        #[test]
        fn any_text_is_safe(text in "[区县小花园路a-z0-9岱山丽都新华信号人民，]{0,40}") {
            if let Some(s) = spot_in(&text) {
                proptest::prop_assert!(text.contains(s));
                proptest::prop_assert!(s.chars().count() >= 4);
            }
        }
    }
}
