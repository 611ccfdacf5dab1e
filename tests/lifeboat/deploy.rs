//! What operators install beside the binary (`deploy/`): the Prometheus
//! alert rules pass their promtool unit tests, every rule has one, and
//! every metric the rules and the Grafana dashboard name is one lifeboat
//! exports.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

/// promtool, from Debian's `prometheus` package, installed on first use.
fn promtool() -> &'static str {
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/setup-apt"))
            .args(["promtool", "prometheus"])
            .status()
            .expect("run .ci/setup-apt");
        assert!(status.success(), "installing promtool failed: {status}");
    });
    "promtool"
}

/// The sample names a scrape of lifeboat can hold.
fn exported() -> BTreeSet<String> {
    let metrics = lifeboat::metrics::Metrics::new();
    let names: BTreeSet<String> = metrics.sample_names().iter().cloned().collect();
    assert!(names.len() > 30, "{names:?}");
    // The list is the registry's: each family a scrape shows is on it.
    for line in metrics.render().lines() {
        if let Some(sample) = line
            .split(['{', ' '])
            .next()
            .filter(|s| !s.starts_with('#') && !s.is_empty())
        {
            assert!(names.contains(sample), "{sample} is served but not listed");
        }
    }
    names
}

/// The `lifeboat_*` names in a PromQL expression.
fn named(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("lifeboat_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        found.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    found
}

#[test]
fn the_alert_rules_pass_their_promtool_unit_tests() {
    let dir = Path::new(DEPLOY).join("prometheus");
    for args in [
        &["check", "rules", "lifeboat-rules.yaml"][..],
        &["test", "rules", "lifeboat-rules.test.yaml"][..],
    ] {
        let out = Command::new(promtool())
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_rule_has_a_test_and_names_only_exported_metrics() {
    let exported = exported();
    let rules = std::fs::read_to_string(Path::new(DEPLOY).join("prometheus/lifeboat-rules.yaml"))
        .expect("rules");
    let tests =
        std::fs::read_to_string(Path::new(DEPLOY).join("prometheus/lifeboat-rules.test.yaml"))
            .expect("rule tests");
    let mut alerts = 0;
    for line in rules.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            alerts += 1;
            // A test that expects it to fire, not only one that expects quiet.
            let firing = tests
                .split(&format!("alertname: {name}\n"))
                .skip(1)
                .any(|after| {
                    after
                        .trim_start()
                        .strip_prefix("exp_alerts:")
                        .is_some_and(|a| !a.trim_start().starts_with("[]"))
                });
            assert!(firing, "rule {name} has no test that expects it to fire");
        }
        if let Some(expr) = line.strip_prefix("expr: ") {
            let names = named(expr);
            assert!(!names.is_empty(), "`{expr}` names no lifeboat metric");
            for n in names {
                assert!(exported.contains(&n), "`{expr}`: lifeboat exports no `{n}`");
            }
        }
    }
    assert!(alerts >= 10, "{alerts} rules");
}

#[test]
fn every_dashboard_panel_queries_metrics_lifeboat_exports() {
    let exported = exported();
    let text = std::fs::read_to_string(Path::new(DEPLOY).join("grafana/lifeboat.json"))
        .expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queried = 0;
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap_or("?");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel `{title}` has no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("a PromQL expr");
            let names = named(expr);
            assert!(
                !names.is_empty(),
                "panel `{title}`: `{expr}` names no lifeboat metric"
            );
            for n in names {
                assert!(
                    exported.contains(&n),
                    "panel `{title}`: lifeboat exports no `{n}`"
                );
            }
            queried += 1;
        }
    }
    assert!(queried >= 20, "{queried} queries");
    // Every variable's query too.
    for v in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(q) = v["definition"].as_str() {
            for n in named(q) {
                assert!(exported.contains(&n), "variable: lifeboat exports no `{n}`");
            }
        }
    }
}
