//! Complaint texts as call-centre agents write them.
//!
//! An agent's note has a habitual shape — who called and how (客户来电反映),
//! where (县区 + 小区/路), since when (从7点左右开始), the phenomenon, what it
//! costs the customer (影响正常工作), what they demand (要求尽快处理), often
//! a call-back number or an ID-card number, and sometimes a second line
//! `备注：...`. [`compose`] assembles that shape around a phenomenon phrase
//! from [`super::bank`] (or composed from a template's keywords), with the
//! variations real notes have: full-width digits and letters from Chinese
//! input methods (`４Ｇ`, `ＧＰＲＳ`), mixed case (`Gprs`), numbers written
//! `188-6943-9335`, Kangxi-radical look-alikes (`⽤`) from copy-pasted web
//! forms, and the odd emoji from the app.
//!
//! The fillers (openers, times, impacts, demands, notes) must never add a
//! keyword of the fixture rules: a complaint matches the template its
//! phenomenon was written for and nothing else. The world's tests check it
//! on many generated texts.

use rand::Rng;

use super::callers::{Phone, push_id_number, push_phone_styled};
use super::channel::Channel;
use super::regions::{PLACES, REGIONS};

/// How a text frames its phenomenon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An ordinary complaint about the phenomenon.
    Complaint,
    /// A question after a marketing SMS, containing `veto` (`咨询如何`).
    Consult { veto: &'a str },
    /// A test order, marked with `veto` (`测试工单`).
    TestOrder { veto: &'a str },
    /// A call-back saying the phenomenon is over, with `veto` (`已恢复`).
    Recovered { veto: &'a str },
}

/// When the trouble began, as agents write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// A vague time (近两天, 昨晚开始 ...), or none.
    Vague,
    /// A local clock time (hour, minute).
    At(u32, u32),
}

/// A place: a county (index into the region's counties) and a place name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub county: u16,
    pub place: u16,
}

impl Place {
    pub fn random(rng: &mut impl Rng, region: usize) -> Place {
        Place {
            county: rng.random_range(0..REGIONS[region].counties.len()) as u16,
            place: rng.random_range(0..PLACES.len()) as u16,
        }
    }
}

/// Everything [`compose`] needs besides the phrase.
#[derive(Debug, Clone, Copy)]
pub struct TextCtx<'a> {
    pub region: usize,
    pub channel: Channel,
    /// The caller's own number, for "回访号码".
    pub phone: Option<&'a Phone>,
    /// Where, for faults of a place.
    pub place: Option<Place>,
    pub since: Since,
    /// 0 for a first call; n for the customer's n-th call.
    pub call_no: u32,
    /// A billing dispute (demands refunds).
    pub fee: bool,
    pub frame: Frame<'a>,
}

const OPENERS: &[&str] = &[
    "客户来电反映",
    "客户来电称",
    "用户反映",
    "客户投诉称",
    "机主来电投诉",
    "客户致电表示",
    "来电反映",
    "客户情绪激动，称",
    "用户来电表示",
    "客户反映",
    "客户表示",
    "用户称",
];

const PLAIN_OPENERS: &[&str] = &["客户来电", "客户致电", "用户来电", "机主来电", "客户"];

const VAGUE_SINCE: &[&str] = &[
    "今天上午",
    "今天下午",
    "近两天",
    "昨晚开始",
    "最近一周",
    "这几天",
    "刚才",
    "自本月初起",
    "今天早上开始",
    "从昨天起",
];

const DETAILS_PLACE: &[&str] = &[
    "，周边邻居也一样",
    "，附近几户都这样",
    "，已排除终端问题",
    "，持续时间较长",
    "，之前一直正常",
];

const IMPACTS: &[&str] = &[
    "影响正常工作",
    "家里老人联系不上",
    "严重影响生活",
    "孩子上网课受影响",
    "店里无法收款",
    "耽误了重要事情",
    "客户很不满",
    "客户表示已多次反映",
    "影响生意",
];

const DEMANDS: &[&str] = &[
    "要求尽快处理",
    "请尽快核查",
    "要求尽快修复",
    "要求回电",
    "要求给予解释",
    "要求升级处理",
    "要求24小时内答复",
];

const FEE_DEMANDS: &[&str] = &[
    "要求退还费用",
    "要求查明原因并退款",
    "要求给予合理解释",
    "要求赔偿",
    "要求回电说明",
];

const CLOSINGS: &[&str] = &["，已安抚", "，已做好解释", "，已记录", "，已派单"];

const PLAIN_TAILS: &[&str] = &[
    "，要求回电答复",
    "，已解答",
    "，已告知办理流程",
    "，已记录",
    "，客户表示理解",
    "，已发送短信说明",
];

const NOTES: &[&str] = &[
    "客户不接受解释",
    "已派单至专业部门",
    "已告知客户重启",
    "客户要求24小时内回复",
    "已安抚客户情绪",
    "上次工单未解决",
    "已建议客户到营业厅检测",
    "重复来电，请优先处理",
    "客户语气激动",
];

const CONSULT_LEADS: &[&str] = &[
    "客户收到营销短信后来电",
    "客户看到营销短信，来电",
    "用户收到推广短信后",
    "客户收到活动短信，致电",
];

const CONSULT_VERBS: &[&str] = &["处理", "解决", "避免", "应对"];

/// Appends `s`, with its ASCII letters and digits restyled: as written,
/// lower case, title case, or full-width (`ＧＰＲＳ`, `４Ｇ`) as input
/// methods produce them.
pub fn push_styled(out: &mut String, s: &str, style: u32) {
    match style {
        0 => out.push_str(s),
        1 => s.chars().for_each(|c| out.push(c.to_ascii_lowercase())),
        2 => {
            // Title case per ASCII word: Gprs, Volte.
            let mut first = true;
            for c in s.chars() {
                if c.is_ascii_alphabetic() {
                    out.push(if first {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    });
                    first = false;
                } else {
                    first = true;
                    out.push(c);
                }
            }
        }
        _ => s.chars().for_each(|c| out.push(full_width(c))),
    }
}

/// The full-width form of a printable ASCII character.
pub fn full_width(c: char) -> char {
    if ('!'..='~').contains(&c) {
        char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)
    } else {
        c
    }
}

fn push_num(out: &mut String, n: u32, full: bool) {
    let mut buf = itoa::Buffer::new();
    for c in buf.format(n).chars() {
        out.push(if full { full_width(c) } else { c });
    }
}

fn pick<'a>(rng: &mut impl Rng, xs: &'a [&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

fn push_since(out: &mut String, rng: &mut impl Rng, since: Since, full: bool) {
    match since {
        Since::Vague => out.push_str(pick(rng, VAGUE_SINCE)),
        Since::At(h, m) => match rng.random_range(0..4u32) {
            0 => {
                out.push('从');
                push_num(out, h, full);
                out.push_str("点左右开始");
            }
            1 => {
                out.push('从');
                push_num(out, h, full);
                out.push('点');
                if m > 0 {
                    push_num(out, m, full);
                    out.push('分');
                }
                out.push('起');
            }
            2 => {
                push_num(out, h, full);
                out.push_str("点多开始");
            }
            _ => out.push_str(if h < 12 {
                "今天上午"
            } else if h < 18 {
                "今天下午"
            } else {
                "今晚"
            }),
        },
    }
}

fn push_place(out: &mut String, rng: &mut impl Rng, region: usize, place: Place) {
    let r = &REGIONS[region];
    if rng.random_bool(0.15) {
        out.push_str(r.name);
        out.push('市');
    }
    out.push_str(r.counties[place.county as usize % r.counties.len()]);
    out.push_str(PLACES[place.place as usize % PLACES.len()]);
}

fn push_contact(out: &mut String, rng: &mut impl Rng, ctx: &TextCtx<'_>) {
    match rng.random_range(0..10u32) {
        0..=5 => {
            out.push_str(pick(
                rng,
                &[
                    "，回访号码：",
                    "，联系方式：",
                    "，另留号码",
                    "，客户联系方式：",
                ],
            ));
            let own;
            let p = match ctx.phone {
                Some(p) if rng.random_bool(0.7) => p,
                _ => {
                    own = super::callers::phone(rng);
                    &own
                }
            };
            push_phone_styled(out, rng, p);
        }
        6..=8 => {
            out.push_str(pick(
                rng,
                &["，身份证号", "，机主身份证号码", "，证件号码："],
            ));
            push_id_number(out, rng, REGIONS[ctx.region].area);
        }
        _ => {
            out.push_str("，上次工单号WO20260");
            push_num(out, rng.random_range(301..316), false);
            for _ in 0..8 {
                out.push(char::from(b'0' + rng.random_range(0..10u8)));
            }
        }
    }
}

fn push_note(out: &mut String, rng: &mut impl Rng) {
    out.push_str("\n备注：");
    out.push_str(pick(rng, NOTES));
}

/// Picks how ASCII in the phenomenon is styled (see [`push_styled`]).
fn pick_style(rng: &mut impl Rng) -> u32 {
    match rng.random_range(0..100u32) {
        0..75 => 0,
        75..83 => 1,
        83..88 => 2,
        _ => 3,
    }
}

/// Writes the text of a complaint about `phrase` into `out` (cleared
/// first).
pub fn compose(out: &mut String, rng: &mut impl Rng, phrase: &str, ctx: &TextCtx<'_>) {
    out.clear();
    let style = pick_style(rng);
    match ctx.frame {
        Frame::Complaint => complaint(out, rng, phrase, ctx, style),
        Frame::Consult { veto } => {
            out.push_str(pick(rng, CONSULT_LEADS));
            out.push_str(veto);
            out.push_str(pick(rng, CONSULT_VERBS));
            push_styled(out, phrase, style);
            out.push_str(pick(rng, &["的问题", "的情况", ""]));
            out.push_str(pick(
                rng,
                &["，已解答", "，已按知识库解释", "，已告知设置方法", ""],
            ));
            out.push('。');
        }
        Frame::TestOrder { veto } => match rng.random_range(0..3u32) {
            0 => {
                out.push('【');
                out.push_str(veto);
                out.push('】');
                complaint(out, rng, phrase, ctx, style);
            }
            1 => {
                out.push_str(veto);
                out.push_str("，请勿派单：");
                complaint(out, rng, phrase, ctx, style);
            }
            _ => {
                complaint(out, rng, phrase, ctx, style);
                out.push('（');
                out.push_str(veto);
                out.push('）');
            }
        },
        Frame::Recovered { veto } => {
            out.push_str(pick(
                rng,
                &["客户回电称", "回访客户，客户表示", "客户来电告知"],
            ));
            out.push_str(pick(rng, &["上午", "早上", "之前", "昨天", "刚才", ""]));
            out.push_str("反映的");
            push_styled(out, phrase, style);
            out.push_str(pick(rng, &["问题", "情况", "故障"]));
            out.push_str(veto);
            out.push_str(pick(
                rng,
                &["，无需再处理", "，感谢处理", "，要求撤单", "，已结单"],
            ));
            out.push('。');
        }
    }
    finish(out, rng, ctx.channel);
}

fn complaint(out: &mut String, rng: &mut impl Rng, phrase: &str, ctx: &TextCtx<'_>, style: u32) {
    let full = style == 3;
    if ctx.call_no >= 2 {
        out.push_str("客户多次来电（第");
        push_num(out, ctx.call_no, false);
        out.push_str("次），称");
    } else {
        out.push_str(channel_opener(rng, ctx.channel).unwrap_or_else(|| pick(rng, OPENERS)));
    }
    if let Some(place) = ctx.place {
        push_place(out, rng, ctx.region, place);
    }
    if ctx.since != Since::Vague || rng.random_bool(0.8) {
        push_since(out, rng, ctx.since, full);
    }
    push_styled(out, phrase, style);
    if ctx.place.is_some() && rng.random_bool(0.25) {
        out.push_str(pick(rng, DETAILS_PLACE));
    }
    if rng.random_bool(0.4) {
        out.push('，');
        out.push_str(pick(rng, IMPACTS));
    }
    out.push('，');
    out.push_str(pick(rng, if ctx.fee { FEE_DEMANDS } else { DEMANDS }));
    if rng.random_bool(0.45) {
        push_contact(out, rng, ctx);
    }
    if rng.random_bool(0.2) {
        out.push_str(pick(rng, CLOSINGS));
    }
    out.push('。');
    if rng.random_bool(0.12) {
        push_note(out, rng);
    }
}

fn channel_opener(rng: &mut impl Rng, channel: Channel) -> Option<&'static str> {
    if !rng.random_bool(0.4) {
        return None;
    }
    match channel {
        Channel::Web => Some(pick(rng, &["用户留言称", "网上留言：客户反映"])),
        Channel::App => Some("在线客服转单：客户称"),
        Channel::Store => Some(pick(rng, &["客户到厅反映", "营业厅代客户登记："])),
        Channel::Sms => Some("10086短厅转单：客户称"),
        Channel::Hotline => None,
    }
}

/// Writes the text of a request that is no complaint about a template's
/// phenomenon (a question, praise, an unrelated request).
pub fn compose_plain(out: &mut String, rng: &mut impl Rng, phrase: &str, ctx: &TextCtx<'_>) {
    out.clear();
    out.push_str(pick(rng, PLAIN_OPENERS));
    push_styled(out, phrase, pick_style(rng));
    if rng.random_bool(0.4) {
        out.push_str(pick(rng, PLAIN_TAILS));
    }
    if rng.random_bool(0.35) {
        push_contact(out, rng, ctx);
    }
    out.push('。');
    if rng.random_bool(0.08) {
        push_note(out, rng);
    }
    finish(out, rng, ctx.channel);
}

/// Channel-specific touches applied to the whole text: Kangxi-radical
/// look-alikes in some web forms, an emoji in some app messages.
fn finish(out: &mut String, rng: &mut impl Rng, channel: Channel) {
    match channel {
        // NFKC maps these back: ⽤ U+2F64 → 用, ⾳ U+2FB3 → 音, ⼈ U+2F08 → 人.
        Channel::Web if rng.random_bool(0.25) && out.contains(['用', '音', '人']) => {
            let s: String = out
                .chars()
                .map(|c| match c {
                    '用' => '⽤',
                    '音' => '⾳',
                    '人' => '⼈',
                    c => c,
                })
                .collect();
            *out = s;
        }
        Channel::App if rng.random_bool(0.06) => out.push_str(pick(rng, &["😡", "🙏", "😭"])),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotspot_core::normalize::normalize;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ctx(frame: Frame<'_>) -> TextCtx<'_> {
        TextCtx {
            region: 0,
            channel: Channel::Hotline,
            phone: Some(b"18869439335"),
            place: Some(Place {
                county: 0,
                place: 0,
            }),
            since: Since::At(7, 5),
            call_no: 0,
            fee: false,
            frame,
        }
    }

    #[test]
    fn texts_keep_their_phenomenon_and_frame() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut s = String::new();
        for _ in 0..200 {
            compose(&mut s, &mut rng, "手机GPRS连接失败", &ctx(Frame::Complaint));
            let n = normalize(&s);
            assert!(n.contains("手机gprs连接失败"), "{s}");
            assert!(n.contains("西湖区"), "{s}");
            assert!(s.ends_with('。') || s.contains("\n备注："), "{s}");
            compose(
                &mut s,
                &mut rng,
                "彩铃复制失败",
                &ctx(Frame::Consult {
                    veto: "咨询如何"
                }),
            );
            assert!(
                s.contains("咨询如何") && normalize(&s).contains("彩铃复制失败"),
                "{s}"
            );
            compose(
                &mut s,
                &mut rng,
                "彩铃复制失败",
                &ctx(Frame::TestOrder {
                    veto: "测试工单"
                }),
            );
            assert!(s.contains("测试工单"), "{s}");
            compose(
                &mut s,
                &mut rng,
                "手机没有信号",
                &ctx(Frame::Recovered { veto: "已恢复" }),
            );
            assert!(s.contains("已恢复"), "{s}");
        }
    }

    #[test]
    fn styles_normalise_back() {
        for style in 0..4 {
            let mut s = String::new();
            push_styled(&mut s, "4G掉到2G，GPRS异常", style);
            assert_eq!(normalize(&s), "4g掉到2g,gprs异常", "{s}");
        }
        let mut s = String::new();
        push_styled(&mut s, "Volte gprs", 2);
        assert_eq!(s, "Volte Gprs");
    }
}
