//! `budget`: budgets for tasks or agents. A budget has a limit and,
//! optionally, daily and monthly limits (UTC calendar periods). Agents
//! reserve allocations from it and report spending; spending that would pass
//! any limit is refused with the reason, and changes nothing. When spending
//! crosses the alert threshold (`alert_threshold` in
//! `[plugins.budget.config]`, default 0.8 of the limit, or per budget), the
//! plugin logs a warning and appends an alert record (`alert/<sequence>`).
//!
//! Each budget is one kv entry (`budget/<id>`), changed only by
//! compare-and-swap, so concurrent reports add up exactly. Amounts are whole
//! units (what a unit is, tokens or micro-dollars or fuel, is the operator's
//! choice), at most 10¹⁵.

pub mod period;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolmesh_sdk::{
    Plugin, Resource, ResourceContents, Structured, Template, Tool, ToolError, kv, notify,
};

const BUDGETS: &str = "budget/";
const ALERTS: &str = "alert/";
/// How many alert records are kept.
const MAX_ALERTS: u32 = 10_000;
/// The largest amount or limit accepted.
pub const MAX_AMOUNT: u64 = 1_000_000_000_000_000;

/// `[plugins.budget.config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The fraction of a limit at which an alert fires.
    pub alert_threshold: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            alert_threshold: 0.8,
        }
    }
}

/// A stored budget.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Budget {
    id: String,
    limit: u64,
    daily_limit: Option<u64>,
    monthly_limit: Option<u64>,
    alert_threshold: Option<f64>,
    spent: u64,
    allocations: BTreeMap<String, u64>,
    next_allocation: u64,
    day: String,
    day_spent: u64,
    month: String,
    month_spent: u64,
    alerted: bool,
}

impl Budget {
    fn allocated(&self) -> u64 {
        self.allocations.values().sum()
    }

    fn remaining(&self) -> u64 {
        self.limit
            .saturating_sub(self.spent)
            .saturating_sub(self.allocated())
    }

    /// Starts new periods if the calendar moved on.
    fn roll(&mut self, now: u64) {
        let (day, month) = (period::day(now), period::month(now));
        if self.day != day {
            self.day = day;
            self.day_spent = 0;
        }
        if self.month != month {
            self.month = month;
            self.month_spent = 0;
        }
    }

    fn threshold(&self, settings: &Settings) -> f64 {
        self.alert_threshold.unwrap_or(settings.alert_threshold)
    }

    fn over_threshold(&self, settings: &Settings) -> bool {
        self.limit > 0 && self.spent as f64 >= self.threshold(settings) * self.limit as f64
    }

    fn status(&self, settings: &Settings) -> Status {
        Status {
            id: self.id.clone(),
            limit: self.limit,
            allocated: self.allocated(),
            spent: self.spent,
            remaining: self.remaining(),
            overdrawn: self.spent.saturating_sub(self.limit),
            daily: PeriodStatus {
                period: self.day.clone(),
                limit: self.daily_limit,
                spent: self.day_spent,
            },
            monthly: PeriodStatus {
                period: self.month.clone(),
                limit: self.monthly_limit,
                spent: self.month_spent,
            },
            allocations: self.allocations.clone(),
            alert_threshold: self.threshold(settings),
            alerted: self.alerted,
        }
    }
}

/// A budget as tools report it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Status {
    /// The budget.
    pub id: String,
    /// Its limit.
    pub limit: u64,
    /// Reserved by allocations, not yet spent.
    pub allocated: u64,
    /// Spent so far.
    pub spent: u64,
    /// Neither spent nor allocated.
    pub remaining: u64,
    /// Spent beyond the limit (only metering charges after the fact can do that).
    pub overdrawn: u64,
    /// The current day.
    pub daily: PeriodStatus,
    /// The current month.
    pub monthly: PeriodStatus,
    /// Open allocations: id → amount still reserved.
    pub allocations: BTreeMap<String, u64>,
    /// The fraction of the limit at which an alert fires.
    pub alert_threshold: f64,
    /// Whether the alert has fired (until the limit is raised).
    pub alerted: bool,
}

/// Spending in one calendar period.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PeriodStatus {
    /// `YYYY-MM-DD` or `YYYY-MM` (UTC).
    pub period: String,
    /// The period's limit, if any.
    pub limit: Option<u64>,
    /// Spent in the period.
    pub spent: u64,
}

/// The resource of every budget.
const BUDGETS_URI: &str = "budget://budgets";
/// The resource of the alerts.
const ALERTS_URI: &str = "budget://alerts";

/// Tells subscribers that budget `id` (and so the list) changed.
fn changed(id: &str) {
    notify::resource_updated(BUDGETS_URI);
    notify::resource_updated(&format!("{BUDGETS_URI}/{id}"));
}

/// An alert record.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    /// Its position, from 1.
    #[serde(default)]
    pub seq: u64,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// The budget.
    pub budget: String,
    /// Spent when it fired.
    pub spent: u64,
    /// The limit then.
    pub limit: u64,
    /// The threshold crossed.
    pub threshold: f64,
}

fn settings() -> Result<Settings, ToolError> {
    toolmesh_sdk::config::get()
}

fn check_id(id: &str) -> Result<(), ToolError> {
    toolmesh_sdk::check_id("budget id", id, 128, "._:-@")
}

fn check_amount(name: &str, amount: u64, min: u64) -> Result<(), ToolError> {
    if (min..=MAX_AMOUNT).contains(&amount) {
        Ok(())
    } else {
        Err(ToolError::invalid_arguments(format!(
            "`{name}` must be {min} to {MAX_AMOUNT}, not {amount}"
        )))
    }
}

fn key(id: &str) -> String {
    format!("{BUDGETS}{id}")
}

fn unknown(id: &str) -> ToolError {
    ToolError::invalid_arguments(format!("unknown budget `{id}`: create it with set_budget"))
}

/// Atomically changes budget `id` with `f`, after rolling its periods.
fn update<R>(
    id: &str,
    mut f: impl FnMut(&mut Budget) -> Result<R, ToolError>,
) -> Result<(Budget, R), ToolError> {
    let now = toolmesh_sdk::unix_time_ms();
    kv::update_json(&key(id), |budget: Option<Budget>| {
        let mut budget = budget.ok_or_else(|| unknown(id))?;
        budget.roll(now);
        let result = f(&mut budget)?;
        Ok((Some(budget.clone()), (budget, result)))
    })
}

/// A budget to create, or new limits for one.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetArgs {
    /// The budget (a task's or an agent's id).
    pub id: String,
    /// The total limit.
    pub limit: u64,
    /// A limit per UTC day.
    pub daily_limit: Option<u64>,
    /// A limit per UTC month.
    pub monthly_limit: Option<u64>,
    /// The fraction of the limit at which to alert (0 < t <= 1).
    pub alert_threshold: Option<f64>,
}

fn set_budget(args: SetArgs) -> Result<Structured<Status>, ToolError> {
    let settings = settings()?;
    check_id(&args.id)?;
    toolmesh_sdk::caller::require_admin("set budgets")?;
    check_amount("limit", args.limit, 0)?;
    for (name, limit) in [
        ("daily_limit", args.daily_limit),
        ("monthly_limit", args.monthly_limit),
    ] {
        if let Some(limit) = limit {
            check_amount(name, limit, 0)?;
        }
    }
    if let Some(t) = args.alert_threshold
        && !(t > 0.0 && t <= 1.0)
    {
        return Err(ToolError::invalid_arguments(
            "`alert_threshold` must be above 0 and at most 1",
        ));
    }
    let now = toolmesh_sdk::unix_time_ms();
    let budget = kv::update_json(&key(&args.id), |old: Option<Budget>| {
        let mut budget = old.unwrap_or_else(|| Budget {
            id: args.id.clone(),
            limit: 0,
            daily_limit: None,
            monthly_limit: None,
            alert_threshold: None,
            spent: 0,
            allocations: BTreeMap::new(),
            next_allocation: 1,
            day: period::day(now),
            day_spent: 0,
            month: period::month(now),
            month_spent: 0,
            alerted: false,
        });
        budget.roll(now);
        budget.limit = args.limit;
        budget.daily_limit = args.daily_limit;
        budget.monthly_limit = args.monthly_limit;
        budget.alert_threshold = args.alert_threshold;
        budget.alerted = budget.alerted && budget.over_threshold(&settings);
        Ok((Some(budget.clone()), budget))
    })?;
    changed(&budget.id);
    Ok(Structured(budget.status(&settings)))
}

/// An allocation to reserve.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateArgs {
    /// The budget.
    pub id: String,
    /// How much to reserve.
    pub amount: u64,
}

/// A reserved allocation.
#[derive(Serialize, JsonSchema)]
pub struct Allocation {
    /// Its id, to name in `report_spending`.
    pub allocation: String,
    /// The budget after it.
    pub status: Status,
}

fn allocate(args: AllocateArgs) -> Result<Structured<Allocation>, ToolError> {
    let settings = settings()?;
    check_id(&args.id)?;
    toolmesh_sdk::caller::require_act_for(&args.id, "allocate from a budget")?;
    check_amount("amount", args.amount, 1)?;
    let (budget, allocation) = update(&args.id, |b| {
        if args.amount > b.remaining() {
            return Err(ToolError::denied(format!(
                "cannot allocate {} from `{}`: only {} remain (limit {}, spent {}, allocated {})",
                args.amount,
                b.id,
                b.remaining(),
                b.limit,
                b.spent,
                b.allocated()
            )));
        }
        let id = format!("a{}", b.next_allocation);
        b.next_allocation += 1;
        b.allocations.insert(id.clone(), args.amount);
        Ok(id)
    })?;
    changed(&budget.id);
    Ok(Structured(Allocation {
        allocation,
        status: budget.status(&settings),
    }))
}

/// Spending to record.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendArgs {
    /// The budget.
    pub id: String,
    /// How much was spent.
    pub amount: u64,
    /// The allocation it comes out of first, if any.
    pub allocation: Option<String>,
    /// Record it even past a limit (for charges after the fact, like the
    /// host's metering). Default false.
    #[serde(default)]
    pub allow_overdraft: bool,
}

fn report_spending(args: SpendArgs) -> Result<Structured<Status>, ToolError> {
    let settings = settings()?;
    check_id(&args.id)?;
    toolmesh_sdk::caller::require_act_for(&args.id, "spend from a budget")?;
    check_amount("amount", args.amount, 1)?;
    let (budget, crossed) = update(&args.id, |b| {
        let from_allocation = match &args.allocation {
            Some(a) => {
                let reserved = *b.allocations.get(a).ok_or_else(|| {
                    ToolError::invalid_arguments(format!(
                        "budget `{}` has no open allocation `{a}`",
                        b.id
                    ))
                })?;
                reserved.min(args.amount)
            }
            None => 0,
        };
        let fresh = args.amount - from_allocation;
        if !args.allow_overdraft {
            let refuse = |what: &str, spent: u64, limit: u64| {
                Err(ToolError::denied(format!(
                    "refused: spending {} would bring `{}`'s {what} to {} of its {limit}",
                    args.amount,
                    b.id,
                    spent + args.amount
                )))
            };
            if fresh > b.remaining() {
                return refuse(
                    "total (with allocations)",
                    b.spent + b.allocated() - from_allocation,
                    b.limit,
                );
            }
            if let Some(limit) = b.daily_limit
                && b.day_spent + args.amount > limit
            {
                return refuse("spending today", b.day_spent, limit);
            }
            if let Some(limit) = b.monthly_limit
                && b.month_spent + args.amount > limit
            {
                return refuse("spending this month", b.month_spent, limit);
            }
        }
        if let Some(a) = &args.allocation {
            let left = b.allocations.get(a).copied().unwrap_or(0) - from_allocation;
            if left == 0 {
                b.allocations.remove(a);
            } else {
                b.allocations.insert(a.clone(), left);
            }
        }
        b.spent = b.spent.saturating_add(args.amount);
        b.day_spent = b.day_spent.saturating_add(args.amount);
        b.month_spent = b.month_spent.saturating_add(args.amount);
        let crossed = !b.alerted && b.over_threshold(&settings);
        b.alerted |= crossed;
        Ok(crossed)
    })?;
    if crossed {
        let alert = Alert {
            seq: 0,
            at_ms: toolmesh_sdk::unix_time_ms(),
            budget: budget.id.clone(),
            spent: budget.spent,
            limit: budget.limit,
            threshold: budget.threshold(&settings),
        };
        toolmesh_sdk::log(
            toolmesh_sdk::LogLevel::Warn,
            &format!(
                "budget `{}` crossed {:.0}% of its limit: {} of {} spent",
                alert.budget,
                alert.threshold * 100.0,
                alert.spent,
                alert.limit
            ),
        );
        kv::append_json(ALERTS, &alert, MAX_ALERTS)?;
        notify::resource_updated(ALERTS_URI);
    }
    changed(&budget.id);
    Ok(Structured(budget.status(&settings)))
}

/// A budget's id.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    /// The budget.
    pub id: String,
}

fn status(args: IdArgs) -> Result<Structured<Status>, ToolError> {
    let settings = settings()?;
    check_id(&args.id)?;
    toolmesh_sdk::caller::require_act_for(&args.id, "read a budget")?;
    let mut budget: Budget = kv::get_json(&key(&args.id))?.ok_or_else(|| unknown(&args.id))?;
    budget.roll(toolmesh_sdk::unix_time_ms());
    Ok(Structured(budget.status(&settings)))
}

/// A transfer of limit between budgets.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RebalanceArgs {
    /// The budget that gives.
    pub from: String,
    /// The budget that receives.
    pub to: String,
    /// How much limit moves.
    pub amount: u64,
}

/// Both budgets after a rebalance.
#[derive(Serialize, JsonSchema)]
pub struct Rebalanced {
    /// The giving budget.
    pub from: Status,
    /// The receiving budget.
    pub to: Status,
}

fn rebalance(args: RebalanceArgs) -> Result<Structured<Rebalanced>, ToolError> {
    let settings = settings()?;
    check_id(&args.from)?;
    check_id(&args.to)?;
    toolmesh_sdk::caller::require_admin("rebalance budgets")?;
    check_amount("amount", args.amount, 1)?;
    if args.from == args.to {
        return Err(ToolError::invalid_arguments(
            "`from` and `to` are the same budget",
        ));
    }
    if kv::get(&key(&args.to))?.is_none() {
        return Err(unknown(&args.to));
    }
    let (from, ()) = update(&args.from, |b| {
        if args.amount > b.remaining() {
            return Err(ToolError::denied(format!(
                "cannot move {} from `{}`: only {} remain",
                args.amount,
                b.id,
                b.remaining()
            )));
        }
        b.limit -= args.amount;
        Ok(())
    })?;
    let (to, ()) = update(&args.to, |b| {
        b.limit = b.limit.saturating_add(args.amount);
        b.alerted = b.alerted && b.over_threshold(&settings);
        Ok(())
    })?;
    changed(&from.id);
    changed(&to.id);
    Ok(Structured(Rebalanced {
        from: from.status(&settings),
        to: to.status(&settings),
    }))
}

/// No arguments.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

/// Every budget.
#[derive(Serialize, JsonSchema)]
pub struct Budgets {
    /// By id.
    pub budgets: Vec<Status>,
}

fn list(_: Nothing) -> Result<Structured<Budgets>, ToolError> {
    let settings = settings()?;
    let now = toolmesh_sdk::unix_time_ms();
    let mut budgets = Vec::new();
    for key in kv::list_keys(BUDGETS, u32::MAX)? {
        if let Some(mut budget) = kv::get_json::<Budget>(&key)? {
            budget.roll(now);
            budgets.push(budget.status(&settings));
        }
    }
    Ok(Structured(Budgets { budgets }))
}

/// Alert records.
#[derive(Serialize, JsonSchema)]
pub struct Alerts {
    /// Oldest first.
    pub alerts: Vec<Alert>,
}

fn alerts(_: Nothing) -> Result<Structured<Alerts>, ToolError> {
    let last = kv::log_head(ALERTS)?;
    let mut alerts = Vec::new();
    for seq in last.saturating_sub(999).max(1)..=last {
        if let Some(mut alert) = kv::get_json::<Alert>(&format!("{ALERTS}{seq:020}"))? {
            alert.seq = seq;
            alerts.push(alert);
        }
    }
    Ok(Structured(Alerts { alerts }))
}

/// The plugin's tools.
/// The budgets, one budget and the alerts as resources clients can read
/// and subscribe to (an alert crossing its threshold notifies them).
fn resources(plugin: Plugin) -> Plugin {
    plugin
        .resource(
            Resource::new(BUDGETS_URI, "budgets", |_| {
                Ok(vec![ResourceContents::json(
                    BUDGETS_URI,
                    &list(Nothing {})?.0,
                )?])
            })
            .description("Every budget: limit, allocated, spent, remaining, per period.")
            .mime_type("application/json"),
        )
        .template(
            Template::new(format!("{BUDGETS_URI}/{{id}}"), "budget", |_, uri, vars| {
                let id = vars.get("id")?.to_owned();
                let status = status(IdArgs { id })?;
                Ok(vec![ResourceContents::json(uri, &status.0)?])
            })
            .description("One budget's limit, allocated, spent and remaining amounts.")
            .mime_type("application/json"),
        )
        .resource(
            Resource::new(ALERTS_URI, "alerts", |_| {
                Ok(vec![ResourceContents::json(
                    ALERTS_URI,
                    &alerts(Nothing {})?.0,
                )?])
            })
            .description("Threshold alerts, oldest first; subscribe to hear of new ones.")
            .mime_type("application/json"),
        )
}

pub fn plugin() -> Plugin {
    resources(Plugin::new())
        .tool(Tool::new(
            "set_budget",
            "Creates a budget or sets its limits: total, optional daily and monthly, and the \
             alert threshold.",
            set_budget,
        ))
        .tool(Tool::new(
            "allocate",
            "Reserves an amount from a budget; returns an allocation id.",
            allocate,
        ))
        .tool(Tool::new(
            "report_spending",
            "Records spending against a budget (and an allocation). Refused, with the reason, \
             if it would pass a limit.",
            report_spending,
        ))
        .tool(Tool::new(
            "status",
            "A budget's limit, allocated, spent and remaining amounts, per period.",
            status,
        ))
        .tool(Tool::new(
            "rebalance",
            "Moves limit from one budget to another.",
            rebalance,
        ))
        .tool(Tool::new("list", "Lists every budget.", list))
        .tool(Tool::new("alerts", "Lists threshold alerts.", alerts))
}

toolmesh_sdk::export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn set(id: &str, limit: u64, daily: Option<u64>) -> Status {
        set_budget(SetArgs {
            id: id.into(),
            limit,
            daily_limit: daily,
            monthly_limit: None,
            alert_threshold: None,
        })
        .unwrap()
        .0
    }

    fn spend(id: &str, amount: u64) -> Result<Status, ToolError> {
        report_spending(SpendArgs {
            id: id.into(),
            amount,
            allocation: None,
            allow_overdraft: false,
        })
        .map(|s| s.0)
    }

    #[test]
    fn spending_stops_at_the_limit_and_alerts_once() {
        toolmesh_sdk::config::set_for_tests("{}");
        set("task", 100, None);
        assert_eq!(spend("task", 70).unwrap().remaining, 30);
        assert!(alerts(Nothing {}).unwrap().0.alerts.is_empty());
        let crossed = spend("task", 15).unwrap();
        assert!(crossed.alerted);
        assert_eq!(alerts(Nothing {}).unwrap().0.alerts.len(), 1);
        let refused = spend("task", 16).unwrap_err();
        assert!(
            matches!(&refused, ToolError::Denied(m) if m.contains("would bring `task`'s total")),
            "{refused:?}"
        );
        assert_eq!(status(IdArgs { id: "task".into() }).unwrap().0.spent, 85);
        spend("task", 15).unwrap();
        assert_eq!(alerts(Nothing {}).unwrap().0.alerts.len(), 1, "alerts once");
    }

    #[test]
    fn allocations_reserve_and_are_consumed() {
        toolmesh_sdk::config::set_for_tests("{}");
        set("job", 100, Some(80));
        let a = allocate(AllocateArgs {
            id: "job".into(),
            amount: 60,
        })
        .unwrap()
        .0;
        assert_eq!(a.status.remaining, 40);
        assert!(matches!(
            allocate(AllocateArgs {
                id: "job".into(),
                amount: 41
            }),
            Err(ToolError::Denied(_))
        ));
        let s = report_spending(SpendArgs {
            id: "job".into(),
            amount: 50,
            allocation: Some(a.allocation.clone()),
            allow_overdraft: false,
        })
        .unwrap()
        .0;
        assert_eq!((s.spent, s.allocated, s.remaining), (50, 10, 40));
        // The daily limit (80) binds before the total (40 remain).
        let err = spend("job", 31).unwrap_err();
        assert!(
            matches!(&err, ToolError::Denied(m) if m.contains("today")),
            "{err:?}"
        );
    }

    #[test]
    fn rebalance_moves_limit_and_overdraft_is_recorded() {
        toolmesh_sdk::config::set_for_tests(r#"{"alert_threshold": 0.5}"#);
        set("a", 100, None);
        set("b", 10, None);
        let moved = rebalance(RebalanceArgs {
            from: "a".into(),
            to: "b".into(),
            amount: 40,
        })
        .unwrap()
        .0;
        assert_eq!((moved.from.limit, moved.to.limit), (60, 50));
        let over = report_spending(SpendArgs {
            id: "b".into(),
            amount: 70,
            allocation: None,
            allow_overdraft: true,
        })
        .unwrap()
        .0;
        assert_eq!((over.remaining, over.overdrawn), (0, 20));
        assert!(over.alerted && over.alert_threshold == 0.5);
    }

    #[test]
    fn bad_input_changes_nothing() {
        toolmesh_sdk::config::set_for_tests("{}");
        assert!(
            matches!(spend("ghost", 1), Err(ToolError::InvalidArguments(m)) if m.contains("unknown budget"))
        );
        set("x", 10, None);
        assert!(matches!(spend("x", 0), Err(ToolError::InvalidArguments(_))));
        assert!(matches!(
            spend("x", MAX_AMOUNT + 1),
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(
            set_budget(SetArgs {
                id: "bad id".into(),
                limit: 1,
                daily_limit: None,
                monthly_limit: None,
                alert_threshold: None
            })
            .is_err()
        );
        assert_eq!(status(IdArgs { id: "x".into() }).unwrap().0.spent, 0);
    }
}
