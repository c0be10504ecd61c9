//! A large synthetic rule library for benchmarks and tests at scale: 5,000
//! templates over 20,000 realistic keywords (product subjects, plan and
//! brand variants, fault phenomena), the size of a national operator's
//! template library. `benches/micro.rs` measures loading, matching and
//! explaining with it; with `examples` its templates carry examples and
//! counter-examples that hold, as every library the generator writes does.

use std::fmt::Write;

/// Realistic keyword pieces: product subjects, plan/brand variants, and
/// fault phenomena with their modifiers.
const SUBJECTS: &[&str] = &[
    "彩铃",
    "视频彩铃",
    "家庭宽带",
    "宽带",
    "流量",
    "话费",
    "套餐",
    "信号",
    "短信",
    "彩信",
    "积分",
    "手机报",
    "139邮箱",
    "咪咕视频",
    "咪咕音乐",
    "和包支付",
    "移动云盘",
    "魔百和",
    "物联网卡",
    "副卡",
    "亲情号",
    "国际漫游",
    "5g",
    "4g",
    "volte",
    "esim",
    "携号转网",
    "实名认证",
    "充值",
    "营业厅",
    "手机营业厅",
    "网上营业厅",
    "合约机",
    "固话",
    "个人热点",
    "随身wifi",
    "流量包",
    "语音包",
    "会员",
    "权益",
    "宽带提速",
    "光猫",
    "路由器",
    "机顶盒",
    "来电显示",
    "呼叫转移",
    "语音信箱",
    "积分商城",
    "号卡",
    "天气预报",
];

const VARIANTS: &[&str] = &[
    "",
    "新",
    "包月",
    "畅享",
    "尊享",
    "和",
    "全球通",
    "动感地带",
    "神州行",
    "校园",
    "家庭",
    "企业",
    "政企",
    "融合",
    "合约",
    "定向",
    "夜间",
    "周末",
    "假日",
    "国内",
];

const PHENOMENA: &[&str] = &[
    "无法使用",
    "无法开通",
    "开通失败",
    "取消失败",
    "退订失败",
    "扣费异常",
    "重复扣费",
    "未经同意开通",
    "网速慢",
    "断线",
    "掉线",
    "无信号",
    "登录失败",
    "收不到",
    "发不出",
    "延迟",
    "乱码",
    "显示错误",
    "余额不符",
    "到账失败",
    "充值不到账",
    "无法拨打",
    "无法接听",
    "通话中断",
    "杂音",
    "单通",
    "无法上网",
    "打不开",
    "闪退",
    "卡顿",
    "验证码收不到",
    "办理失败",
    "变更失败",
    "积分清零",
    "兑换失败",
    "被停机",
    "无法复机",
    "无法销户",
    "资费不符",
    "承诺未兑现",
    "赠送未到账",
    "网络异常",
    "服务中断",
    "设备离线",
    "画面卡住",
    "无法播放",
    "黑屏",
    "无法同步",
    "复制失败",
    "设置无效",
    "被拦截",
    "误拦截",
    "虚假宣传",
    "强制捆绑",
    "乱收费",
    "二次扣费",
    "费用翻倍",
    "欠费提醒错误",
    "账单不明",
    "无法退订",
];

const MODIFIERS: &[&str] = &[
    "",
    "频繁",
    "一直",
    "突然",
    "多次",
    "反复",
    "持续",
    "间歇性",
    "大面积",
    "全天",
];

const NONE_OF: &[&str] = &["测试工单", "已恢复", "咨询如何", "已退费", "客户表示理解"];

/// 20,000 distinct realistic keywords in three pools: subjects
/// (variant + product, 1,000), phenomena (modifier + fault, 600) and
/// compounds (product + fault, then variant + product + fault) for the rest.
pub fn keyword_pools(n: usize) -> [Vec<String>; 3] {
    let mut seen = std::collections::HashSet::new();
    let mut pools: [Vec<String>; 3] = Default::default();
    let mut total = 0;
    let mut push = |k: String, pool: &mut Vec<String>, total: &mut usize| {
        if *total < n && seen.insert(k.clone()) {
            pool.push(k);
            *total += 1;
        }
    };
    for v in VARIANTS {
        for s in SUBJECTS {
            push(format!("{v}{s}"), &mut pools[0], &mut total);
        }
    }
    for m in MODIFIERS {
        for p in PHENOMENA {
            push(format!("{m}{p}"), &mut pools[1], &mut total);
        }
    }
    for s in SUBJECTS {
        for p in PHENOMENA {
            push(format!("{s}{p}"), &mut pools[2], &mut total);
        }
    }
    for v in VARIANTS.iter().skip(1) {
        for s in SUBJECTS {
            for p in PHENOMENA {
                push(format!("{v}{s}{p}"), &mut pools[2], &mut total);
            }
        }
    }
    assert_eq!(total, n, "keyword pieces give too few keywords");
    pools
}

/// A rule library of `templates` templates over `templates / 10`
/// businesses in 5 departments, using every keyword of the pools: each
/// template has a subject group (2 subjects) and a phenomenon group (1
/// phenomenon, 4 compounds), and one veto. With `examples`, each template
/// also gets two `examples` (a subject with the phenomenon, the other
/// subject with a compound) and two `counter_examples` (the first example
/// with its veto, and a question about the subject that names no fault).
pub fn big_library(templates: usize, keywords: usize, examples: bool) -> String {
    let pools = keyword_pools(keywords);
    let mut t = String::with_capacity(2 << 20);
    t.push_str("[window]\nsize = \"30m\"\nslide = \"1m\"\nallowed_lateness = \"10m\"\n\n");
    for d in ["net", "vas", "mkt", "it", "term"] {
        let _ = writeln!(t, "[[department]]\nid = \"{d}\"\nname = \"部门{d}\"\n");
    }
    let businesses = templates.div_ceil(10);
    for b in 0..businesses {
        let d = ["net", "vas", "mkt", "it", "term"][b % 5];
        let _ = writeln!(
            t,
            "[[business]]\nid = \"b{b:04}\"\nname = \"业务{b}\"\ndepartment = \"{d}\"\nthreshold = {}\n",
            8 + b % 30
        );
    }
    // Walk each pool with a prime stride (coprime to its length) so every
    // keyword is used and neighbouring templates share few keywords.
    let mut pos = [0usize; 3];
    let mut next = |p: usize| {
        let pool = &pools[p];
        pos[p] = (pos[p] + 7919) % pool.len();
        format!("\"{}\"", pool[pos[p]])
    };
    for i in 0..templates {
        let subjects = [next(0), next(0)];
        let faults = [next(1), next(2), next(2), next(2), next(2)];
        let (g1, g2) = (subjects.join(", "), faults.join(", "));
        let veto = NONE_OF[i % NONE_OF.len()];
        let _ = write!(
            t,
            "[[template]]\nid = \"b{:04}.t{i:05}\"\nbusiness = \"b{:04}\"\nphenomenon = \"现象{i}\"\nall_of = [[{g1}], [{g2}]]\nnone_of = [\"{veto}\"]\n",
            i / 10,
            i / 10,
        );
        if examples {
            // The pieces without their quotes.
            let s: Vec<&str> = subjects.iter().map(|k| k.trim_matches('"')).collect();
            let f: Vec<&str> = faults.iter().map(|k| k.trim_matches('"')).collect();
            let (open, close) = (OPENERS[i % OPENERS.len()], CLOSERS[i % CLOSERS.len()]);
            let _ = write!(
                t,
                "examples = [\"{open}{}{}{close}\", \"{}{}：{}{close}\"]\n\
                 counter_examples = [\"{}\", \"客户来电咨询{}的资费标准和办理渠道。\"]\n",
                s[0],
                f[0],
                OPENERS[(i + 3) % OPENERS.len()],
                s[1],
                f[1],
                vetoed(veto, &format!("{}{}", s[1], f[0])),
                s[0],
            );
        }
        t.push('\n');
    }
    t
}

/// How agents begin and end a complaint note.
const OPENERS: &[&str] = &[
    "客户反映",
    "用户来电称",
    "机主投诉",
    "客户来电表示",
    "用户反映",
];
const CLOSERS: &[&str] = &["，要求尽快处理。", "，请核实。", "，影响使用，客户很不满。"];

/// A complaint about `what` that the veto `veto` stops.
fn vetoed(veto: &str, what: &str) -> String {
    match veto {
        "测试工单" => format!("测试工单：{what}，请勿派单。"),
        "已恢复" => format!("客户回电称{what}已恢复，同意销单。"),
        "咨询如何" => format!("客户咨询如何处理{what}的问题。"),
        "已退费" => format!("客户反映{what}，已退费，客户接受。"),
        _ => format!("客户反映{what}，经解释{veto}。"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotspot_core::matcher::Matcher;
    use hotspot_core::rules::load_str;

    #[test]
    fn the_examples_hold() {
        let text = big_library(500, 2_000, true);
        let rules = std::sync::Arc::new(load_str(&text, "big.toml").unwrap());
        assert_eq!(rules.templates.len(), 500);
        let matcher = Matcher::new(&rules).unwrap();
        let mut m = matcher.scratch();
        let mut n = hotspot_core::normalize::Normalizer::new();
        for (t, tpl) in rules.templates.iter().enumerate() {
            assert_eq!((tpl.examples.len(), tpl.counter_examples.len()), (2, 2));
            for (e, must) in tpl
                .examples
                .iter()
                .map(|e| (e, true))
                .chain(tpl.counter_examples.iter().map(|e| (e, false)))
            {
                matcher.find_text(&e.text, &mut n, &mut m);
                assert_eq!(
                    m.templates().contains(&(t as u32)),
                    must,
                    "{}: {}",
                    tpl.id,
                    e.text
                );
            }
        }
        // Without examples, the library is what it was.
        assert!(!big_library(50, 2_000, false).contains("examples"));
    }
}
