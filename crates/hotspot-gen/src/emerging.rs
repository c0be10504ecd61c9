//! Emerging topics of the field scenario (CONTRACT 8, "New topics"): a new
//! service, package or app breaks, and its complaints match no template of
//! the rules — not even with the vetoes left out — so a detector over
//! templates never sees them. They are `new_topic` incidents of the truth.
//!
//! Each topic of [`TOPICS`] has a fixed **core**: the name of the new
//! product or service (`冰激凌新套餐`, four characters or more), which every
//! complaint of the topic contains verbatim after normalisation (NFKC,
//! ASCII lower case). Around it the wording varies: a lead before it
//! (`上个月刚办理的`) and a symptom after it (`月费被重复扣了`), inside the
//! agent's usual note (opener, time, impact, demand, contact). The truth
//! gives the core and the key phrase (the core and the symptom's gist,
//! `冰激凌新套餐 月费重复扣取`).
//!
//! [`PER_WORLD`] topics a world, half in one city and half across a whole
//! province, one a day over the incident days; sizes follow `[discovery]
//! min_callers` ([`MIN_CALLERS`], which the field rules carry):
//!
//! * **city** — one of the eight biggest cities: 16-28 distinct callers
//!   whose first calls spread over 45-75 minutes, front-loaded (the k-th of
//!   n comes about span × (k/n)^1.8 after the first, as when a fault hits
//!   every customer of the service at once and they notice one after
//!   another), so the busiest window holds at least `min_callers + 4`.
//! * **province** — 浙江 (26-36 callers) or 宁夏 (14-20), split over every
//!   city of the province by its size, no city with more than `min_callers
//!   - 2` (no city key can see it alone), the province's busiest window
//!   holding at least `min_callers + 4`.
//!
//! A tenth of the callers call again a few minutes later. Every text is
//! checked with the real matcher, with and without the vetoes; a topic
//! whose texts cannot be written that way is skipped and listed.

use std::collections::BTreeSet;

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::callers::new_caller;
use super::channel::Channel;
use super::incidents::{Injected, Plan, largest_remainder, max_in_window};
use super::line::pick_ts_fmt;
use super::regions::{PROVINCES, REGIONS, cities_of};
use super::text::{Frame, Since, TextCtx, compose};
use super::truth::Item;
use super::world::Checker;
use hotspot_core::matcher::Matcher;
use hotspot_core::normalize::normalize;
use hotspot_core::time::{CST_OFFSET_MS, format_cst};

/// `[discovery] min_callers` of the field rules.
pub const MIN_CALLERS: u32 = 8;
/// Emerging topics a world: half in one city, half across a province.
pub const PER_WORLD: usize = 6;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// One emerging topic: its core, its key phrase, and the words around the
/// core.
#[derive(Debug, Clone, Copy)]
pub struct Emerging {
    /// In every complaint, verbatim after normalisation (written here as
    /// agents write it: `FTTR`, `5G`).
    pub core: &'static str,
    /// The core and the gist of the symptom, separated by a space.
    pub key_phrase: &'static str,
    /// Written before the core (may be empty).
    pub leads: &'static [&'static str],
    /// Written after the core.
    pub symptoms: &'static [&'static str],
    /// A billing dispute (the agent notes refund demands).
    pub fee: bool,
}

/// The emerging topics a world draws from.
pub const TOPICS: &[Emerging] = &[
    Emerging {
        core: "冰激凌新套餐",
        key_phrase: "冰激凌新套餐 月费重复扣取",
        leads: &[
            "",
            "新办的",
            "上个月刚办理的",
            "营业厅推荐办理的",
            "刚升级的",
        ],
        symptoms: &[
            "月费被重复扣了",
            "这个月扣了两遍月费",
            "月费重复扣取",
            "月租一个月扣了两回",
            "本月月费被扣了两笔",
        ],
        fee: true,
    },
    Emerging {
        core: "和家亲摄像头",
        key_phrase: "和家亲摄像头 离线看不到画面",
        leads: &["", "家里装的", "去年安装的", "父母家的", "店里的"],
        symptoms: &[
            "一直显示离线",
            "离线了，看不到画面",
            "突然离线",
            "画面出不来",
            "看不到实时画面",
            "回放记录全没了",
        ],
        fee: false,
    },
    Emerging {
        core: "移动云手机",
        key_phrase: "移动云手机 进不去",
        leads: &["", "刚开通的", "单位统一办理的", "赠送的"],
        symptoms: &[
            "一直进不去",
            "打开后一直黑屏",
            "提示服务器繁忙",
            "进去就退出来",
            "启动不了",
        ],
        fee: false,
    },
    Emerging {
        core: "咪咕快游",
        key_phrase: "咪咕快游 游戏进不去",
        leads: &["", "孩子玩的", "开了会员的", "手机上的"],
        symptoms: &[
            "游戏进不去",
            "云游戏一直排队进不去",
            "开的会员没生效",
            "玩一会就断开",
            "游戏画面卡住不动",
        ],
        fee: false,
    },
    Emerging {
        core: "数字人民币",
        key_phrase: "数字人民币 钱包开通不了",
        leads: &["", "手机上开通的", "按短信提示开通的", "刚在营业厅开通的"],
        symptoms: &[
            "钱包开通不了",
            "硬钱包激活不了",
            "钱包一直提示身份核验不通过",
            "付款时提示钱包异常",
            "钱包里的余额看不到了",
        ],
        fee: false,
    },
    Emerging {
        core: "FTTR全屋组网",
        key_phrase: "FTTR全屋组网 从设备频繁断开",
        leads: &["", "新装的", "家里刚升级的", "上周装好的"],
        symptoms: &[
            "从设备频繁断开",
            "子路由指示灯一直闪",
            "房间里的从设备老是断开",
            "主设备和从设备配对不上",
            "每天晚上断开好几次",
        ],
        fee: false,
    },
    Emerging {
        core: "5G消息",
        key_phrase: "5G消息 发不出去",
        leads: &["", "手机上的", "刚开通的", "系统自带的"],
        symptoms: &[
            "发不出去",
            "一直转圈发不出去",
            "图片发出去对方看不到",
            "群聊发不出",
            "对方一直收不全",
        ],
        fee: false,
    },
    Emerging {
        core: "亲子守护平台",
        key_phrase: "亲子守护平台 孩子定位不准",
        leads: &["", "给孩子开通的", "学校推荐的", "新办理的"],
        symptoms: &[
            "孩子定位一直不准",
            "定位显示在外地",
            "看不到孩子的位置",
            "位置好几个小时不更新",
            "电子围栏提醒乱报",
        ],
        fee: false,
    },
];

/// A planned emerging topic: the item it is in the plan (the first city's
/// for a province-wide one), with its key phrase and core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Index into [`Plan::items`] (every city of a province topic shares
    /// its `group`).
    pub item: usize,
    pub key_phrase: String,
    pub core: String,
}

/// Whether a topic sits in one city or over a province.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    City,
    Province,
}

/// Adds [`PER_WORLD`] emerging topics to `plan`, one on each of `days`
/// (local midnights) in turn, spread over them; `matcher` and `strict` are
/// the rules' matcher and [`super::world::strict_matcher`].
pub fn plan(
    plan: &mut Plan,
    matcher: &Matcher,
    strict: &Matcher,
    window_ms: i64,
    days: &[i64],
    mut rng: ChaCha8Rng,
) -> Vec<NewTopic> {
    let mut out = Vec::new();
    if days.is_empty() {
        return out;
    }
    let mut order: Vec<usize> = (0..TOPICS.len()).collect();
    order.shuffle(&mut rng);
    let mut scopes = [Scope::City; PER_WORLD];
    scopes[PER_WORLD / 2..].fill(Scope::Province);
    scopes.shuffle(&mut rng);
    let mut phones: BTreeSet<[u8; 11]> = plan.records.iter().map(|r| r.caller.phone).collect();
    let mut group = plan.items.iter().filter_map(|i| i.group).max().unwrap_or(0);
    let mut p = Placer {
        check: Checker::new(matcher),
        strict: Checker::new(strict),
        rng: &mut rng,
        phones: &mut phones,
        text: String::new(),
    };
    for (k, (&t, &scope)) in order.iter().zip(&scopes).enumerate() {
        let topic = &TOPICS[t];
        let day = days[k * days.len() / PER_WORLD];
        let Some(bursts) = p.bursts(scope, day, window_ms) else {
            plan.skipped
                .push(format!("new_topic {}: no placement", topic.core));
            continue;
        };
        let mut made = Vec::new();
        for (region, calls) in &bursts {
            match p.records(topic, *region, calls) {
                Some(r) => made.push((*region, r)),
                None => break,
            }
        }
        if made.len() != bursts.len() {
            plan.skipped.push(format!(
                "new_topic {}: its texts match a template of these rules",
                topic.core
            ));
            continue;
        }
        let group = (scope == Scope::Province).then(|| {
            group += 1;
            group
        });
        out.push(NewTopic {
            item: plan.items.len(),
            key_phrase: topic.key_phrase.into(),
            core: normalize(topic.core),
        });
        for (region, mut records) in made {
            let item = plan.items.len();
            records.iter_mut().for_each(|r| r.item = item as u16);
            let start = records.iter().map(|r| r.ts).min().unwrap_or(0);
            let end = records.iter().map(|r| r.ts).max().unwrap_or(0);
            let mut callers: Vec<&str> = records.iter().map(|r| r.caller.as_str()).collect();
            callers.sort_unstable();
            callers.dedup();
            plan.items.push(Item {
                kind: "new_topic".into(),
                business: None,
                region: Some(REGIONS[region].name.into()),
                template: None,
                threshold: None,
                start: format_cst(start),
                end: format_cst(end),
                distinct_callers: callers.len() as u64,
                records: records.len() as u64,
                channel: "mixed".into(),
                late_dropped: 0,
                group,
                expect_alert: true,
                note: match scope {
                    Scope::City => format!(
                        "complaints about {} that no template names, in one city: its busiest window holds at least min_callers + 4 distinct callers",
                        topic.core
                    ),
                    Scope::Province => format!(
                        "complaints about {} that no template names, over a whole province: no city above min_callers - 2, the province at least min_callers + 4",
                        topic.core
                    ),
                },
            });
            plan.records.extend(records);
        }
    }
    plan.records.sort_by_key(|r| (r.ts, r.item));
    out
}

/// (when, caller number within its burst, the caller's n-th call).
type Call = (i64, usize, u32);

struct Placer<'a, 'r> {
    check: Checker<'a>,
    strict: Checker<'a>,
    rng: &'r mut ChaCha8Rng,
    phones: &'r mut BTreeSet<[u8; 11]>,
    text: String,
}

impl Placer<'_, '_> {
    /// `n` first-call times from `start` over `span`, front-loaded, sorted.
    fn front_loaded(&mut self, start: i64, span: i64, n: usize) -> Vec<i64> {
        let mut v: Vec<i64> = (0..n)
            .map(|_| start + (span as f64 * self.rng.random::<f64>().powf(1.8)) as i64)
            .collect();
        v.sort_unstable();
        v
    }

    /// The calls of each city of one topic, or `None` when the draws
    /// cannot meet the sizes (tried a few times).
    fn bursts(
        &mut self,
        scope: Scope,
        day: i64,
        window_ms: i64,
    ) -> Option<Vec<(usize, Vec<Call>)>> {
        let m = MIN_CALLERS as usize;
        for _ in 0..20 {
            let start = day + self.rng.random_range(8 * HOUR..19 * HOUR);
            let span = self.rng.random_range(45 * MIN..75 * MIN);
            let firsts: Vec<(usize, Vec<i64>)> = match scope {
                Scope::City => {
                    let region = self.rng.random_range(0..8);
                    let n = self.rng.random_range(16..=28);
                    vec![(region, self.front_loaded(start, span, n))]
                }
                Scope::Province => {
                    let p = usize::from(!self.rng.random_bool(0.65));
                    let cities = cities_of(PROVINCES[p]);
                    let n = if p == 0 {
                        self.rng.random_range(26..=36)
                    } else {
                        self.rng.random_range(14..=20)
                    };
                    let weights: Vec<f64> = cities.iter().map(|&c| REGIONS[c].weight).collect();
                    let alloc = largest_remainder(n, &weights);
                    let mut v = Vec::new();
                    for (&c, &k) in cities.iter().zip(&alloc) {
                        let k = k.min(m - 2);
                        if k > 0 {
                            v.push((c, self.front_loaded(start, span, k)));
                        }
                    }
                    v
                }
            };
            let mut all: Vec<i64> = firsts.iter().flat_map(|(_, t)| t.iter().copied()).collect();
            all.sort_unstable();
            if max_in_window(&all, window_ms) < m + 4 {
                continue;
            }
            let bursts = firsts
                .into_iter()
                .map(|(region, times)| {
                    let mut calls: Vec<Call> = Vec::new();
                    for (i, &ts) in times.iter().enumerate() {
                        calls.push((ts, i, 0));
                        if self.rng.random_bool(0.1) {
                            calls.push((ts + self.rng.random_range(2 * MIN..20 * MIN), i, 2));
                        }
                    }
                    calls.sort_unstable();
                    (region, calls)
                })
                .collect();
            return Some(bursts);
        }
        None
    }

    /// The records of one city's calls about `topic`; `None` when a text
    /// cannot be written that matches nothing.
    fn records(
        &mut self,
        topic: &Emerging,
        region: usize,
        calls: &[Call],
    ) -> Option<Vec<Injected>> {
        let core = normalize(topic.core);
        let first = calls.iter().map(|c| c.0).min()?;
        let local = (first + CST_OFFSET_MS).rem_euclid(24 * HOUR);
        let since = if topic.fee {
            Since::Vague
        } else {
            Since::At((local / HOUR) as u32, (local % HOUR / MIN) as u32)
        };
        let mut who = vec![None; calls.iter().map(|c| c.1).max()? + 1];
        let mut out = Vec::with_capacity(calls.len());
        let mut phrase = String::new();
        for &(ts, caller, call_no) in calls {
            let channel = Channel::pick(&mut *self.rng);
            let caller = *who[caller].get_or_insert_with(|| {
                loop {
                    let c = new_caller(&mut *self.rng, channel.hashed_caller_share());
                    if self.phones.insert(c.phone) {
                        break c;
                    }
                }
            });
            let ctx = TextCtx {
                region,
                channel,
                phone: Some(&caller.phone),
                place: None,
                since,
                call_no,
                fee: topic.fee,
                frame: Frame::Complaint,
            };
            let mut ok = false;
            for _ in 0..30 {
                phrase.clear();
                phrase.push_str(topic.leads[self.rng.random_range(0..topic.leads.len())]);
                phrase.push_str(topic.core);
                phrase.push_str(topic.symptoms[self.rng.random_range(0..topic.symptoms.len())]);
                compose(&mut self.text, &mut *self.rng, &phrase, &ctx);
                ok = self.check.matches_nothing(&self.text)
                    && self.strict.matches_nothing(&self.text)
                    && normalize(&self.text).contains(&core);
                if ok {
                    break;
                }
            }
            if !ok {
                return None;
            }
            let ts_fmt = pick_ts_fmt(&mut *self.rng, channel);
            let ts = if ts_fmt.keeps_millis() {
                ts
            } else {
                ts - ts.rem_euclid(1000)
            };
            out.push(Injected {
                ts,
                ts_fmt,
                region: region as u16,
                channel,
                caller,
                text: self.text.clone(),
                label: None,
                item: 0,
                arrival: None,
                extra: self.rng.random(),
            });
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::strict_matcher;
    use hotspot_core::rules;

    /// Every lead, core and symptom of every topic matches nothing in the
    /// fixture library, with or without its vetoes; no core is in the
    /// background's phrases.
    #[test]
    fn every_wording_matches_nothing() {
        let rules = rules::embedded().unwrap();
        let m = Matcher::new(&rules).unwrap();
        let s = strict_matcher(&rules);
        let (mut c, mut cs) = (Checker::new(&m), Checker::new(&s));
        let mut bad = Vec::new();
        for t in TOPICS {
            assert!(t.core.chars().count() >= 4, "{}", t.core);
            assert!(t.key_phrase.starts_with(t.core));
            for l in t.leads {
                for y in t.symptoms {
                    let p = format!("{l}{}{y}", t.core);
                    if !(c.matches_nothing(&p) && cs.matches_nothing(&p)) {
                        bad.push(p);
                    }
                }
            }
        }
        assert!(bad.is_empty(), "{bad:?}");
        let background: Vec<String> = crate::bank::PHRASES
            .iter()
            .flat_map(|(_, p)| p.iter().map(|s| normalize(s)))
            .chain(crate::bank::UNMATCHED.iter().map(|s| normalize(s)))
            .chain(crate::bank::EVERYDAY.iter().map(|(s, _)| normalize(s)))
            .chain(crate::bank::chatter_phrases())
            .collect();
        for t in TOPICS {
            let core = normalize(t.core);
            assert!(!background.iter().any(|b| b.contains(&core)), "{core}");
        }
    }
}
