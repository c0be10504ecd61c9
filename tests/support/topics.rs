//! Small hand-made streams for the new-topic tests: everyday complaints
//! that no template of the fixture library covers, in the cities of a
//! two-province region table, and outbreaks of one new phrase in one city
//! or spread over a province. Include with
//! `#[path = "support/topics.rs"] mod topics;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// 2026-03-14T00:00:00+08:00.
pub const DAY0: i64 = 1_773_417_600_000;
pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;

/// (city, province).
pub const CITIES: [(&str, &str); 6] = [
    ("杭州", "浙江"),
    ("宁波", "浙江"),
    ("温州", "浙江"),
    ("衢州", "浙江"),
    ("银川", "宁夏"),
    ("中卫", "宁夏"),
];

const LEADS: [&str; 5] = [
    "客户来电反映",
    "用户来电称",
    "机主投诉",
    "客户表示",
    "来电反映",
];
const ISSUES: [&str; 16] = [
    "营业厅排队太久",
    "发票开具不了",
    "客户经理不回电话",
    "合约到期时间不清楚",
    "积分兑换商品迟迟不发货",
    "营业员态度不好",
    "上门服务人员迟到",
    "账单寄送地址写错了",
    "实名登记信息有误",
    "工单处理太慢",
    "营业厅饮水机没水了",
    "充值卡密码刮花了",
    "亲情号码设置不成功",
    "服务密码忘记了",
    "靓号预存款有疑问",
    "老年卡办理条件不清楚",
];
const TAILS: [&str; 5] = [
    "要求尽快处理",
    "请核实",
    "客户很不满",
    "要求回电说明",
    "已安抚",
];

/// The new phrase of the outbreaks, and the words around it.
pub const CORE: &str = "幸运星套餐扣费异常";
const FORMS: [&str; 4] = [
    "客户反映办理幸运星套餐扣费异常，要求退费",
    "用户来电称幸运星套餐扣费异常，多扣了钱",
    "机主投诉幸运星套餐扣费异常，很不满",
    "客户表示昨天开通幸运星套餐后扣费异常",
];

/// A small deterministic generator (xorshift).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One event: time, city, text, caller.
pub type Event = (i64, String, String, String);

/// Everyday complaints: `per_hour` an hour in every city for `hours` from
/// `from`, each from its own caller, with a phone number in the text.
pub fn chatter(rng: &mut Rng, from: i64, hours: i64, per_hour: u64) -> Vec<Event> {
    let mut v = Vec::new();
    for h in 0..hours {
        for (city, _) in CITIES {
            for _ in 0..per_hour {
                let ts = from + h * HOUR + rng.below(HOUR as u64) as i64;
                let phone = format!("1{}", 3_000_000_000 + rng.below(6_999_999_999));
                let text = format!(
                    "{}{}，{}，回访号码{phone}。",
                    LEADS[rng.below(5) as usize],
                    ISSUES[rng.below(16) as usize],
                    TAILS[rng.below(5) as usize],
                );
                v.push((ts, city.to_owned(), text, phone));
            }
        }
    }
    v
}

/// `n` callers writing about the new fault within `minutes` from `at`,
/// round-robin over `cities`.
pub fn outbreak(rng: &mut Rng, at: i64, minutes: i64, cities: &[&str], n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let ts = at + rng.below((minutes * MIN) as u64) as i64;
            let phone = format!("1{}", 5_000_000_000u64 + rng.below(999_999_999));
            let text = format!("{}，回访号码{phone}。", FORMS[i % FORMS.len()]);
            (ts, cities[i % cities.len()].to_owned(), text, phone)
        })
        .collect()
}

/// The events as JSON lines, in time order, with ids.
pub fn lines(mut events: Vec<Event>) -> Vec<String> {
    events.sort();
    events
        .into_iter()
        .enumerate()
        .map(|(i, (ts, region, text, caller))| {
            format!(
                r#"{{"id":"WO{i:08}","ts":{ts},"region":"{region}","text":"{text}","caller":"{caller}"}}"#
            )
        })
        .collect()
}

/// Two days of chatter, then on day 2 an outbreak in 杭州 (10 callers in
/// 20 minutes, 10:00) and one spread over 浙江's four cities (12 callers in
/// 25 minutes, 15:00), then the rest of day 3.
pub fn stream(seed: u64, per_hour: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut v = chatter(&mut rng, DAY0, 72, per_hour);
    v.extend(outbreak(&mut rng, DAY0 + 34 * HOUR, 20, &["杭州"], 10));
    v.extend(outbreak(
        &mut rng,
        DAY0 + 39 * HOUR,
        25,
        &["杭州", "宁波", "温州", "衢州"],
        12,
    ));
    lines(v)
}

/// The fixture rules with the region table of [`CITIES`] and
/// `[discovery]`, written to `dir`.
pub fn write_rules(dir: &Path) -> PathBuf {
    let mut text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules.toml"))
            .unwrap();
    text.push('\n');
    for (city, province) in CITIES {
        text.push_str(&format!(
            "[[region]]\nid = \"{city}\"\nprovince = \"{province}\"\n"
        ));
    }
    text.push_str("[discovery]\ndepartment = \"mkt\"\nmin_callers = 8\n");
    let p = dir.join("topics-rules.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Writes `lines` to `dir/name`.
pub fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}
