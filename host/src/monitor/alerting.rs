//! Alert rules (`[[alerts]]` in `toolmesh.toml`) and their evaluation.
//! Rules on rates are checked against each history rollup; the others fire
//! on events: a breaker that opens, a threshold alert the budget plugin
//! records, a peer that is lost. A raised alert goes to the
//! [`crate::ops::alerts`] store (recorded, logged, shown, acknowledged).
//!
//! ```toml
//! [[alerts]]
//! name = "hello-errors"
//! kind = "error_ratio"   # error_ratio, p99_ms, quota_hits, breaker_opened, budget, peer_lost
//! threshold = 0.2
//! plugin = "hello"       # optional: only this plugin (rate rules, breaker_opened)
//! min_calls = 10         # error_ratio: fewest calls in the interval to judge
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::history::Rollup;
use crate::ops::Operations;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A plugin's share of failed calls in a rollup reaches `threshold`.
    ErrorRatio,
    /// A plugin's slowest tool's p99 in a rollup exceeds `threshold` ms.
    P99Ms,
    /// A plugin's calls ended by quotas in a rollup reach `threshold`.
    QuotaHits,
    /// A plugin's circuit breaker opens.
    BreakerOpened,
    /// The budget plugin records a threshold alert.
    Budget,
    /// A connected peer is lost.
    PeerLost,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Its name (alerts carry it).
    pub name: String,
    /// What it watches.
    pub kind: RuleKind,
    /// The limit (ratio 0..1, milliseconds, or a count; default 1 for counts).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Only this plugin.
    #[serde(default)]
    pub plugin: Option<String>,
    /// `error_ratio`: fewest calls in the interval to judge (default 10).
    #[serde(default)]
    pub min_calls: Option<u64>,
}

impl AlertRule {
    /// Why the rule cannot be used, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > 128 {
            return Err("an alert rule needs a `name` of 1 to 128 bytes".into());
        }
        let needs_threshold = matches!(self.kind, RuleKind::ErrorRatio | RuleKind::P99Ms);
        match self.threshold {
            None if needs_threshold => Err(format!(
                "alert rule `{}` ({:?}) needs a `threshold`",
                self.name, self.kind
            )),
            Some(t) if !t.is_finite() || t < 0.0 => Err(format!(
                "alert rule `{}`: the threshold must be a non-negative number",
                self.name
            )),
            Some(t) if self.kind == RuleKind::ErrorRatio && t > 1.0 => Err(format!(
                "alert rule `{}`: an error ratio threshold is between 0 and 1",
                self.name
            )),
            _ => Ok(()),
        }
    }

    fn applies_to(&self, plugin: &str) -> bool {
        self.plugin.as_deref().is_none_or(|p| p == plugin)
    }
}

/// Checks the rate rules against `rollup`; raises what they find.
pub fn check_rollup(rules: &[AlertRule], rollup: &Rollup, ops: &Operations) {
    #[derive(Default)]
    struct PerPlugin {
        calls: u64,
        errors: u64,
        quota_hits: u64,
        p99_us: u64,
    }
    let mut plugins: BTreeMap<&str, PerPlugin> = BTreeMap::new();
    for tool in &rollup.tools {
        let p = plugins.entry(&tool.plugin).or_default();
        p.calls += tool.calls;
        p.errors += tool.errors;
        p.quota_hits += tool.quota_hits;
        p.p99_us = p.p99_us.max(tool.p99_us);
    }
    for rule in rules {
        for (plugin, p) in plugins.iter().filter(|(name, _)| rule.applies_to(name)) {
            let message = match rule.kind {
                RuleKind::ErrorRatio => {
                    let threshold = rule.threshold.unwrap_or(1.0);
                    let ratio = p.errors as f64 / p.calls.max(1) as f64;
                    (p.calls >= rule.min_calls.unwrap_or(10) && ratio >= threshold).then(|| {
                        format!(
                            "plugin `{plugin}`: {} of {} calls failed ({:.0}%, the rule's \
                             threshold is {:.0}%) in {} s",
                            p.errors,
                            p.calls,
                            ratio * 100.0,
                            threshold * 100.0,
                            rollup.step_s
                        )
                    })
                }
                RuleKind::P99Ms => {
                    let threshold = rule.threshold.unwrap_or(f64::MAX);
                    let p99_ms = p.p99_us as f64 / 1000.0;
                    (p99_ms > threshold).then(|| {
                        format!(
                            "plugin `{plugin}`: p99 latency {p99_ms:.1} ms (the rule's \
                             threshold is {threshold} ms) in {} s",
                            rollup.step_s
                        )
                    })
                }
                RuleKind::QuotaHits => {
                    let threshold = rule.threshold.unwrap_or(1.0);
                    (p.quota_hits as f64 >= threshold).then(|| {
                        format!(
                            "plugin `{plugin}`: {} calls ended by a quota in {} s",
                            p.quota_hits, rollup.step_s
                        )
                    })
                }
                _ => None,
            };
            if let Some(message) = message {
                ops.alerts.raise(&rule.name, plugin, message);
            }
        }
    }
}

/// Raises `breaker_opened` alerts for a breaker that opened.
pub fn breaker_opened(rules: &[AlertRule], plugin: &str, reason: &str, ops: &Operations) {
    for rule in rules
        .iter()
        .filter(|r| r.kind == RuleKind::BreakerOpened && r.applies_to(plugin))
    {
        ops.alerts.raise(
            &rule.name,
            plugin,
            format!("plugin `{plugin}`'s circuit breaker opened: {reason}"),
        );
    }
}

/// Raises `budget` alerts for a threshold alert of the budget plugin.
pub fn budget_alert(rules: &[AlertRule], alert: &serde_json::Value, ops: &Operations) {
    let budget = alert["budget"].as_str().unwrap_or("?");
    let threshold = alert["threshold"].as_f64().unwrap_or(0.0);
    let subject = format!("budget {budget} at {:.0}%", threshold * 100.0);
    for rule in rules.iter().filter(|r| r.kind == RuleKind::Budget) {
        ops.alerts.raise(
            &rule.name,
            &subject,
            format!(
                "budget `{budget}` crossed {:.0}% of its limit: {} of {} spent",
                threshold * 100.0,
                alert["spent"],
                alert["limit"]
            ),
        );
    }
}

/// Raises `peer_lost` alerts for peers connected before and not now.
pub fn peers_lost(
    rules: &[AlertRule],
    before: &BTreeSet<String>,
    now: &BTreeSet<String>,
    ops: &Operations,
) {
    for lost in before.difference(now) {
        for rule in rules.iter().filter(|r| r.kind == RuleKind::PeerLost) {
            ops.alerts.raise(
                &rule.name,
                lost,
                format!("peer {lost} is no longer connected"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::history::ToolPoint;

    fn rule(kind: RuleKind, threshold: f64) -> AlertRule {
        AlertRule {
            name: format!("{kind:?}"),
            kind,
            threshold: Some(threshold),
            plugin: None,
            min_calls: Some(4),
        }
    }

    #[test]
    fn rate_rules_fire_once_per_subject_until_acknowledged() {
        let ops = Operations::in_memory();
        let rules = [
            rule(RuleKind::ErrorRatio, 0.5),
            rule(RuleKind::P99Ms, 10.0),
            rule(RuleKind::QuotaHits, 2.0),
        ];
        let rollup = Rollup {
            t_ms: 0,
            step_s: 60,
            calls: 10,
            errors: 6,
            quota_hits: 2,
            fuel: 0,
            p50_us: 0,
            p99_us: 0,
            tools: vec![ToolPoint {
                tool: "flaky__run".into(),
                plugin: "flaky".into(),
                calls: 10,
                errors: 6,
                quota_hits: 2,
                fuel: 0,
                p99_us: 20_000,
            }],
        };
        check_rollup(&rules, &rollup, &ops);
        check_rollup(&rules, &rollup, &ops);
        let alerts = ops.alerts.all();
        assert_eq!(alerts.len(), 3, "{alerts:?}");
        assert!(
            alerts
                .iter()
                .any(|a| a.message.contains("6 of 10 calls failed"))
        );
        assert!(rule(RuleKind::ErrorRatio, 2.0).check().is_err());
        let mut unnamed = rule(RuleKind::PeerLost, 1.0);
        unnamed.name.clear();
        assert!(unnamed.check().is_err());
    }

    #[test]
    fn event_rules_fire_for_breakers_budgets_and_lost_peers() {
        let ops = Operations::in_memory();
        let mut only_hello = rule(RuleKind::BreakerOpened, 0.0);
        only_hello.plugin = Some("hello".into());
        let rules = [
            only_hello,
            rule(RuleKind::Budget, 0.0),
            rule(RuleKind::PeerLost, 0.0),
        ];
        breaker_opened(&rules, "neural", "traps", &ops);
        assert!(ops.alerts.all().is_empty(), "the rule is for hello only");
        breaker_opened(&rules, "hello", "5 of 6 calls failed", &ops);
        let alert =
            serde_json::json!({"budget": "team", "threshold": 0.8, "spent": 81, "limit": 100});
        budget_alert(&rules, &alert, &ops);
        let before: BTreeSet<String> = ["a".to_owned(), "b".to_owned()].into();
        let now: BTreeSet<String> = ["b".to_owned()].into();
        peers_lost(&rules, &before, &now, &ops);
        let messages: Vec<String> = ops.alerts.all().into_iter().map(|a| a.message).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("budget `team` crossed 80%")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m == "peer a is no longer connected"),
            "{messages:?}"
        );
    }
}
