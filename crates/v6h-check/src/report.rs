//! The check's verdicts: one line per check, printed for humans or as JSON for scripts.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Works.
    Pass,
    /// Works, but not as it should.
    Warn,
    /// Broken.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    /// Stable identifier for scripts (`address`, `route`, `dns`, …).
    pub id: &'static str,
    /// What was checked.
    pub title: String,
    /// The outcome.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// For warnings and failures: the likely cause and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// What was found, as numbers and lists for scripts (`rtt_ms`, `mtu`,
    /// `router_lifetime_s`, `addresses`…), beside the prose in `detail`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<&'static str, serde_json::Value>,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Lines in the order they were checked.
    pub checks: Vec<CheckLine>,
}

impl Report {
    /// Adds a passing line.
    pub fn pass(&mut self, id: &'static str, title: &str, detail: impl Into<String>) {
        self.push(id, title, Verdict::Pass, detail.into(), None);
    }

    /// Adds a warning with a hint.
    pub fn warn(&mut self, id: &'static str, title: &str, detail: impl Into<String>, hint: &str) {
        self.push(
            id,
            title,
            Verdict::Warn,
            detail.into(),
            Some(hint.to_string()),
        );
    }

    /// Adds a failure with a hint.
    pub fn fail(&mut self, id: &'static str, title: &str, detail: impl Into<String>, hint: &str) {
        self.push(
            id,
            title,
            Verdict::Fail,
            detail.into(),
            Some(hint.to_string()),
        );
    }

    fn push(
        &mut self,
        id: &'static str,
        title: &str,
        verdict: Verdict,
        detail: String,
        hint: Option<String>,
    ) {
        self.checks.push(CheckLine {
            id,
            title: title.to_string(),
            verdict,
            detail,
            hint,
            values: BTreeMap::new(),
        });
    }

    /// Adds a machine-readable value to the line added last (nothing when there is none).
    pub fn set(&mut self, key: &'static str, value: impl Into<serde_json::Value>) {
        if let Some(line) = self.checks.last_mut() {
            line.values.insert(key, value.into());
        }
    }

    /// True when no check failed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    /// The line with `id`, if checked.
    pub fn get(&self, id: &str) -> Option<&CheckLine> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The report as aligned text lines.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let tag = match c.verdict {
                Verdict::Pass => "PASS",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
            };
            let _ = writeln!(out, "{tag}  {:<28} {}", c.title, c.detail);
            if let Some(h) = &c.hint {
                let _ = writeln!(out, "      {:<28} hint: {h}", "");
            }
        }
        let (p, w, f) = self.counts();
        let _ = writeln!(out, "{p} passed, {w} warnings, {f} failed");
        out
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        let (passed, warnings, failed) = self.counts();
        serde_json::json!({
            "ok": self.ok(),
            "passed": passed,
            "warnings": warnings,
            "failed": failed,
            "checks": self.checks,
        })
        .to_string()
    }

    fn counts(&self) -> (usize, usize, usize) {
        let n = |v| self.checks.iter().filter(|c| c.verdict == v).count();
        (n(Verdict::Pass), n(Verdict::Warn), n(Verdict::Fail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_make_the_report_fail_and_show_hints() {
        let mut r = Report::default();
        r.pass("address", "Global address", "2001:db8::1");
        assert!(r.ok());
        r.fail(
            "route",
            "Default route",
            "none",
            "no RA received: is the router up?",
        );
        assert!(!r.ok());
        let text = r.to_text();
        assert!(text.contains("FAIL  Default route"), "{text}");
        assert!(text.contains("hint: no RA received"), "{text}");
        assert!(text.ends_with("1 passed, 0 warnings, 1 failed\n"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][1]["verdict"], "fail");
        assert_eq!(json["checks"][0].get("hint"), None);
        assert_eq!(json["checks"][0].get("values"), None);
    }

    #[test]
    fn values_go_to_the_last_line_as_numbers() {
        let mut r = Report::default();
        r.set("ignored", 1);
        r.pass("ping", "ICMPv6 echo", "answered in 1.5 ms");
        r.set("rtt_ms", 1.5);
        r.set("target", "2001:db8::1");
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["checks"][0]["values"]["rtt_ms"], 1.5);
        assert!(json["checks"][0]["values"]["rtt_ms"].is_f64());
        assert_eq!(json["checks"][0]["values"]["target"], "2001:db8::1");
    }
}
