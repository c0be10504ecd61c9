//! The command line as a user meets it: exit codes, one-line errors that
//! name the file and line, `check-rules` inventories, and the no-argument
//! demo, and the example config file of `hotspot run`.

mod support;

use std::process::Command;

fn hotspot(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixtures(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_rules_prints_an_inventory() {
    let (code, out, _) = hotspot(&["check-rules", &fixtures("rules.toml")]);
    assert_eq!(code, 0, "{out}");
    for word in [
        "ok",
        "window",
        "departments",
        "businesses",
        "templates",
        "keywords",
    ] {
        assert!(out.contains(word), "missing {word} in {out}");
    }
}

#[test]
fn check_rules_lists_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[department]]\nid = \"vas\"\n\n[[business]]\nid = \"crbt\"\ndepartment = \"nope\"\nthreshold = 0\n\n[[template]]\nid = \"t\"\nbusiness = \"crbt\"\nall_of = []\n",
    )
    .unwrap();
    let (code, out, err) = hotspot(&["check-rules", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    let p = path.display().to_string();
    assert!(
        out.contains(&format!(
            "{p}:6: business 'crbt': unknown department 'nope'"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{p}:7: business 'crbt': threshold must be at least 1"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{p}:11: template 't': unknown business 'crbt'")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{p}:12: template 't': all_of is empty")),
        "{out}"
    );
    assert!(err.contains("4 errors"), "{err}");
}

#[test]
fn replay_with_unusable_rules_or_input_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[window]\nsize = \"30 minutes\"\n").unwrap();
    let (code, _, err) = hotspot(&[
        "replay",
        "--rules",
        bad.to_str().unwrap(),
        "--input",
        &fixtures("traffic.jsonl"),
    ]);
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}:2: [window]", bad.display())),
        "{err}"
    );

    let (code, _, err) = hotspot(&["replay", "--input", "/nonexistent/traffic.jsonl"]);
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/traffic.jsonl"), "{err}");

    let (code, _, err) = hotspot(&[
        "replay",
        "--input",
        &fixtures("traffic.jsonl"),
        "--alerts",
        "/nonexistent/dir/a.jsonl",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/dir/a.jsonl"), "{err}");
}

#[test]
fn replay_prints_a_summary_line_and_writes_alerts_to_stdout() {
    let (code, out, err) = hotspot(&["replay", "--input", &fixtures("traffic.jsonl")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("lines:") && err.contains("events/s") && err.contains("MB/s"),
        "{err}"
    );
    let first = out.lines().next().expect("some alerts");
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    assert_eq!(v["state"], "firing");
}

#[test]
fn no_arguments_runs_the_embedded_demo() {
    let (code, out, err) = hotspot(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("embedded"), "{err}");
    assert!(out.lines().count() >= 2, "the demo prints alerts: {out}");
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["state"] == "firing" || v["state"] == "resolved");
    }
}

/// `fixtures/hotspot.toml` (the README's example config) is accepted by the
/// real service: every key parses, its relative paths resolve against the
/// file's directory, its sinks are set up, and flags win over it. It is run
/// from a copy laid out like the checkout (`fixtures/`, `target/`) in a
/// temporary directory, so nothing is written into the repository.
#[test]
fn the_example_config_starts_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("fixtures");
    let target = dir.path().join("target");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    for f in ["hotspot.toml", "rules.toml"] {
        std::fs::copy(fixtures(f), conf_dir.join(f)).unwrap();
    }
    let config = conf_dir.join("hotspot.toml");
    // support::Hotspot::start adds `--listen 127.0.0.1:0 --log-format json`:
    // both override the file (listen = 127.0.0.1:8080, log_format = human).
    let mut h = support::Hotspot::start(
        &["--config", config.to_str().unwrap()],
        &dir.path().join("hotspot.log"),
    );
    assert_ne!(h.addr.port(), 8080, "--listen must win over the file");

    let rules = h.json("/v1/rules");
    assert_eq!(
        rules["source"].as_str(),
        Some(conf_dir.join("rules.toml").to_str().unwrap()),
        "rules = \"rules.toml\" is relative to the config file"
    );
    assert_eq!(rules["businesses"].as_array().unwrap().len(), 40);

    let stats = h.json("/v1/stats");
    let sinks: Vec<&str> = stats["sink_backlog"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        sinks.len(),
        7,
        "alerts file, 5 webhooks, Alertmanager: {sinks:?}"
    );
    for d in ["net", "vas", "mkt", "it", "term"] {
        let want = format!("webhook:{d}:http://127.0.0.1:9101/hotspot/{d}");
        assert!(sinks.contains(&want.as_str()), "{want} in {sinks:?}");
    }
    assert!(
        sinks.contains(&"alertmanager:http://127.0.0.1:9093"),
        "{sinks:?}"
    );
    assert!(
        sinks
            .iter()
            .any(|s| s.starts_with("file:") && s.ends_with("target/hotspot-alerts.jsonl")),
        "{sinks:?}"
    );

    // The state directory and the dead-letter file land in ../target.
    assert!(target.join("hotspot-state/checkpoint.json").is_file());
    let answer = h.post_lines(b"not json\n");
    assert_eq!(answer["rejected"], 1, "{answer}");
    let dead = target.join("hotspot-dead-letters.jsonl");
    support::wait_until(
        "the dead letter",
        std::time::Duration::from_secs(10),
        || std::fs::read_to_string(&dead).is_ok_and(|t| t.lines().count() == 1),
    );

    let (code, _) = h.terminate();
    assert_eq!(code, Some(0), "{}", h.log_text());
}

/// A full disk under the alert output ends a parallel replay with the
/// error, however many threads: the sequencer stops, and every other
/// thread must see a closed channel rather than wait on it forever (they
/// did: the process hung once the queues filled).
#[test]
fn replay_to_a_full_disk_fails_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let (code, _, err) = hotspot(&[
        "gen",
        "--seed",
        "7",
        "--days",
        "1",
        "--events",
        "300000",
        "--out",
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for threads in ["1", "2", "4"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotspot"))
            .args(["replay", "-q", "--threads", threads, "--input"])
            .arg(&input)
            .args(["--alerts", "/dev/full"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("replay --threads {threads} to /dev/full still running after 120 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(1), "--threads {threads}: {err}");
        assert!(
            err.contains("No space left on device"),
            "--threads {threads}: {err}"
        );
    }
}

/// Rules files that would detect nothing: empty, departments without a
/// business, businesses without a template.
fn rules_that_detect_nothing() -> [(&'static str, String, &'static str); 3] {
    let departments = "[[department]]\nid = \"vas\"\nname = \"数据业务部\"\n";
    [
        (
            "empty.toml",
            String::new(),
            ":1: file: no [[department]], [[business]] or [[template]]: rules without them detect nothing",
        ),
        (
            "no-business.toml",
            departments.to_owned(),
            ":3: [[business]]: none defined: rules without a business detect nothing",
        ),
        (
            "no-template.toml",
            format!(
                "{departments}\n[[business]]\nid = \"crbt\"\nname = \"彩铃\"\ndepartment = \"vas\"\nthreshold = 8\n"
            ),
            ":9: [[template]]: none defined: rules without a template detect nothing",
        ),
    ]
}

#[test]
fn check_rules_refuses_rules_that_detect_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, want) in rules_that_detect_nothing() {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (code, out, err) = hotspot(&["check-rules", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        let want = format!("{}{want}", path.display());
        assert!(out.contains(&want), "{name}: want {want:?} in {out}");
        assert!(!out.contains(": ok (version"), "{name}: {out}");
    }
}

/// `hotspot run` and `hotspot replay` load rules the same way: neither
/// starts with rules that detect nothing (`run` used to start and count
/// nothing).
#[test]
fn run_and_replay_refuse_rules_that_detect_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, want) in rules_that_detect_nothing() {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let want = format!("unusable rules: {}{want}", path.display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotspot"))
            .args(["run", "--listen", "127.0.0.1:0", "--rules"])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name}: hotspot run started with rules that detect nothing");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{name}: {err}");
        assert!(err.contains(&want), "{name}: want {want:?} in {err}");

        let (code, _, err) = hotspot(&[
            "replay",
            "--rules",
            path.to_str().unwrap(),
            "--input",
            &fixtures("traffic.jsonl"),
        ]);
        assert_ne!(code, 0, "{name}: {err}");
        assert!(err.contains(&want), "{name}: want {want:?} in {err}");
    }
}

#[path = "support/section8.rs"]
mod section8;

#[test]
fn check_rules_shows_section_8_settings_and_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let path = section8::write_rules(dir.path(), 40, true);
    let (code, out, err) = hotspot(&["check-rules", "-v", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "section 8    16 regions in 2 provinces; businesses with region overrides 1, province threshold 1, surge 1; discovery set",
        "regions by province:",
        "    浙江 (11 regions): 杭州 (12000000 subscribers), 宁波 (9500000 subscribers),",
        "衢州 (2300000 subscribers), 舟山\n",
        "    宁夏 (5 regions): 银川 (2600000 subscribers), 中卫, 固原, 吴忠, 石嘴山\n",
        "  crbt 彩铃 (department vas, threshold 23)\n    province threshold: 40\n    surge: ratio 4, min 30, p_value 1e-7\n",
        "  broadband 家庭宽带 (department net, threshold 38)\n    region thresholds: 衢州=12, 舟山=9\n",
        "discovery: department net, min_callers 8 (new topics per region and province)",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("not implemented"), "{out}");
    // Without -v: the one-line section 8 summary, no table.
    let (code, out, _) = hotspot(&["check-rules", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("section 8    16 regions in 2 provinces"),
        "{out}"
    );
    assert!(!out.contains("regions by province"), "{out}");
    // Without [discovery].
    let path = section8::write_rules(dir.path(), 40, false);
    let (_, out, _) = hotspot(&["check-rules", "-v", path.to_str().unwrap()]);
    assert!(!out.contains("not implemented"), "{out}");
    assert!(out.contains("discovery off"), "{out}");
    // Plain rules: nothing of section 8.
    let (_, out, _) = hotspot(&["check-rules", "-v", &fixtures("rules.toml")]);
    assert!(!out.contains("section 8"), "{out}");
    assert!(!out.contains("province"), "{out}");
}

#[test]
fn check_rules_refuses_bad_section_8_rules_with_file_line_and_item() {
    let dir = tempfile::tempdir().unwrap();
    let head = "[[department]]\nid = \"vas\"\n\n";
    let template = "\n[[template]]\nid = \"t\"\nbusiness = \"crbt\"\nall_of = [[\"彩铃\"]]\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "override",
            "[[region]]\nid = \"杭州\"\nprovince = \"浙江\"\n\n[[business]]\nid = \"crbt\"\ndepartment = \"vas\"\nthreshold = 8\nregion_thresholds = { \"衢州\" = 4 }\n",
            ":12: business 'crbt': region_thresholds names region '衢州', which is not in the [[region]] table",
        ),
        (
            "ratio",
            "[[business]]\nid = \"crbt\"\ndepartment = \"vas\"\nthreshold = 8\nsurge = { ratio = 0.5, min = 6 }\n",
            ":8: business 'crbt': surge ratio must be at least 1 (got 0.5)",
        ),
        (
            "min",
            "[[business]]\nid = \"crbt\"\ndepartment = \"vas\"\nthreshold = 8\nsurge = { ratio = 4.0, min = 0 }\n",
            ":8: business 'crbt': surge min must be at least 1 (got 0)",
        ),
        (
            "province",
            "[[business]]\nid = \"crbt\"\ndepartment = \"vas\"\nthreshold = 8\nprovince_threshold = 40\n",
            ":8: business 'crbt': province_threshold is set but no [[region]] names a province",
        ),
    ];
    for (name, tail, want) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, format!("{head}{tail}{template}")).unwrap();
        let (code, out, err) = hotspot(&["check-rules", "-v", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {out}");
        let want = format!("{}{want}", path.display());
        assert!(out.contains(&want), "{name}: missing {want:?} in {out}");
        assert!(err.contains(" error"), "{name}: {err}");
        // The same rules stop replay with one line naming them.
        let (code, _, err) = hotspot(&[
            "replay",
            "--rules",
            path.to_str().unwrap(),
            "--input",
            "/dev/null",
        ]);
        assert_ne!(code, 0, "{name}");
        assert!(err.contains(&want), "{name}: replay said {err}");
    }
}
