//! A run's report: its RTO and RPO against the targets, how each was
//! found, and its timeline, as Markdown, JSON, or one self-contained HTML
//! page whose timeline is an SVG Gantt chart (parallel steps side by side,
//! approval waits hatched, the critical path outlined). No external asset,
//! script or font: the page renders offline, as an incident record must.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::journal::StepState;
use crate::measure::{Figures, Measured};

/// A duration in seconds as people write it (`4.2 s`, `1m35s`, `2h01m`).
pub fn seconds(s: Option<f64>) -> String {
    let Some(s) = s else {
        return "n/a".to_string();
    };
    if s.abs() < 60.0 {
        return format!("{s:.1} s");
    }
    let sign = if s < 0.0 { "-" } else { "" };
    // Whole seconds first, so 899.6 s reads 15m00s, not 14m60s.
    let total = s.abs().round() as u64;
    if total < 3600 {
        format!("{sign}{}m{:02}s", total / 60, total % 60)
    } else {
        format!("{sign}{}h{:02}m", total / 3600, (total % 3600) / 60)
    }
}

fn verdict(m: &Measured) -> String {
    match (m.verdict, m.margin_s) {
        ("met", Some(margin)) => format!("met, {} under target", seconds(Some(-margin))),
        ("breached", Some(margin)) => format!("BREACHED by {}", seconds(Some(margin))),
        (other, _) => other.to_string(),
    }
}

/// The report as Markdown.
pub fn markdown(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Run {}: {} ({} mode{}), {}\n",
        f.run,
        f.runbook,
        f.mode,
        if f.mode == "drill" { ", a drill" } else { "" },
        f.state
    );
    let _ = writeln!(out, "| | achieved | target | verdict |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for (name, m) in [("RTO", &f.rto), ("RPO", &f.rpo)] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            seconds(m.seconds),
            seconds(m.target_s),
            verdict(m)
        );
    }
    let _ = writeln!(out, "\n- RTO: {}", f.rto.how);
    let _ = writeln!(
        out,
        "- RTO breakdown: detection {}, decision {} (approval waits included), execution {}",
        seconds(f.breakdown.detection_s),
        seconds(f.breakdown.decision_s),
        seconds(f.breakdown.execution_s)
    );
    let _ = writeln!(
        out,
        "- RPO: {}{}",
        f.rpo.how,
        f.recovery_point
            .as_deref()
            .map_or(String::new(), |at| format!(" (recovery point {at})"))
    );
    if !f.critical_path.is_empty() {
        let _ = writeln!(out, "- Critical path: {}", f.critical_path.join(" → "));
    }
    if !f.substitutions.is_empty() {
        let _ = writeln!(out, "\n## Drill substitutions\n");
        for sub in &f.substitutions {
            let _ = writeln!(out, "- `{}`: {}", sub.step, sub.note);
        }
    }
    if !f.accounts.is_empty() {
        let _ = writeln!(out, "\n## Accounts\n");
        for a in &f.accounts {
            let _ = writeln!(
                out,
                "- `{}` acted as {} (account {})",
                a.step, a.acting_as, a.account
            );
        }
    }
    let _ = writeln!(out, "\n## Timeline\n");
    let _ = writeln!(
        out,
        "- {} incident start ({})",
        f.incident_start, f.incident_source
    );
    if let Some(at) = &f.outage_declared {
        let _ = writeln!(out, "- {at} outage declared");
    }
    if let Some(at) = &f.execution_start {
        let _ = writeln!(out, "- {at} execution start");
    }
    if let Some(at) = &f.service_restored {
        let _ = writeln!(out, "- {at} service restored");
    }
    let _ = writeln!(
        out,
        "\n| step | action | state | start | duration | waiting | attempts | critical |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- | --- |");
    for s in &f.steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            s.step,
            s.action,
            s.state,
            s.start.as_deref().unwrap_or("-"),
            seconds(s.duration_s),
            if s.waiting_s > 0.0 {
                seconds(Some(s.waiting_s))
            } else {
                "-".to_string()
            },
            s.attempts,
            if s.critical { "yes" } else { "" }
        );
    }
    out
}

/// The comparison of a run with the runbook's earlier ones, as Markdown
/// (empty when there is nothing to compare with).
pub fn comparison_markdown(f: &Figures, c: &crate::measure::Comparison) -> String {
    let mut out = String::new();
    if c.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\n## Compared with earlier runs\n");
    let _ = writeln!(out, "| run | mode | started | RTO | RPO | runbook |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
    let _ = writeln!(
        out,
        "| {} (this run) | {} | {} | {} | {} | this one |",
        f.run,
        f.mode,
        f.execution_start.as_deref().unwrap_or(&f.incident_start),
        seconds(f.rto.seconds),
        seconds(f.rpo.seconds)
    );
    for p in c.last_failover.iter().chain(&c.drills) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            p.run,
            p.mode,
            p.started_at,
            seconds(p.rto_s),
            seconds(p.rpo_s),
            if p.same_runbook {
                "same"
            } else {
                "changed since"
            }
        );
    }
    let drills = c.drills.len();
    let _ = write!(out, "\n| step | this run | last failover |");
    for i in 0..drills {
        let _ = write!(out, " drill {} |", i + 1);
    }
    let _ = write!(out, "\n| --- | --- | --- |");
    for _ in 0..drills {
        out.push_str(" --- |");
    }
    out.push('\n');
    for s in &c.steps {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            s.step,
            seconds(s.this_s),
            seconds(s.last_failover_s)
        );
        for d in &s.drills_s {
            let _ = write!(out, " {} |", seconds(*d));
        }
        out.push('\n');
    }
    if drills > 0 {
        let _ = writeln!(out, "\nDrills are numbered newest first.");
    }
    out
}

/// The HTML report with the run's comparison with earlier runs (as
/// [`comparison_markdown`]) after its timeline.
pub fn html_compared(f: &Figures, c: &crate::measure::Comparison) -> String {
    let page = html(f);
    if c.is_empty() {
        return page;
    }
    let mut section = String::from(
        "<h2>Compared with earlier runs</h2>\n<table>\n<tr><th>run</th><th>mode</th><th>started</th><th>RTO</th><th>RPO</th><th>runbook</th></tr>\n",
    );
    let _ = writeln!(
        section,
        "<tr><td>{} (this run)</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>this one</td></tr>",
        esc(&f.run),
        esc(&f.mode),
        esc(f.execution_start.as_deref().unwrap_or(&f.incident_start)),
        esc(&seconds(f.rto.seconds)),
        esc(&seconds(f.rpo.seconds))
    );
    for p in c.last_failover.iter().chain(&c.drills) {
        let _ = writeln!(
            section,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.run),
            esc(&p.mode),
            esc(&p.started_at),
            esc(&seconds(p.rto_s)),
            esc(&seconds(p.rpo_s)),
            if p.same_runbook {
                "same"
            } else {
                "changed since"
            }
        );
    }
    section.push_str("</table>\n<table class=\"trend\">\n<tr><th>step</th><th>this run</th><th>last failover</th>");
    for i in 0..c.drills.len() {
        let _ = write!(section, "<th>drill {}</th>", i + 1);
    }
    section.push_str("</tr>\n");
    for s in &c.steps {
        let _ = write!(
            section,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            esc(&s.step),
            esc(&seconds(s.this_s)),
            esc(&seconds(s.last_failover_s))
        );
        for d in &s.drills_s {
            let _ = write!(section, "<td>{}</td>", esc(&seconds(*d)));
        }
        section.push_str("</tr>\n");
    }
    section.push_str("</table>\n<p class=\"note\">Drills are numbered newest first.</p>\n");
    page.replacen("</body>", &format!("{section}</body>"), 1)
}

/// Escape text for HTML and SVG.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const WIDTH: f64 = 900.0;
const LABEL: f64 = 170.0;
const ROW: f64 = 26.0;

/// The Gantt chart of the run's steps, time from the incident's start.
pub fn timeline_svg(f: &Figures) -> String {
    timeline_svg_at(f, None)
}

/// The chart of a run that may still be going: with `now`, a step that
/// started and has not ended is drawn up to `now` (class `step running`).
pub fn timeline_svg_at(f: &Figures, now: Option<Timestamp>) -> String {
    let origin: Option<Timestamp> = f.incident_start.parse().ok();
    let offset = |at: Option<&str>| -> Option<f64> {
        let at: Timestamp = at?.parse().ok()?;
        Some(at.duration_since(origin?).as_secs_f64().max(0.0))
    };
    let now = now.map(|t| t.to_string());
    let end_of = |s: &crate::measure::StepSpan| -> (Option<f64>, bool) {
        match (offset(s.end.as_deref()), &now) {
            (Some(end), _) => (Some(end), false),
            (None, Some(now)) if s.start.is_some() => (offset(Some(now)), true),
            (None, _) => (None, false),
        }
    };
    let ends = f
        .steps
        .iter()
        .filter_map(|s| end_of(s).0)
        .chain(offset(f.service_restored.as_deref()));
    let span = ends.fold(0.0_f64, f64::max).max(0.1);
    let scale = (WIDTH - LABEL - 45.0) / span;
    let x = |t: f64| LABEL + t * scale;
    let rows = f.steps.len() as f64;
    let height = 40.0 + rows * ROW + 30.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" id="timeline" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Timeline of run {run}">
<defs><pattern id="wait" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#d9a400"/></pattern></defs>"##,
        run = esc(&f.run)
    );
    // Time axis: ticks at round intervals.
    let step = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0,
    ]
    .into_iter()
    .find(|s| span / s <= 10.0)
    .unwrap_or(7200.0);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="30" x2="{0:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{0:.1}" y="22" font-size="11" text-anchor="middle" fill="#555">{2}</text>"##,
            x(t),
            height - 30.0,
            esc(&seconds(Some(t)))
        );
        t += step;
    }
    for (i, s) in f.steps.iter().enumerate() {
        let y = 40.0 + i as f64 * ROW;
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#222">{}</text>"##,
            LABEL - 8.0,
            y + 14.0,
            esc(&s.step)
        );
        let (end, running) = end_of(s);
        let (Some(a), Some(b)) = (offset(s.start.as_deref()), end) else {
            continue;
        };
        let colour = match s.state {
            _ if running => "#2e86de",
            StepState::Succeeded => "#3a8f5c",
            StepState::Failed => "#c0392b",
            _ => "#7f8c8d",
        };
        let w = ((b - a) * scale).max(2.0);
        let fill = if s.waiting_s > 0.0 {
            "url(#wait)"
        } else {
            colour
        };
        let stroke = if s.critical {
            r##" stroke="#1f3a93" stroke-width="2.5""##
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r##"<rect class="step{critical}{live}" x="{:.1}" y="{:.1}" width="{w:.1}" height="18" rx="3" fill="{fill}"{stroke}><title>{} ({}): {}, {}</title></rect>"##,
            x(a),
            y,
            esc(&s.step),
            esc(&s.action),
            esc(s.state.as_str()),
            esc(&seconds(s.duration_s)),
            critical = if s.critical { " critical" } else { "" },
            live = if running { " running" } else { "" },
        );
    }
    let mut marker = |at: Option<f64>, label: &str, colour: &str| {
        if let Some(t) = at {
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" y1="30" x2="{0:.1}" y2="{1:.1}" stroke="{colour}" stroke-dasharray="4 3"/><text x="{0:.1}" y="{2:.1}" font-size="11" text-anchor="middle" fill="{colour}">{3}</text>"##,
                x(t),
                height - 24.0,
                height - 10.0,
                esc(label)
            );
        }
    };
    marker(Some(0.0), "incident", "#c0392b");
    marker(offset(f.outage_declared.as_deref()), "declared", "#d35400");
    marker(offset(f.service_restored.as_deref()), "restored", "#1f3a93");
    svg.push_str("</svg>");
    svg
}

/// The report as one self-contained HTML page.
pub fn html(f: &Figures) -> String {
    let row = |name: &str, m: &Measured| {
        let class = match m.verdict {
            "met" => "met",
            "breached" => "breached",
            _ => "unknown",
        };
        format!(
            r#"<tr><th>{name}</th><td class="{class}">{}</td><td>{}</td><td class="{class}">{}</td><td>{}</td></tr>"#,
            esc(&seconds(m.seconds)),
            esc(&seconds(m.target_s)),
            esc(&verdict(m)),
            esc(&m.how)
        )
    };
    let steps: String = f
        .steps
        .iter()
        .map(|s| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.step),
                esc(&s.action),
                esc(s.state.as_str()),
                esc(s.start.as_deref().unwrap_or("-")),
                esc(&seconds(s.duration_s)),
                s.attempts,
                if s.critical { "yes" } else { "" }
            )
        })
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lifeboat run {run}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
.met {{ color: #1e7a46; font-weight: 600; }}
.breached {{ color: #b03a2e; font-weight: 600; }}
.unknown {{ color: #666; }}
.note {{ color: #555; }}
</style>
</head>
<body>
<h1>Run {run}: {runbook}</h1>
<p>{mode} mode{drill}, {state}. Incident start {incident} ({source}).</p>
<table>
<tr><th></th><th>achieved</th><th>target</th><th>verdict</th><th>how</th></tr>
{rto}
{rpo}
</table>
<p class="note">RTO breakdown: detection {detection}, decision {decision} (approval waits included), execution {execution}. Critical path: {critical}.</p>
{substitutions}{accounts}<h2>Timeline</h2>
{svg}
<table>
<tr><th>step</th><th>action</th><th>state</th><th>start</th><th>duration</th><th>attempts</th><th>critical</th></tr>
{steps}
</table>
</body>
</html>
"#,
        run = esc(&f.run),
        runbook = esc(&f.runbook),
        mode = esc(&f.mode),
        drill = if f.mode == "drill" { " (a drill)" } else { "" },
        substitutions = if f.substitutions.is_empty() {
            String::new()
        } else {
            format!(
                "<h2>Drill substitutions</h2>\n<ul>\n{}</ul>\n",
                f.substitutions
                    .iter()
                    .map(|s| format!("<li><code>{}</code>: {}</li>\n", esc(&s.step), esc(&s.note)))
                    .collect::<String>()
            )
        },
        accounts = if f.accounts.is_empty() {
            String::new()
        } else {
            format!(
                "<h2>Accounts</h2>\n<ul>\n{}</ul>\n",
                f.accounts
                    .iter()
                    .map(|a| format!(
                        "<li><code>{}</code> acted as {} (account {})</li>\n",
                        esc(&a.step),
                        esc(&a.acting_as),
                        esc(&a.account)
                    ))
                    .collect::<String>()
            )
        },
        state = esc(f.state.as_str()),
        incident = esc(&f.incident_start),
        source = esc(&f.incident_source),
        rto = row("RTO", &f.rto),
        rpo = row("RPO", &f.rpo),
        detection = esc(&seconds(f.breakdown.detection_s)),
        decision = esc(&seconds(f.breakdown.decision_s)),
        execution = esc(&seconds(f.breakdown.execution_s)),
        critical = if f.critical_path.is_empty() {
            "none (service not restored)".to_string()
        } else {
            esc(&f.critical_path.join(" → "))
        },
        svg = timeline_svg(f),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(seconds(None), "n/a");
        assert_eq!(seconds(Some(4.25)), "4.2 s");
        assert_eq!(seconds(Some(95.0)), "1m35s");
        assert_eq!(seconds(Some(7260.0)), "2h01m");
        assert_eq!(seconds(Some(899.6)), "15m00s");
        assert_eq!(seconds(Some(-75.0)), "-1m15s");
    }

    #[test]
    fn text_is_escaped_in_markup() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
