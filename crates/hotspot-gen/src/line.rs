//! Writing one complaint record as a JSON line, the way each upstream
//! system writes it.
//!
//! The systems behind the channels do not agree on JSON style, and real
//! feeds show it: the hotline writes Python-style `", "` separators with
//! agent fields, the web portal writes compact JSON with `channel` first,
//! the app escapes every non-ASCII character as `\uXXXX` (surrogate pairs
//! for emoji) and sends epoch-millisecond integers or UTC `Z` times plus a
//! `meta` object, stores and the SMS gateway write their own variants.
//! Hotspot must read them all the same.
//!
//! Lines are written straight into a reused byte buffer, numbers through
//! `itoa` and timestamps by hand, so a line costs no allocation.
//! [`Overrides`] replace or drop single fields: that is how [`super::dirty`]
//! writes records with a bad `ts` or a missing `region`.

use super::channel::Channel;
use hotspot_core::time::{CST_OFFSET_MS, civil_from_days};

/// How `ts` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsFmt {
    /// `2026-03-15T09:27:41+08:00`, optionally with `.239`.
    Cst { millis: bool },
    /// `2026-03-15T01:27:41Z`, optionally with `.239`.
    Utc { millis: bool },
    /// `1773537461239`.
    Epoch,
}

impl TsFmt {
    /// Whether the written form keeps milliseconds (otherwise the event
    /// time must be whole seconds, or the truth would disagree with what
    /// a reader parses).
    pub fn keeps_millis(self) -> bool {
        !matches!(
            self,
            TsFmt::Cst { millis: false } | TsFmt::Utc { millis: false }
        )
    }
}

/// How the system behind `channel` writes `ts`: the hotline and stores in
/// local time (some with milliseconds, a few hotline exports in UTC), the
/// app mostly as epoch milliseconds.
pub fn pick_ts_fmt(rng: &mut impl rand::Rng, channel: Channel) -> TsFmt {
    let u: u32 = rng.random_range(0..100);
    match channel {
        Channel::Hotline if u < 68 => TsFmt::Cst { millis: false },
        Channel::Hotline if u < 98 => TsFmt::Cst { millis: true },
        Channel::Hotline => TsFmt::Utc { millis: true },
        Channel::Web if u < 55 => TsFmt::Cst { millis: false },
        Channel::Web if u < 95 => TsFmt::Cst { millis: true },
        Channel::Web => TsFmt::Utc { millis: true },
        Channel::App if u < 75 => TsFmt::Epoch,
        Channel::App => TsFmt::Utc { millis: true },
        Channel::Store if u < 90 => TsFmt::Cst { millis: false },
        Channel::Store => TsFmt::Cst { millis: true },
        Channel::Sms if u < 85 => TsFmt::Cst { millis: false },
        Channel::Sms => TsFmt::Utc { millis: false },
    }
}

/// The `caller` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerField<'a> {
    Str(&'a str),
    Absent,
    Null,
}

/// Replacements for dirty lines: a raw JSON value instead of a field, or
/// the field left out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides<'a> {
    pub id: Option<&'a str>,
    pub ts: Option<&'a str>,
    pub region: Option<&'a str>,
    pub text: Option<&'a str>,
    /// Bit mask of [`OMIT_ID`], [`OMIT_TS`], [`OMIT_REGION`], [`OMIT_TEXT`].
    pub omit: u8,
}

pub const OMIT_ID: u8 = 1;
pub const OMIT_TS: u8 = 2;
pub const OMIT_REGION: u8 = 4;
pub const OMIT_TEXT: u8 = 8;

/// One record to write.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub channel: Channel,
    /// The per-day work-order number (the id's last eight digits).
    pub seq: u32,
    pub ts: i64,
    pub ts_fmt: TsFmt,
    pub region: &'a str,
    pub text: &'a str,
    pub caller: CallerField<'a>,
    /// The category the agent picked, if any.
    pub label: Option<&'a str>,
    /// Small random numbers for the systems' own fields (agent number,
    /// priority, app OS and version).
    pub extra: u32,
    pub ov: Overrides<'a>,
}

const PRIORITIES: [&str; 3] = ["普通", "紧急", "一般"];
const OSES: [&str; 3] = ["Android", "iOS", "HarmonyOS"];
const VERSIONS: [&str; 4] = ["9.3.1", "10.0.2", "11.1.0", "11.2.3"];
const SOURCES: [&str; 3] = ["网上营业厅", "在线客服", "微信公众号"];

struct Obj<'o> {
    out: &'o mut Vec<u8>,
    compact: bool,
    ascii: bool,
    first: bool,
}

impl Obj<'_> {
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out
                .extend_from_slice(if self.compact { b"," } else { b", " });
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out
            .extend_from_slice(if self.compact { b"\":" } else { b"\": " });
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        push_json_str(self.out, v, self.ascii);
    }

    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.extend_from_slice(v.as_bytes());
    }
}

/// Appends `s` as a JSON string; with `ascii`, every non-ASCII character
/// as `\uXXXX` (a surrogate pair beyond the BMP).
pub fn push_json_str(out: &mut Vec<u8>, s: &str, ascii: bool) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            c if (c as u32) < 0x20 || (ascii && !c.is_ascii()) => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + c.len_utf8();
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    push_u_escape(out, *u);
                }
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn push_u_escape(out: &mut Vec<u8>, u: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((u >> shift) & 0xF) as usize]);
    }
}

fn push_digits(out: &mut Vec<u8>, v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = v;
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// The local (CST) calendar date of `ms` as `yyyymmdd`.
pub fn cst_date(ms: i64) -> u32 {
    let (y, m, d) = civil_from_days((ms + CST_OFFSET_MS).div_euclid(86_400_000));
    (y as u32) * 10_000 + m * 100 + d
}

/// Appends `ms` in RFC 3339, in CST (`+08:00`) or UTC (`Z`).
pub fn push_rfc3339(out: &mut Vec<u8>, ms: i64, utc: bool, millis: bool) {
    let local = if utc { ms } else { ms + CST_OFFSET_MS };
    let (y, m, d) = civil_from_days(local.div_euclid(86_400_000));
    let in_day = local.rem_euclid(86_400_000);
    let secs = (in_day / 1000) as u32;
    push_digits(out, y as u32, 4);
    out.push(b'-');
    push_digits(out, m, 2);
    out.push(b'-');
    push_digits(out, d, 2);
    out.push(b'T');
    push_digits(out, secs / 3600, 2);
    out.push(b':');
    push_digits(out, secs / 60 % 60, 2);
    out.push(b':');
    push_digits(out, secs % 60, 2);
    if millis {
        out.push(b'.');
        push_digits(out, (in_day % 1000) as u32, 3);
    }
    out.extend_from_slice(if utc { b"Z" } else { b"+08:00" });
}

fn push_ts(out: &mut Vec<u8>, ms: i64, fmt: TsFmt) {
    match fmt {
        TsFmt::Cst { millis } => {
            out.push(b'"');
            push_rfc3339(out, ms, false, millis);
            out.push(b'"');
        }
        TsFmt::Utc { millis } => {
            out.push(b'"');
            push_rfc3339(out, ms, true, millis);
            out.push(b'"');
        }
        TsFmt::Epoch => out.extend_from_slice(itoa::Buffer::new().format(ms).as_bytes()),
    }
}

/// Appends the work-order id: channel prefix, local date, eight digits.
pub fn push_id(out: &mut Vec<u8>, channel: Channel, ts: i64, seq: u32) {
    out.extend_from_slice(channel.prefix().as_bytes());
    push_digits(out, cst_date(ts), 8);
    push_digits(out, seq, 8);
}

/// Appends `line` as one JSON object (no newline).
pub fn write_line(out: &mut Vec<u8>, line: &Line<'_>) {
    let ch = line.channel;
    let compact = matches!(ch, Channel::Web | Channel::Store);
    let ascii = ch == Channel::App;
    out.push(b'{');
    let mut o = Obj {
        out,
        compact,
        ascii,
        first: true,
    };
    let ov = &line.ov;
    if ch == Channel::Web {
        o.str("channel", "web");
    }
    if ov.omit & OMIT_ID == 0 {
        match ov.id {
            Some(raw) => o.raw("id", raw),
            None => {
                o.key("id");
                o.out.push(b'"');
                push_id(o.out, ch, line.ts, line.seq);
                o.out.push(b'"');
            }
        }
    }
    if ov.omit & OMIT_TS == 0 {
        match ov.ts {
            Some(raw) => o.raw("ts", raw),
            None => {
                o.key("ts");
                push_ts(o.out, line.ts, line.ts_fmt);
            }
        }
    }
    if ov.omit & OMIT_REGION == 0 {
        match ov.region {
            Some(raw) => o.raw("region", raw),
            None => o.str("region", line.region),
        }
    }
    // The web portal writes the caller before the text.
    let caller = |o: &mut Obj<'_>| match line.caller {
        CallerField::Str(c) => o.str("caller", c),
        CallerField::Null => o.raw("caller", "null"),
        CallerField::Absent => {}
    };
    if ch == Channel::Web {
        caller(&mut o);
    }
    if ov.omit & OMIT_TEXT == 0 {
        match ov.text {
            Some(raw) => o.raw("text", raw),
            None => o.str("text", line.text),
        }
    }
    if ch != Channel::Web {
        caller(&mut o);
    }
    let x = line.extra;
    match ch {
        Channel::Hotline => {
            // A few old hotline records carry no channel at all.
            if x % 16 != 0 {
                o.str("channel", "10086");
            }
            if let Some(l) = line.label {
                o.str("business", l);
            }
            o.key("agent");
            o.out.push(b'"');
            o.out.push(b'A');
            push_digits(o.out, x / 16 % 2400, 4);
            o.out.push(b'"');
            if x / 40_000 % 3 == 0 {
                o.str("priority", PRIORITIES[(x / 120_000 % 3) as usize]);
            }
        }
        Channel::Web => o.str("source", SOURCES[(x % 3) as usize]),
        Channel::App => {
            o.str("channel", "app");
            o.key("meta");
            let (os, ver) = (OSES[(x % 3) as usize], VERSIONS[(x / 3 % 4) as usize]);
            o.out.extend_from_slice(b"{\"os\": \"");
            o.out.extend_from_slice(os.as_bytes());
            o.out.extend_from_slice(b"\", \"ver\": \"");
            o.out.extend_from_slice(ver.as_bytes());
            o.out.extend_from_slice(b"\"}");
        }
        Channel::Store => {
            o.str("channel", "store");
            if let Some(l) = line.label {
                o.str("business", l);
            }
        }
        Channel::Sms => o.str("channel", "sms"),
    }
    o.out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotspot_core::record::{Decoded, Decoder};

    fn line(channel: Channel, fmt: TsFmt, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_line(
            &mut out,
            &Line {
                channel,
                seq: 42,
                ts: 1_773_537_461_239,
                ts_fmt: fmt,
                region: "杭州",
                text,
                caller: CallerField::Str("18869439335"),
                label: Some("彩铃"),
                extra: 123_457,
                ov: Overrides::default(),
            },
        );
        out
    }

    #[test]
    fn every_channel_style_decodes_to_the_same_record() {
        let text = "客户反映\"彩铃\"复制失败😡\n备注：已安抚";
        for (ch, fmt, want_ts) in [
            (
                Channel::Hotline,
                TsFmt::Cst { millis: true },
                1_773_537_461_239,
            ),
            (
                Channel::Web,
                TsFmt::Cst { millis: false },
                1_773_537_461_000,
            ),
            (Channel::App, TsFmt::Epoch, 1_773_537_461_239),
            (Channel::App, TsFmt::Utc { millis: true }, 1_773_537_461_239),
            (
                Channel::Store,
                TsFmt::Utc { millis: false },
                1_773_537_461_000,
            ),
            (
                Channel::Sms,
                TsFmt::Cst { millis: false },
                1_773_537_461_000,
            ),
        ] {
            let l = line(ch, fmt, text);
            if ch == Channel::App {
                assert!(l.is_ascii(), "{}", String::from_utf8_lossy(&l));
            }
            let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
            assert_eq!(v["text"], text);
            let mut d = Decoder::new();
            let Decoded::Record(r) = d.decode(&l) else {
                panic!("{}", String::from_utf8_lossy(&l))
            };
            assert_eq!(
                (r.ts, r.region, r.text, r.caller),
                (want_ts, "杭州", text, Some("18869439335"))
            );
            assert_eq!(r.id, format!("{}2026031500000042", ch.prefix()));
        }
        assert_eq!(
            String::from_utf8(line(Channel::Sms, TsFmt::Cst { millis: true }, "x")).unwrap(),
            r#"{"id": "SM2026031500000042", "ts": "2026-03-15T09:17:41.239+08:00", "region": "杭州", "text": "x", "caller": "18869439335", "channel": "sms"}"#
        );
    }

    #[test]
    fn dates_roll_over_at_local_midnight() {
        // 2026-03-14T16:00:00Z is midnight in CST.
        let midnight = 1_773_504_000_000;
        assert_eq!(cst_date(midnight - 1), 20260314);
        assert_eq!(cst_date(midnight), 20260315);
        let mut s = Vec::new();
        push_rfc3339(&mut s, midnight, false, false);
        assert_eq!(s, b"2026-03-15T00:00:00+08:00");
    }
}
