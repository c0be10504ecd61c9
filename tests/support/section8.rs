//! A section 8 rules file for the tests of the surfaces (check-rules,
//! `/v1/rules`, status page, metrics): the fixture library plus the region
//! table of the fixture day (浙江's eleven cities, 宁夏's five), a province
//! threshold and a surge test on 彩铃 (crbt), a region override on 宽带.
//! Include with `#[path = "support/section8.rs"] mod section8;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The fixture day's regions: (city, province, subscribers).
pub const REGIONS: &[(&str, &str, Option<u64>)] = &[
    ("杭州", "浙江", Some(12_000_000)),
    ("宁波", "浙江", Some(9_500_000)),
    ("温州", "浙江", Some(8_000_000)),
    ("金华", "浙江", Some(6_000_000)),
    ("台州", "浙江", Some(5_500_000)),
    ("绍兴", "浙江", Some(4_500_000)),
    ("嘉兴", "浙江", Some(4_200_000)),
    ("湖州", "浙江", Some(3_000_000)),
    ("丽水", "浙江", Some(2_000_000)),
    ("衢州", "浙江", Some(2_300_000)),
    ("舟山", "浙江", None),
    ("银川", "宁夏", Some(2_600_000)),
    ("中卫", "宁夏", None),
    ("固原", "宁夏", None),
    ("吴忠", "宁夏", None),
    ("石嘴山", "宁夏", None),
];

/// The fixture rules with section 8 keys; `province_threshold` is crbt's
/// province threshold (the fixture day's 彩铃 incident spans 杭州, 宁波
/// and 温州, so 40 opens a 浙江 alert at about the time the cities fire).
pub fn rules_text(province_threshold: u32, discovery: bool) -> String {
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules.toml"))
            .unwrap();
    let crbt = "id = \"crbt\"\nname = \"彩铃\"\ndepartment = \"vas\"\nthreshold = 23\n";
    assert!(base.contains(crbt), "fixture crbt block changed");
    let mut text = base.replace(
        crbt,
        &format!(
            "{crbt}province_threshold = {province_threshold}\nsurge = {{ ratio = 4.0, min = 30, p_value = 1e-7 }}\n"
        ),
    );
    let bb = "id = \"broadband\"\n";
    if let Some(i) = text.find(bb) {
        // After the business's threshold line.
        let j = i + text[i..].find("threshold = ").unwrap();
        let k = j + text[j..].find('\n').unwrap() + 1;
        text.insert_str(k, "region_thresholds = { \"舟山\" = 9, \"衢州\" = 12 }\n");
    }
    text.push('\n');
    for (id, province, subs) in REGIONS {
        text.push_str(&format!(
            "[[region]]\nid = \"{id}\"\nprovince = \"{province}\"\n"
        ));
        if let Some(n) = subs {
            text.push_str(&format!("subscribers = {n}\n"));
        }
        text.push('\n');
    }
    if discovery {
        text.push_str("[discovery]\ndepartment = \"net\"\nmin_callers = 8\n");
    }
    text
}

/// Writes [`rules_text`] to `dir/rules.s8.toml`.
pub fn write_rules(dir: &Path, province_threshold: u32, discovery: bool) -> PathBuf {
    let p = dir.join("rules.s8.toml");
    std::fs::write(&p, rules_text(province_threshold, discovery)).unwrap();
    p
}
