//! The sixteen cities complaints come from: their names (the `region`
//! field), their share of the traffic, their districts and counties, and the
//! area codes their residents' ID-card numbers start with.
//!
//! Why sizes differ so much: a provincial complaint centre hears from its
//! capital ten to twenty times more often than from its smallest city. That
//! asymmetry is what makes batch detection hard — one threshold per business
//! must not fire on the capital's ordinary busy half hour, yet must fire on
//! a small city's real outage — so the generator keeps it (杭州 about 19 %,
//! 固原 and 中卫 under 1 %).
//!
//! Place names are generic (a county plus a 小区 or a road): they make texts
//! read like agents' notes, and they contain no keyword of the fixture rule
//! library (a test checks every generated text's matches).

/// One city.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub name: &'static str,
    /// Relative share of all complaints.
    pub weight: f64,
    /// The province the city belongs to.
    pub province: &'static str,
    /// The first four digits of local ID-card numbers.
    pub area: &'static str,
    pub counties: &'static [&'static str],
}

/// Every city, largest first.
pub const REGIONS: [Region; 16] = [
    Region {
        name: "杭州",
        weight: 17.0,
        province: "浙江",
        area: "3301",
        counties: &[
            "西湖区",
            "上城区",
            "拱墅区",
            "滨江区",
            "萧山区",
            "余杭区",
            "临平区",
            "钱塘区",
            "富阳区",
            "临安区",
            "桐庐县",
            "淳安县",
            "建德市",
        ],
    },
    Region {
        name: "宁波",
        weight: 12.5,
        province: "浙江",
        area: "3302",
        counties: &[
            "海曙区",
            "江北区",
            "北仑区",
            "镇海区",
            "鄞州区",
            "奉化区",
            "余姚市",
            "慈溪市",
            "宁海县",
            "象山县",
        ],
    },
    Region {
        name: "温州",
        weight: 11.5,
        province: "浙江",
        area: "3303",
        counties: &[
            "鹿城区",
            "龙湾区",
            "瓯海区",
            "洞头区",
            "瑞安市",
            "乐清市",
            "龙港市",
            "永嘉县",
            "平阳县",
            "苍南县",
            "文成县",
            "泰顺县",
        ],
    },
    Region {
        name: "金华",
        weight: 8.0,
        province: "浙江",
        area: "3307",
        counties: &[
            "婺城区",
            "金东区",
            "兰溪市",
            "义乌市",
            "东阳市",
            "永康市",
            "武义县",
            "浦江县",
            "磐安县",
        ],
    },
    Region {
        name: "台州",
        weight: 8.0,
        province: "浙江",
        area: "3310",
        counties: &[
            "椒江区",
            "黄岩区",
            "路桥区",
            "临海市",
            "温岭市",
            "玉环市",
            "三门县",
            "天台县",
            "仙居县",
        ],
    },
    Region {
        name: "绍兴",
        weight: 7.0,
        province: "浙江",
        area: "3306",
        counties: &["越城区", "柯桥区", "上虞区", "诸暨市", "嵊州市", "新昌县"],
    },
    Region {
        name: "嘉兴",
        weight: 6.0,
        province: "浙江",
        area: "3304",
        counties: &[
            "南湖区",
            "秀洲区",
            "海宁市",
            "平湖市",
            "桐乡市",
            "嘉善县",
            "海盐县",
        ],
    },
    Region {
        name: "湖州",
        weight: 5.5,
        province: "浙江",
        area: "3305",
        counties: &["吴兴区", "南浔区", "德清县", "长兴县", "安吉县"],
    },
    Region {
        name: "衢州",
        weight: 3.0,
        province: "浙江",
        area: "3308",
        counties: &["柯城区", "衢江区", "江山市", "常山县", "开化县", "龙游县"],
    },
    Region {
        name: "银川",
        weight: 3.0,
        province: "宁夏",
        area: "6401",
        counties: &["兴庆区", "金凤区", "西夏区", "永宁县", "贺兰县", "灵武市"],
    },
    Region {
        name: "丽水",
        weight: 2.8,
        province: "浙江",
        area: "3311",
        counties: &[
            "莲都区",
            "龙泉市",
            "青田县",
            "缙云县",
            "遂昌县",
            "松阳县",
            "云和县",
            "庆元县",
            "景宁县",
        ],
    },
    Region {
        name: "舟山",
        weight: 1.6,
        province: "浙江",
        area: "3309",
        counties: &["定海区", "普陀区", "岱山县", "嵊泗县"],
    },
    Region {
        name: "吴忠",
        weight: 1.2,
        province: "宁夏",
        area: "6403",
        counties: &["利通区", "红寺堡区", "青铜峡市", "盐池县", "同心县"],
    },
    Region {
        name: "石嘴山",
        weight: 1.0,
        province: "宁夏",
        area: "6402",
        counties: &["大武口区", "惠农区", "平罗县"],
    },
    Region {
        name: "中卫",
        weight: 0.8,
        province: "宁夏",
        area: "6405",
        counties: &["沙坡头区", "中宁县", "海原县"],
    },
    Region {
        name: "固原",
        weight: 0.8,
        province: "宁夏",
        area: "6404",
        counties: &["原州区", "西吉县", "隆德县", "泾源县", "彭阳县"],
    },
];

/// Customers per unit of [`Region::weight`]: complaints follow the
/// customer base, so a city's subscribers are its weight times this
/// (杭州 about 13 million, 固原 about 620 thousand).
pub const SUBSCRIBERS_PER_WEIGHT: f64 = 770_000.0;

impl Region {
    /// The city's customer base, rounded to ten thousand.
    pub fn subscribers(&self) -> u64 {
        ((self.weight * SUBSCRIBERS_PER_WEIGHT / 10_000.0).round() as u64) * 10_000
    }
}

/// The provinces of [`REGIONS`], biggest first.
pub const PROVINCES: [&str; 2] = ["浙江", "宁夏"];

/// The indices of the cities of `province`, largest first.
pub fn cities_of(province: &str) -> Vec<usize> {
    (0..REGIONS.len())
        .filter(|&r| REGIONS[r].province == province)
        .collect()
}

/// Residential compounds, roads and landmarks, combined with a county.
pub const PLACES: &[&str] = &[
    "阳光花园小区",
    "人民路",
    "新华小区",
    "幸福里小区",
    "学府路",
    "滨江花园",
    "工业园区",
    "城南新村",
    "中山路",
    "解放路",
    "锦绣家园",
    "世纪花园",
    "翠苑小区",
    "金色家园",
    "和平村",
    "园区大道",
    "万达广场附近",
    "火车站附近",
    "汽车站附近",
    "第二中学附近",
    "人民医院附近",
    "桂花园小区",
    "丽都花园小区",
    "东湖路",
    "建设路",
    "江南新城",
    "农贸市场附近",
    "开发区",
    "香樟苑",
    "龙湖天街附近",
    "大学城",
    "青年路",
    "文化路",
    "北门新村",
    "绿城桂花园",
    "湖畔雅苑",
];

/// Cumulative weights for picking a region by size (`u` uniform in [0, 1)).
#[derive(Debug, Clone)]
pub struct RegionPicker {
    cumulative: [f64; 16],
}

impl Default for RegionPicker {
    fn default() -> Self {
        let total: f64 = REGIONS.iter().map(|r| r.weight).sum();
        let mut cumulative = [0.0; 16];
        let mut acc = 0.0;
        for (c, r) in cumulative.iter_mut().zip(REGIONS.iter()) {
            acc += r.weight / total;
            *c = acc;
        }
        cumulative[15] = 1.0;
        RegionPicker { cumulative }
    }
}

impl RegionPicker {
    /// The region for a uniform `u` in [0, 1).
    pub fn pick(&self, u: f64) -> usize {
        self.cumulative.iter().position(|&c| u < c).unwrap_or(15)
    }

    /// The share of all traffic that region `r` receives.
    pub fn share(&self, r: usize) -> f64 {
        if r == 0 {
            self.cumulative[0]
        } else {
            self.cumulative[r] - self.cumulative[r - 1]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picker_covers_every_region_in_proportion() {
        let p = RegionPicker::default();
        let mut counts = [0u32; 16];
        for i in 0..100_000 {
            counts[p.pick(i as f64 / 100_000.0)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 0));
        assert!(counts[0] > 15 * counts[15], "{counts:?}");
        let total: f64 = (0..16).map(|r| p.share(r)).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}
