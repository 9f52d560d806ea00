//! Circuit breakers: one per plugin. Calls that fail in the host's eyes
//! (a trap, a quota hit, a host error; not a tool error the plugin returns
//! on purpose, not a refusal, not a cancellation) are counted in a sliding
//! window; when there are at least `failures` of them and they are at
//! least `ratio` of the window's calls, the breaker opens: calls are
//! refused at once until `cooldown` has passed. Then it half-opens: one
//! call goes through as a probe, and its success closes the breaker (its
//! failure opens it again).
//!
//! The policy is the plugin's level's (`[levels.NAME.breaker]`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use crate::level::BreakerPolicy;

/// A breaker's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One probe call is (or may be) in flight.
    HalfOpen,
}

/// Why a call may not go through now.
#[derive(Debug, Clone, PartialEq)]
pub struct Tripped {
    /// How long until it lets a probe through.
    pub retry_in: Duration,
    /// What opened it.
    pub reason: String,
}

/// What the breaker decided about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// An ordinary call.
    Normal,
    /// The half-open probe: its outcome decides.
    Probe,
}

/// A change the caller should record as a lifecycle event.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// It opened, for this reason.
    Opened(String),
    /// It let a probe through.
    HalfOpened,
    /// It closed.
    Closed,
}

/// A breaker's state, for views.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerView {
    /// Where it is.
    pub state: Position,
    /// Failures in the current window.
    pub failures: u32,
    /// When it lets a probe through (Unix ms), if open.
    pub retry_at_ms: Option<u64>,
    /// What opened it, if open or half-open.
    pub reason: Option<String>,
}

/// Calls and failures in one slice of the window: slice `epoch` covers
/// `[base + epoch * width, base + (epoch + 1) * width)`.
#[derive(Debug, Clone, Copy, Default)]
struct Slice {
    epoch: u64,
    calls: u32,
    failures: u32,
}

const SLICES: usize = 10;

#[derive(Debug)]
struct State {
    base: Instant,
    policy: BreakerPolicy,
    position: Position,
    slices: [Slice; SLICES],
    open_until: Option<Instant>,
    probe_in_flight: bool,
    reason: Option<String>,
}

/// One plugin's breaker.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
}

impl Breaker {
    /// A closed breaker under `policy`.
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            state: Mutex::new(State {
                base: Instant::now(),
                policy,
                position: Position::Closed,
                slices: [Slice::default(); SLICES],
                open_until: None,
                probe_in_flight: false,
                reason: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Applies a new policy (the plugin was reloaded at another level).
    pub fn set_policy(&self, policy: BreakerPolicy) {
        self.lock().policy = policy;
    }

    /// Whether a call may start at `now`.
    pub fn admit(&self, now: Instant) -> Result<(Pass, Option<Transition>), Tripped> {
        let mut s = self.lock();
        match s.position {
            Position::Closed => Ok((Pass::Normal, None)),
            Position::Open => {
                let until = s.open_until.unwrap_or(now);
                if now < until {
                    return Err(Tripped {
                        retry_in: until - now,
                        reason: s.reason.clone().unwrap_or_default(),
                    });
                }
                s.position = Position::HalfOpen;
                s.probe_in_flight = true;
                Ok((Pass::Probe, Some(Transition::HalfOpened)))
            }
            Position::HalfOpen if s.probe_in_flight => Err(Tripped {
                retry_in: Duration::ZERO,
                reason: format!(
                    "{} (a probe call is deciding whether it closes)",
                    s.reason.clone().unwrap_or_default()
                ),
            }),
            Position::HalfOpen => {
                s.probe_in_flight = true;
                Ok((Pass::Probe, None))
            }
        }
    }

    /// Lets the next call probe instead of this one (it ended without
    /// saying anything about the plugin).
    pub fn release(&self) {
        self.lock().probe_in_flight = false;
    }

    /// Records how an admitted call ended (`failed`: in the host's eyes).
    pub fn record(&self, pass: Pass, failed: bool, now: Instant) -> Option<Transition> {
        let mut s = self.lock();
        if pass == Pass::Probe {
            s.probe_in_flight = false;
            if failed {
                return Some(open(&mut s, now, "the probe call failed too".to_owned()));
            }
            s.position = Position::Closed;
            s.slices = [Slice::default(); SLICES];
            s.reason = None;
            s.open_until = None;
            return Some(Transition::Closed);
        }
        if s.position != Position::Closed {
            return None;
        }
        let epoch = epoch_of(&s, now);
        let slice = &mut s.slices[(epoch % SLICES as u64) as usize];
        if slice.epoch != epoch {
            *slice = Slice {
                epoch,
                ..Slice::default()
            };
        }
        slice.calls += 1;
        slice.failures += u32::from(failed);
        if !failed {
            return None;
        }
        let (calls, failures) = totals(&s, now);
        let ratio = f64::from(failures) / f64::from(calls.max(1));
        if failures >= s.policy.failures && ratio >= s.policy.ratio {
            let reason = format!(
                "{failures} of the last {calls} calls failed (traps, quota hits or host errors) \
                 within {} s",
                s.policy.window.as_secs_f64()
            );
            return Some(open(&mut s, now, reason));
        }
        None
    }

    /// Where it is now.
    pub fn view(&self, now: Instant, now_ms: u64) -> BreakerView {
        let s = self.lock();
        let failures = if s.position == Position::Closed {
            totals(&s, now).1
        } else {
            0
        };
        BreakerView {
            state: s.position,
            failures,
            retry_at_ms: s
                .open_until
                .filter(|_| s.position == Position::Open)
                .map(|until| now_ms + until.saturating_duration_since(now).as_millis() as u64),
            reason: s.reason.clone(),
        }
    }
}

fn open(s: &mut State, now: Instant, reason: String) -> Transition {
    s.position = Position::Open;
    s.open_until = Some(now + s.policy.cooldown);
    s.reason = Some(reason.clone());
    Transition::Opened(reason)
}

fn width(s: &State) -> Duration {
    (s.policy.window / SLICES as u32).max(Duration::from_millis(1))
}

/// The number of the slice `now` falls in.
fn epoch_of(s: &State, now: Instant) -> u64 {
    (now.saturating_duration_since(s.base).as_nanos() / width(s).as_nanos()) as u64
}

/// Calls and failures in the window that ends at `now`.
fn totals(s: &State, now: Instant) -> (u32, u32) {
    let epoch = epoch_of(s, now);
    let oldest = epoch.saturating_sub(SLICES as u64 - 1);
    s.slices
        .iter()
        .filter(|slice| (slice.calls > 0) && slice.epoch >= oldest && slice.epoch <= epoch)
        .fold((0, 0), |(c, f), slice| {
            (c + slice.calls, f + slice.failures)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            failures: 3,
            window: Duration::from_secs(10),
            ratio: 0.5,
            cooldown: Duration::from_secs(5),
        }
    }

    #[test]
    fn opens_on_enough_failures_refuses_then_probes_and_closes() {
        let b = Breaker::new(policy());
        let t = Instant::now();
        for _ in 0..2 {
            assert_eq!(b.record(Pass::Normal, true, t), None);
        }
        let opened = b.record(Pass::Normal, true, t);
        assert!(matches!(opened, Some(Transition::Opened(_))), "{opened:?}");
        let tripped = b.admit(t + Duration::from_secs(1)).unwrap_err();
        assert_eq!(tripped.retry_in, Duration::from_secs(4));
        assert!(
            tripped.reason.contains("3 of the last 3"),
            "{}",
            tripped.reason
        );
        let after = t + Duration::from_secs(6);
        let (pass, change) = b.admit(after).unwrap();
        assert_eq!((pass, change), (Pass::Probe, Some(Transition::HalfOpened)));
        // While the probe runs, others are refused.
        assert!(b.admit(after).is_err());
        assert_eq!(
            b.record(Pass::Probe, false, after),
            Some(Transition::Closed)
        );
        assert_eq!(b.admit(after).unwrap().0, Pass::Normal);
        assert_eq!(b.view(after, 0).state, Position::Closed);
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let b = Breaker::new(policy());
        let t = Instant::now();
        for _ in 0..3 {
            b.record(Pass::Normal, true, t);
        }
        let later = t + Duration::from_secs(5);
        let (pass, _) = b.admit(later).unwrap();
        assert!(matches!(
            b.record(pass, true, later),
            Some(Transition::Opened(_))
        ));
        assert!(b.admit(later + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn successes_keep_the_ratio_under_and_old_failures_expire() {
        let b = Breaker::new(policy());
        let t = Instant::now();
        for _ in 0..10 {
            b.record(Pass::Normal, false, t);
        }
        for _ in 0..4 {
            assert_eq!(
                b.record(Pass::Normal, true, t),
                None,
                "4 of 14 is under 50%"
            );
        }
        // Twenty seconds on, the window holds none of them.
        let later = t + Duration::from_secs(20);
        assert_eq!(b.view(later, 0).failures, 0);
        b.record(Pass::Normal, true, later);
        b.record(Pass::Normal, true, later);
        assert!(matches!(
            b.record(Pass::Normal, true, later),
            Some(Transition::Opened(_))
        ));
    }
}
