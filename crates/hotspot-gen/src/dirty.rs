//! Bad lines, as real feeds produce them: broken encodings, broken JSON,
//! records missing fields or carrying the wrong types, timestamps in every
//! wrong format — and, rarely, a valid record with a 1 MB text.
//!
//! Each kind knows the reject reason the contract gives it (5.10, checked
//! in the order `invalid_utf8`, `invalid_json`, `missing_field`, `bad_ts`),
//! so the truth can say exactly how many of each a detector must count. A
//! unit test runs every kind through the real decoder.
//!
//! Kinds are dealt from a shuffled deck rather than drawn independently, so
//! even a few hundred bad lines contain every kind; the 100,000-deep
//! nesting is one card in the deck, and every thousandth bad line is a
//! 1 MB record instead (both are large, so they are rare).
//!
//! Left out on purpose: `"ts": null`. The contract does not settle it
//! (`missing_field` speaks of absent fields, `bad_ts` of values that are
//! neither RFC 3339 nor integers), and the decoder calls it
//! `missing_field`; a generator that guessed would make the truth guess too.
//!
//! Dirty lines come from their own random stream and their own id range
//! (`...9xxxxxxx`), and the 1 MB records carry the current watermark as
//! their time: a dirty file is its clean twin plus extra lines, and a
//! detector must give both the same alerts.

use rand::Rng;
use rand::seq::SliceRandom;

use super::channel::Channel;
use super::line::{
    CallerField, Line, OMIT_ID, OMIT_REGION, OMIT_TEXT, OMIT_TS, Overrides, TsFmt, write_line,
};
use super::regions::REGIONS;
use hotspot_core::record::Reject;

/// What a detector must do with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Reject(Reject),
    Blank,
    /// A valid record.
    Valid,
}

macro_rules! kinds {
    ($($name:ident => $expect:expr, $weight:expr;)*) => {
        /// A kind of dirty line.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Kind { $($name),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$name),*];

            /// What the contract makes of it.
            pub fn expect(self) -> Expect {
                match self { $(Kind::$name => $expect),* }
            }

            /// Cards in the deck.
            fn weight(self) -> usize {
                match self { $(Kind::$name => $weight),* }
            }
        }
    };
}

use Expect::{Blank, Reject as R, Valid};

kinds! {
    Latin1Byte => R(Reject::InvalidUtf8), 8;
    GbkText => R(Reject::InvalidUtf8), 8;
    CutMidChar => R(Reject::InvalidUtf8), 6;
    Overlong => R(Reject::InvalidUtf8), 4;
    EncodedSurrogate => R(Reject::InvalidUtf8), 3;
    SingleQuotes => R(Reject::InvalidJson), 8;
    HtmlPage => R(Reject::InvalidJson), 7;
    Truncated => R(Reject::InvalidJson), 12;
    TwoRecords => R(Reject::InvalidJson), 8;
    RawTab => R(Reject::InvalidJson), 6;
    DeepNesting => R(Reject::InvalidJson), 1;
    TrailingComma => R(Reject::InvalidJson), 5;
    UnquotedKey => R(Reject::InvalidJson), 5;
    NanValue => R(Reject::InvalidJson), 4;
    EmptyObject => R(Reject::MissingField), 4;
    EmptyArray => R(Reject::MissingField), 3;
    BareNumber => R(Reject::MissingField), 3;
    BareNull => R(Reject::MissingField), 2;
    BareString => R(Reject::MissingField), 2;
    IdNumber => R(Reject::MissingField), 6;
    IdNull => R(Reject::MissingField), 3;
    TextArray => R(Reject::MissingField), 5;
    TextObject => R(Reject::MissingField), 3;
    RegionNumber => R(Reject::MissingField), 5;
    NoId => R(Reject::MissingField), 4;
    NoTs => R(Reject::MissingField), 5;
    NoRegion => R(Reject::MissingField), 5;
    NoText => R(Reject::MissingField), 5;
    TsUndefined => R(Reject::BadTs), 5;
    TsFeb30 => R(Reject::BadTs), 5;
    TsSpace => R(Reject::BadTs), 6;
    TsDigits => R(Reject::BadTs), 5;
    TsEpochString => R(Reject::BadTs), 4;
    TsTrue => R(Reject::BadTs), 3;
    TsFalse => R(Reject::BadTs), 2;
    TsArray => R(Reject::BadTs), 4;
    TsObject => R(Reject::BadTs), 3;
    TsFloat => R(Reject::BadTs), 5;
    TsExponent => R(Reject::BadTs), 2;
    TsNoOffset => R(Reject::BadTs), 5;
    TsOffsetNoColon => R(Reject::BadTs), 4;
    TsEmpty => R(Reject::BadTs), 3;
    TsHour24 => R(Reject::BadTs), 3;
    TsSlashes => R(Reject::BadTs), 3;
    TsChinese => R(Reject::BadTs), 3;
    BlankLine => Blank, 4;
    Huge => Valid, 0;
}

/// Deals kinds from shuffled decks; every thousandth card is [`Kind::Huge`].
#[derive(Debug)]
pub struct Dealer {
    deck: Vec<Kind>,
    next: usize,
    dealt: u64,
}

impl Default for Dealer {
    fn default() -> Self {
        let deck = Kind::ALL
            .iter()
            .flat_map(|&k| std::iter::repeat_n(k, k.weight()))
            .collect();
        Dealer {
            deck,
            next: usize::MAX,
            dealt: 0,
        }
    }
}

impl Dealer {
    pub fn deal(&mut self, rng: &mut impl Rng) -> Kind {
        self.dealt += 1;
        if self.dealt % 1000 == 0 {
            return Kind::Huge;
        }
        if self.next >= self.deck.len() {
            self.deck.shuffle(rng);
            self.next = 0;
        }
        self.next += 1;
        self.deck[self.next - 1]
    }
}

const TEXTS: &[&str] = &[
    "客户来电反映彩铃复制失败，要求尽快处理。",
    "用户称宽带断网，影响正常工作，回访号码：18869439335。",
    "客户投诉称话费异常，要求退还费用。",
    "客户来电咨询话费余额。",
    "客户反映手机没有信号，身份证号330106198309268935。",
];

/// GBK bytes of "客户反映信号差" and "彩铃复制失败".
const GBK: &[&[u8]] = &[
    b"\xbf\xcd\xbb\xa7\xb7\xb4\xd3\xb3\xd0\xc5\xba\xc5\xb2\xee",
    b"\xb2\xca\xc1\xe5\xb8\xb4\xd6\xc6\xca\xa7\xb0\xdc",
];

const HTML: &[&str] = &[
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
    "<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1><p>请稍后再试</p></body></html>",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><error><code>500</code><message>Internal Server Error</message></error>",
];

/// A record-shaped line to spoil.
struct Base<'a> {
    ts: i64,
    seq: u32,
    region: &'a str,
    text: &'a str,
    caller: [u8; 11],
}

fn base<'a>(rng: &mut impl Rng, ts: i64, seq: u32) -> Base<'a> {
    Base {
        ts,
        seq,
        region: REGIONS[rng.random_range(0..REGIONS.len())].name,
        text: TEXTS[rng.random_range(0..TEXTS.len())],
        caller: super::callers::phone(rng),
    }
}

fn write(out: &mut Vec<u8>, b: &Base<'_>, ov: Overrides<'_>) {
    let caller = std::str::from_utf8(&b.caller).unwrap_or("");
    write_line(
        out,
        &Line {
            channel: Channel::Hotline,
            seq: b.seq,
            ts: b.ts - b.ts % 1000,
            ts_fmt: TsFmt::Cst { millis: false },
            region: b.region,
            text: b.text,
            caller: CallerField::Str(caller),
            label: None,
            extra: 1,
            ov,
        },
    );
}

/// The byte offset just after `"text": "` in a line we wrote.
fn text_start(out: &[u8]) -> usize {
    memchr::memmem::find(out, b"\"text\": \"").map_or(out.len() / 2, |i| i + 9)
}

/// Writes a dirty line of `kind` (not [`Kind::Huge`]; see [`write_huge`])
/// into `out` (cleared first). `ts` is roughly when it arrives; `seq` its
/// id number.
pub fn write_dirty(out: &mut Vec<u8>, rng: &mut impl Rng, kind: Kind, ts: i64, seq: u32) {
    out.clear();
    let b = base(rng, ts, seq);
    let ov = |f: &dyn Fn(&mut Overrides<'static>)| {
        let mut o = Overrides::default();
        f(&mut o);
        o
    };
    let mut local = Vec::new();
    let mut ts_text = |millis_fmt: &dyn Fn(&[u8]) -> String| -> String {
        local.clear();
        super::line::push_rfc3339(&mut local, b.ts - b.ts % 1000, false, false);
        millis_fmt(&local)
    };
    match kind {
        Kind::Latin1Byte | Kind::Overlong | Kind::EncodedSurrogate => {
            write(out, &b, Overrides::default());
            let at = text_start(out);
            let bad: &[u8] = match kind {
                Kind::Latin1Byte => b"caf\xe9 ",
                Kind::Overlong => b"\xc0\xaf",
                _ => b"\xed\xa0\x80",
            };
            out.splice(at..at, bad.iter().copied());
        }
        Kind::GbkText => {
            write(out, &b, Overrides::default());
            let at = text_start(out);
            let end = at + memchr::memchr(b'"', &out[at..]).unwrap_or(0);
            out.splice(at..end, GBK[rng.random_range(0..GBK.len())].iter().copied());
        }
        Kind::CutMidChar => {
            write(out, &b, Overrides::default());
            let at = text_start(out);
            // The second byte of the text's first (three-byte) character.
            out.truncate(at + 1 + rng.random_range(0..2));
        }
        Kind::SingleQuotes => {
            write(out, &b, Overrides::default());
            out.iter_mut()
                .filter(|c| **c == b'"')
                .for_each(|c| *c = b'\'');
        }
        Kind::HtmlPage => out.extend_from_slice(HTML[rng.random_range(0..HTML.len())].as_bytes()),
        Kind::Truncated => {
            write(out, &b, Overrides::default());
            let s = String::from_utf8_lossy(out).into_owned();
            let bounds: Vec<usize> = s
                .char_indices()
                .map(|(i, _)| i)
                .filter(|&i| i > 0)
                .collect();
            let cut = bounds[rng.random_range(0..bounds.len())];
            out.truncate(cut);
        }
        Kind::TwoRecords => {
            write(out, &b, Overrides::default());
            if rng.random_bool(0.5) {
                out.push(b' ');
            }
            let b2 = base(rng, ts, seq.wrapping_add(1));
            write(out, &b2, Overrides::default());
        }
        Kind::RawTab => write(
            out,
            &b,
            ov(&|o| o.text = Some("\"客户反映\t彩铃复制失败\"")),
        ),
        Kind::DeepNesting => {
            write(out, &b, Overrides::default());
            out.pop();
            out.extend_from_slice(b", \"meta\": ");
            out.extend(std::iter::repeat_n(b'[', 100_000));
            out.extend(std::iter::repeat_n(b']', 100_000));
            out.push(b'}');
        }
        Kind::TrailingComma => {
            write(out, &b, Overrides::default());
            out.pop();
            out.extend_from_slice(b",}");
        }
        Kind::UnquotedKey => {
            write(out, &b, Overrides::default());
            out.splice(1..5, b"id".iter().copied());
        }
        Kind::NanValue => {
            write(out, &b, Overrides::default());
            out.pop();
            out.extend_from_slice(b", \"score\": NaN}");
        }
        Kind::EmptyObject => out.extend_from_slice(b"{}"),
        Kind::EmptyArray => out.extend_from_slice(b"[]"),
        Kind::BareNumber => out.extend_from_slice(b"42"),
        Kind::BareNull => out.extend_from_slice(b"null"),
        Kind::BareString => out.extend_from_slice("\"客户投诉\"".as_bytes()),
        Kind::IdNumber => write(out, &b, ov(&|o| o.id = Some("20260315000123"))),
        Kind::IdNull => write(out, &b, ov(&|o| o.id = Some("null"))),
        Kind::TextArray => write(
            out,
            &b,
            ov(&|o| o.text = Some("[\"客户反映\", \"彩铃复制失败\"]")),
        ),
        Kind::TextObject => write(
            out,
            &b,
            ov(&|o| o.text = Some("{\"content\": \"宽带断网\"}")),
        ),
        Kind::RegionNumber => write(out, &b, ov(&|o| o.region = Some("330100"))),
        Kind::NoId => write(out, &b, ov(&|o| o.omit = OMIT_ID)),
        Kind::NoTs => write(out, &b, ov(&|o| o.omit = OMIT_TS)),
        Kind::NoRegion => write(out, &b, ov(&|o| o.omit = OMIT_REGION)),
        Kind::NoText => write(out, &b, ov(&|o| o.omit = OMIT_TEXT)),
        Kind::TsUndefined => write(out, &b, ov(&|o| o.ts = Some("\"undefined\""))),
        Kind::TsFeb30 => write(
            out,
            &b,
            ov(&|o| o.ts = Some("\"2026-02-30T10:00:00+08:00\"")),
        ),
        Kind::TsTrue => write(out, &b, ov(&|o| o.ts = Some("true"))),
        Kind::TsFalse => write(out, &b, ov(&|o| o.ts = Some("false"))),
        Kind::TsArray => write(out, &b, ov(&|o| o.ts = Some("[2026, 3, 15]"))),
        Kind::TsEmpty => write(out, &b, ov(&|o| o.ts = Some("\"\""))),
        Kind::TsHour24 => write(
            out,
            &b,
            ov(&|o| o.ts = Some("\"2026-03-15T24:10:00+08:00\"")),
        ),
        Kind::TsChinese => write(out, &b, ov(&|o| o.ts = Some("\"2026年3月15日 09:27\""))),
        Kind::TsSpace
        | Kind::TsDigits
        | Kind::TsNoOffset
        | Kind::TsOffsetNoColon
        | Kind::TsSlashes => {
            // Spoil the record's own time: "2026-03-15T09:27:41+08:00".
            let raw = ts_text(&|t| {
                let s = String::from_utf8_lossy(t).into_owned();
                let (date, rest) = s.split_at(10);
                let time = &rest[1..9];
                match kind {
                    Kind::TsSpace => format!("\"{date} {time}\""),
                    Kind::TsDigits => {
                        format!("\"{}{}\"", date.replace('-', ""), time.replace(':', ""))
                    }
                    Kind::TsNoOffset => format!("\"{date}T{time}\""),
                    Kind::TsOffsetNoColon => format!("\"{date}T{time}+0800\""),
                    _ => format!("\"{} {time}\"", date.replace('-', "/")),
                }
            });
            write(
                out,
                &b,
                Overrides {
                    ts: Some(&raw),
                    ..Overrides::default()
                },
            );
        }
        Kind::TsEpochString | Kind::TsFloat | Kind::TsExponent | Kind::TsObject => {
            let ms = b.ts;
            let raw = match kind {
                Kind::TsEpochString => format!("\"{ms}\""),
                Kind::TsFloat => format!("{ms}.0"),
                Kind::TsExponent => format!("{}e12", ms as f64 / 1e12),
                _ => format!("{{\"$date\": {ms}}}"),
            };
            write(
                out,
                &b,
                Overrides {
                    ts: Some(&raw),
                    ..Overrides::default()
                },
            );
        }
        Kind::BlankLine => {
            if rng.random_bool(0.5) {
                out.extend_from_slice(b"   ");
            }
        }
        Kind::Huge => write_huge(out, rng, ts, seq),
    }
}

/// The filler of 1 MB texts: an agent pasting a whole chat log. Matches no
/// template.
const HUGE_FILLER: &str = "客户反复陈述情况，坐席已逐条记录并多次解释，客户仍要求继续记录。";

/// Writes a valid record of time `ts` whose text is just over 1 MiB.
pub fn write_huge(out: &mut Vec<u8>, rng: &mut impl Rng, ts: i64, seq: u32) {
    out.clear();
    let mut text = String::with_capacity(1 << 20 | 4096);
    text.push_str("客户来电，聊天记录如下：");
    while text.len() <= 1 << 20 {
        text.push_str(HUGE_FILLER);
    }
    let b = base(rng, ts, seq);
    let caller = std::str::from_utf8(&b.caller).unwrap_or("");
    write_line(
        out,
        &Line {
            channel: Channel::Hotline,
            seq,
            ts,
            ts_fmt: TsFmt::Cst { millis: true },
            region: b.region,
            text: &text,
            caller: CallerField::Str(caller),
            label: None,
            extra: 1,
            ov: Overrides::default(),
        },
    );
}

/// The text of [`write_huge`]'s records, for tests.
pub fn huge_filler() -> &'static str {
    HUGE_FILLER
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotspot_core::record::{Decoded, Decoder};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn outcome(line: &[u8]) -> Expect {
        match Decoder::new().decode(line) {
            Decoded::Blank => Expect::Blank,
            Decoded::Record(_) => Expect::Valid,
            Decoded::Rejected(r) => Expect::Reject(r.reason),
        }
    }

    #[test]
    fn every_kind_gets_its_reason_from_the_decoder() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut out = Vec::new();
        for _ in 0..20 {
            for &k in Kind::ALL {
                write_dirty(&mut out, &mut rng, k, 1_773_537_461_239, 90_000_001);
                assert_eq!(
                    outcome(&out),
                    k.expect(),
                    "{k:?}: {}",
                    String::from_utf8_lossy(&out[..out.len().min(300)])
                );
                assert!(!out.contains(&b'\n'), "{k:?}");
            }
        }
        write_huge(&mut out, &mut rng, 1_773_537_461_239, 1);
        assert!(out.len() > 1 << 20);
    }

    #[test]
    fn a_deck_holds_every_kind() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut d = Dealer::default();
        let n = d.deck.len();
        let mut seen: Vec<Kind> = (0..n).map(|_| d.deal(&mut rng)).collect();
        seen.sort_by_key(|k| *k as usize);
        seen.dedup();
        assert_eq!(seen.len(), Kind::ALL.len() - 1);
        let huge = (n as u64..3000)
            .filter(|_| d.deal(&mut rng) == Kind::Huge)
            .count();
        assert_eq!(huge, 3);
    }
}
