//! The command line as a user meets it: exit codes, one-line errors that
//! name the file and line, `check-rules` inventories, and the no-argument
//! demo.

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
