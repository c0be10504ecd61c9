//! The phrase bank: how customers' problems are written down, per template
//! of the fixture rule library (`fixtures/rules.toml`), plus the share of
//! all traffic each business receives and the requests that match nothing.
//!
//! A phrase is the phenomenon part of an agent's note ("彩铃复制失败",
//! "光猫亮红灯"); [`super::text`] wraps it in an opener, a place, a time, an
//! impact and a demand. Every phrase must match its own template and no
//! other business — [`super::world`] checks that against the loaded rules
//! and drops what does not hold, and the tests insist that nothing is
//! dropped for the fixture library. Templates of another library (`--rules`)
//! that have no phrases here get phrases composed from their keywords.
//!
//! Shares are percent of all complaints. Together the businesses receive
//! about 45 %; the rest ([`UNMATCHED`]) are consultations, praise and
//! requests no template covers — as in a real complaint centre, where most
//! work orders are not part of any batch.

/// One business of the fixture library.
#[derive(Debug, Clone, Copy)]
pub struct BankBusiness {
    pub id: &'static str,
    /// Percent of all complaints.
    pub share: f64,
    /// Texts usually say where (`西湖区学府路`): faults of a place.
    pub place: bool,
    /// A billing dispute: demands are refunds and explanations.
    pub fee: bool,
}

const fn b(id: &'static str, share: f64, place: bool, fee: bool) -> BankBusiness {
    BankBusiness {
        id,
        share,
        place,
        fee,
    }
}

/// Businesses of the fixture library with their traffic shares.
pub const BUSINESSES: &[BankBusiness] = &[
    b("signal", 3.5, true, false),
    b("call", 2.5, true, false),
    b("data", 3.0, true, false),
    b("lte", 1.2, true, false),
    b("nr", 1.2, true, false),
    b("volte", 0.5, false, false),
    b("broadband", 3.0, true, false),
    b("iptv", 1.2, true, false),
    b("sms", 1.2, false, false),
    b("roaming", 0.4, false, true),
    b("crbt", 1.2, false, false),
    b("mms", 0.5, false, false),
    b("newspaper", 0.5, false, false),
    b("weather", 0.4, false, false),
    b("reading", 0.4, false, true),
    b("music", 0.3, false, false),
    b("video", 0.4, false, false),
    b("mail139", 0.25, false, false),
    b("callalert", 0.35, false, false),
    b("cloud", 0.25, false, false),
    b("antispam", 0.45, false, false),
    b("charge", 3.5, false, true),
    b("flow", 3.5, false, true),
    b("package", 2.5, false, true),
    b("bill", 2.0, false, true),
    b("campaign", 1.5, false, true),
    b("points", 0.7, false, false),
    b("family", 0.5, false, true),
    b("mnp", 0.4, false, false),
    b("bbfee", 0.6, false, true),
    b("recharge", 2.0, false, true),
    b("boss", 0.6, true, false),
    b("app", 1.2, false, false),
    b("portal", 0.4, false, false),
    b("realname", 0.5, false, false),
    b("handset", 0.8, false, false),
    b("contract", 0.5, false, false),
    b("sim", 0.7, false, false),
    b("esim", 0.3, false, false),
    b("cpe", 0.2, true, false),
];

/// Phenomenon phrases per template id.
pub const PHRASES: &[(&str, &[&str])] = &[
    (
        "signal.no_service",
        &[
            "手机突然没有信号，一直显示无服务",
            "手机没信号，发短信打电话都不行",
            "附近手机全部无信号",
            "手机搜不到网络，信号全无",
        ],
    ),
    (
        "signal.weak",
        &[
            "手机信号很差，时有时无",
            "家里信号很弱，经常只有一格",
            "小区信号不稳定，微信消息经常发不出去",
            "手机信号较差，在家要到阳台才能打电话",
        ],
    ),
    (
        "signal.indoor",
        &[
            "地下车库信号差，电话打不通",
            "电梯里没有信号",
            "室内信号弱，要到窗边才有信号",
            "楼道和地下室信号差",
        ],
    ),
    (
        "signal.cell_fault",
        &[
            "附近基站故障，手机没有信号",
            "疑似基站停电，整个小区手机都没信号",
            "附近基站坏了，周边居民都没法打电话",
            "基站退服，周边用户无法正常使用手机",
        ],
    ),
    (
        "call.drop",
        &[
            "通话经常掉话",
            "打电话几分钟就自动挂断",
            "通话中频繁中断",
            "电话讲到一半就断线",
        ],
    ),
    (
        "call.noise",
        &[
            "通话有杂音，对方听不清",
            "打电话有回声",
            "通话断断续续，听不清对方说话",
            "电话出现单通，只能听到对方声音",
        ],
    ),
    (
        "call.cannot_call",
        &[
            "手机打不出去，拨号后提示网络忙",
            "拨打任何号码都呼叫失败",
            "突然打不出电话，收发消息正常",
        ],
    ),
    (
        "call.cannot_receive",
        &[
            "别人打进来提示关机，手机实际开着",
            "朋友打电话提示不在服务区",
            "手机接不到电话，对方说一直无人接听",
            "电话打不进来",
        ],
    ),
    (
        "data.no_internet",
        &[
            "手机无法上网，数据已打开",
            "手机上不了网，重启也没用",
            "手机打不开网页，微信也刷不出来",
            "移动数据不能上网",
        ],
    ),
    (
        "data.gprs",
        &[
            "手机GPRS连接失败",
            "数据业务异常，微信发不出去",
            "移动数据用不了，显示已连接但无法使用",
            "数据连接经常异常",
        ],
    ),
    (
        "data.slow",
        &[
            "手机网速很慢，视频刷不动",
            "上网速度特别慢，网页半天出不来",
            "网速卡得厉害，微信语音都发不出去",
        ],
    ),
    (
        "lte.fallback",
        &[
            "4G经常掉到2G",
            "手机4G信号只显示E",
            "4G网络回落到3G，上网很慢",
        ],
    ),
    (
        "lte.weak",
        &[
            "4G信号差，时有时无",
            "家里4G没有信号",
            "4G信号不好，视频通话也卡",
        ],
    ),
    (
        "lte.register",
        &[
            "手机4G用不了，只能用3G",
            "4G无法注册网络",
            "手机提示LTE注册失败",
        ],
    ),
    (
        "nr.weak",
        &[
            "5G信号差，经常断流",
            "5G时有时无，打游戏经常掉线",
            "5G网络断流，频繁切换",
        ],
    ),
    (
        "nr.slow",
        &[
            "5G网速慢，还不如4G",
            "开通5G后速度慢",
            "5G网络很卡，视频一直卡顿",
        ],
    ),
    ("nr.icon", &["手机5G图标不显示", "5G标识消失了"]),
    (
        "volte.open_fail",
        &[
            "VoLTE开通失败",
            "高清通话功能无法开通",
            "办理VoLTE一直开不了",
        ],
    ),
    (
        "volte.call_fail",
        &[
            "VoLTE高清通话用不了",
            "高清语音无法使用",
            "VoLTE通话失败，只能用普通通话",
        ],
    ),
    ("volte.hd_icon", &["手机HD图标不显示", "HD标识消失了"]),
    (
        "broadband.down",
        &[
            "家里宽带断网",
            "宽带无法连接，光猫灯正常",
            "宽带上不了网，重启光猫也没用",
            "光纤宽带频繁掉线",
        ],
    ),
    (
        "broadband.slow",
        &[
            "宽带网速很慢，打开网页要半天",
            "宽带速率不达标，测速只有几兆",
            "晚上宽带很卡",
        ],
    ),
    (
        "broadband.onu",
        &[
            "光猫亮红灯",
            "光猫LOS灯闪红",
            "路由器指示灯不亮，光猫也亮红灯",
        ],
    ),
    (
        "broadband.install",
        &[
            "宽带装机延误，约好的时间没人上门",
            "申请宽带移机，一直拖延",
            "宽带安装迟迟没有完成",
        ],
    ),
    (
        "broadband.repair",
        &[
            "宽带报修两天一直没人处理",
            "光猫坏了，报修后迟迟没有师傅上门",
        ],
    ),
    (
        "iptv.black",
        &["魔百和开机黑屏", "电视机顶盒显示无信号", "IPTV花屏"],
    ),
    (
        "iptv.lag",
        &["魔百和看电视卡顿", "IPTV一直缓冲", "电视画面马赛克"],
    ),
    (
        "iptv.play",
        &["魔百和点播失败", "机顶盒无法播放节目", "电视看不了直播"],
    ),
    (
        "iptv.login",
        &["魔百和认证失败", "机顶盒提示账号异常", "IPTV无法登录"],
    ),
    (
        "sms.recv",
        &[
            "手机收不到短信",
            "短信接收不到，别人发的都收不到",
            "短信收不全，长短信只收到一半",
        ],
    ),
    (
        "sms.send",
        &["短信发不出去", "发送短信一直提示发送失败", "短信无法发送"],
    ),
    (
        "sms.code",
        &[
            "各类验证码收不到",
            "注册时验证码一直收不到",
            "银行验证码没收到",
        ],
    ),
    ("sms.delay", &["短信延迟，隔很久才收到", "短信晚到半小时"]),
    (
        "roaming.no_service",
        &[
            "在国外手机无法使用",
            "出国后手机没有信号",
            "在香港漫游用不了，手机显示无服务",
        ],
    ),
    (
        "roaming.fee",
        &[
            "国际漫游扣费过高",
            "出国几天漫游收费上千元",
            "收到漫游天价账单",
        ],
    ),
    (
        "roaming.open_fail",
        &["国际漫游开通失败", "国际长途无法开通"],
    ),
    (
        "crbt.copy_fail",
        &["彩铃复制失败", "复制好友的彩铃一直不成功", "炫铃无法复制"],
    ),
    (
        "crbt.sync_fail",
        &["彩铃同步失败", "换手机后彩铃无法同步", "炫铃同步一直不成功"],
    ),
    (
        "crbt.not_play",
        &[
            "彩铃不播放，打过来是普通回铃音",
            "别人打过来听不到彩铃",
            "设置好的彩铃消失了",
        ],
    ),
    (
        "crbt.set_fail",
        &["彩铃设置失败", "炫铃更换不了", "彩铃订购失败"],
    ),
    (
        "crbt.video",
        &[
            "视频彩铃无法播放",
            "视频彩铃只有声音没有画面",
            "视频彩铃黑屏",
        ],
    ),
    (
        "crbt.fee",
        &[
            "彩铃每月扣费，客户不认可",
            "彩铃功能费每月扣5元",
            "彩铃收费不合理",
        ],
    ),
    (
        "mms.recv",
        &["收不到彩信", "彩信下载失败", "彩信一直不能收"],
    ),
    ("mms.send", &["彩信发不出去", "发送彩信提示发送失败"]),
    ("mms.open", &["彩信打不开", "彩信显示不全，图片乱码"]),
    (
        "newspaper.missing",
        &[
            "手机报没收到",
            "订阅的手机报停止推送",
            "这几天都收不到手机报",
        ],
    ),
    (
        "newspaper.late",
        &["手机报推送延迟", "早间手机报下午才收到"],
    ),
    ("newspaper.fee", &["手机报每月扣费3元", "手机报收费不清楚"]),
    (
        "weather.missing",
        &["天气预报收不到", "天气短信停发了", "每天的气象短信没收到"],
    ),
    (
        "weather.wrong",
        &["天气预报城市不对", "收到的天气预报是外地的", "天气短信不准"],
    ),
    ("weather.fee", &["天气预报扣费", "气象服务每月收费"]),
    (
        "reading.open",
        &["手机阅读打不开", "咪咕阅读闪退", "手机阅读加载失败"],
    ),
    ("reading.fee", &["手机阅读扣费", "阅读包每月扣了10元"]),
    ("reading.ticket", &["阅读券未到账", "书券无法使用"]),
    ("music.play", &["咪咕音乐无法播放", "无线音乐听不了"]),
    ("music.member", &["音乐会员未生效", "白金会员权益未到账"]),
    (
        "video.play",
        &["咪咕视频无法播放", "手机视频一直缓冲", "咪咕视频黑屏"],
    ),
    ("video.member", &["视频会员未生效", "影视会员权益未到账"]),
    ("video.live", &["咪咕视频看直播一直卡", "手机视频直播中断"]),
    ("mail139.login", &["139邮箱无法登录", "139邮箱登不上"]),
    ("mail139.recv", &["139邮箱收不到邮件", "139邮箱邮件丢失"]),
    ("mail139.notice", &["邮件到达通知收不到", "邮件提醒失效"]),
    (
        "callalert.none",
        &[
            "来电提醒收不到",
            "开通了来电提醒，关机期间的来电没有提醒",
            "来电秘书失效",
        ],
    ),
    ("callalert.fee", &["来电提醒每月扣费", "来电显示收费"]),
    ("cloud.backup", &["和彩云备份失败", "云盘照片上传失败"]),
    ("cloud.lost", &["和彩云无法登录", "云盘照片丢失"]),
    (
        "antispam.fail",
        &[
            "骚扰拦截失效，每天还是很多骚扰电话",
            "开通了防骚扰功能不起作用",
        ],
    ),
    (
        "antispam.wrong",
        &["正常号码被拦截了", "快递电话被误拦截", "银行短信被误拦截"],
    ),
    (
        "charge.unsub",
        &[
            "手机被扣费，客户称没有订购任何业务",
            "每月扣了10元，客户不知情",
            "话费被扣款，从未办理过相关业务",
        ],
    ),
    (
        "charge.sp",
        &["出现信息费扣费", "出现SP代收费", "被第三方扣费"],
    ),
    (
        "charge.auto",
        &["业务到期后被自动续订扣费", "默认开通了业务并扣费"],
    ),
    (
        "charge.after_cancel",
        &["业务退订后仍然扣费", "已经取消的业务还在扣费"],
    ),
    (
        "flow.overuse",
        &[
            "流量偷跑，一晚上用了好几个G",
            "流量用得太快，莫名其妙用完",
            "流量异常消耗",
        ],
    ),
    (
        "flow.pack",
        &["流量包未生效", "加油包没到账", "定向流量不生效"],
    ),
    ("flow.overcharge", &["流量超出后被扣费", "流量超套收费过高"]),
    (
        "flow.throttle",
        &["套餐内流量没用完就被限速", "流量还有剩余却被降速"],
    ),
    ("flow.reminder", &["流量提醒不准", "流量用超了没有提醒"]),
    ("package.change_fail", &["套餐变更失败", "办理的套餐未生效"]),
    (
        "package.unauth",
        &["套餐被变更，不是本人办理", "套餐未经同意被更改"],
    ),
    ("package.mismatch", &["套餐资费与宣传不符", "月租被提高"]),
    (
        "package.cancel",
        &["套餐无法取消", "合约套餐营业员不让取消"],
    ),
    (
        "bill.abnormal",
        &["本月话费异常", "话费突然增加", "账单金额有误"],
    ),
    ("bill.detail", &["详单查不到", "通话记录与实际不符"]),
    ("bill.suspend", &["已缴费仍被停机", "有余额却被停机"]),
    (
        "campaign.gift",
        &["参加活动赠送的话费券未到账", "优惠活动的礼品没有收到"],
    ),
    (
        "campaign.promise",
        &["营业员承诺的优惠未兑现", "客户经理说好的返费不认账"],
    ),
    (
        "campaign.misled",
        &["营业员诱导办理业务", "外呼电话营销夸大宣传"],
    ),
    ("points.redeem", &["积分兑换失败", "积分兑换的话费未到账"]),
    ("points.cleared", &["积分被清零", "积分不见了"]),
    ("family.add", &["家庭网无法添加成员", "亲情号添加失败"]),
    ("family.fee", &["家庭网每月收费", "亲情号多收费"]),
    (
        "mnp.blocked",
        &["携号转网失败", "申请转网时受阻", "携转被拒，营业员刁难"],
    ),
    ("mnp.code", &["携转授权码收不到", "授权码获取失败"]),
    ("bbfee.renew", &["宽带续费后未生效", "宽带续约失败"]),
    ("bbfee.charge", &["宽带多收费", "融合套餐重复收费"]),
    (
        "bbfee.expire",
        &["宽带到期未提醒，直接停了", "宽带到期没通知"],
    ),
    (
        "recharge.not_arrived",
        &["充值未到账", "缴费后一直没到账", "微信充话费不到账"],
    ),
    ("recharge.double", &["充值重复扣款", "缴费时银行卡扣了两次"]),
    (
        "recharge.fail",
        &["充值失败", "交费时提示支付失败", "缴费报错"],
    ),
    ("recharge.card", &["充值卡提示已使用", "充值卡充不进"]),
    (
        "boss.down",
        &[
            "营业厅系统故障",
            "BOSS系统宕机，营业员无法受理",
            "业务系统崩溃",
        ],
    ),
    ("boss.store", &["营业厅无法办理业务", "营业厅系统很慢"]),
    ("boss.card", &["补卡失败", "营业厅写卡不成功"]),
    (
        "app.login",
        &["手机营业厅APP无法登录", "客户端登录失败", "掌上营业厅闪退"],
    ),
    (
        "app.page",
        &["手机营业厅页面空白", "APP一直转圈", "客户端报错"],
    ),
    ("app.query", &["APP查不到话费", "手机营业厅余额不对"]),
    ("portal.login", &["网上营业厅无法登录", "官网打不开"]),
    ("portal.invoice", &["电子发票下载不了", "发票无法打印"]),
    ("realname.face", &["人脸识别失败", "实名认证一直不通过"]),
    (
        "realname.reader",
        &["营业厅读卡器读不出身份证", "二代证识别失败"],
    ),
    (
        "handset.crash",
        &["手机死机", "手机反复重启", "新买的手机发烫"],
    ),
    ("handset.battery", &["电池鼓包", "手机无法充电"]),
    ("handset.screen", &["屏幕失灵", "触屏无反应"]),
    (
        "contract.quality",
        &["合约机质量问题", "定制机坏了，要求返修"],
    ),
    ("contract.subsidy", &["购机补贴未到账", "合约机返费没返"]),
    ("sim.unreadable", &["SIM卡无法识别", "手机读不出SIM卡"]),
    ("sim.damaged", &["SIM卡损坏", "手机卡接触不良"]),
    ("esim.activate", &["eSIM开通失败", "一号双终端无法开通"]),
    ("esim.watch", &["智能手表无法通话", "儿童手表接不到电话"]),
    ("cpe.fault", &["随身WiFi无法上网", "CPE连不上"]),
];

/// Requests, questions and praise that no template should match; they
/// follow an opener such as `客户来电`.
pub const UNMATCHED: &[&str] = &[
    "咨询话费余额",
    "咨询实名制登记",
    "咨询营业厅营业时间",
    "要求补办SIM卡",
    "表扬营业员服务热情",
    "表扬10086客服耐心",
    "反映营业员服务态度恶劣，要求道歉",
    "反映小区附近基站施工噪音扰民",
    "担心基站辐射影响健康",
    "要求开具发票",
    "称号码被他人冒名办理，要求核实",
    "要求恢复被暂停的业务",
    "咨询国际漫游怎么开通",
    "要求取消手机报",
    "咨询流量套餐内容",
    "咨询积分查询方式",
    "反映收到骚扰电话",
    "要求修改服务密码",
    "查询上月话费",
    "咨询靓号办理",
    "咨询5G套餐资费",
    "咨询携号转网条件",
    "要求停机保号",
    "反映营业厅排队时间长",
    "要求寄送纸质账单",
    "咨询合约到期时间",
    "要求开通国际长途",
    "咨询呼叫转移设置方法",
    "要求注销副卡",
    "对上次处理结果表示满意",
    "询问工单处理进度",
    "要求更改账单寄送地址",
    "投诉营业员推销",
    "收到营销短信，咨询活动详情",
    "要求办理宽带",
    "咨询宽带资费",
    "咨询魔百和会员怎么续费",
    "咨询亲情号办理条件",
    "咨询手机以旧换新活动",
    "要求查询本机号码归属地",
    "咨询家庭网怎么加成员",
    "反映有人冒充客服打电话",
    "咨询如何设置彩铃",
    "咨询如何开通VoLTE",
    "咨询如何办理流量包",
    "要求提供通话详单",
    "要求升级为5G套餐",
    "咨询副卡办理",
    "要求开通来电显示",
    "表扬装维师傅上门及时",
    "要求把账户余额转到另一个号码",
    "咨询积分兑换商品种类",
    "咨询校园卡办理",
    "表扬营业厅工作人员服务好",
    "咨询话费发票开具方式",
    "反映附近营业厅搬迁后找不到",
    "咨询新入网优惠政策",
    "咨询国际漫游资费标准",
    "称接到诈骗电话，要求协助处理",
    "要求开通国际漫游",
    "咨询老人卡办理",
    "要求关闭彩铃",
    "咨询宽带移机流程",
    "咨询家庭宽带提速",
];

/// The bank entry of business `id`, if the fixture library has it.
pub fn business(id: &str) -> Option<&'static BankBusiness> {
    BUSINESSES.iter().find(|b| b.id == id)
}

/// The phrases of template `id`, if the bank has them.
pub fn phrases(id: &str) -> Option<&'static [&'static str]> {
    PHRASES.iter().find(|(t, _)| *t == id).map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_leave_most_traffic_unmatched() {
        let total: f64 = BUSINESSES.iter().map(|b| b.share).sum();
        assert!((40.0..50.0).contains(&total), "{total}");
    }

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<&str> = PHRASES.iter().map(|(t, _)| *t).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
