//! Dashboard sessions: signing in with an API key that has the `admin`
//! scope yields a random session id (an `HttpOnly`, `SameSite=Strict`
//! cookie) and a CSRF token the page sends on every action. Sessions live
//! in memory for [`TTL`]; failed sign-ins are limited per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "toolmesh_session";

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How long a session lasts.
pub const TTL: Duration = Duration::from_secs(12 * 3600);

/// Most sessions at once (the oldest go first).
const MAX_SESSIONS: usize = 1_000;

/// Failed sign-ins allowed per address per [`FAILURE_WINDOW`].
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    /// The API key's client name.
    pub client: String,
    /// The token actions must carry.
    pub csrf: String,
    expires: Instant,
}

/// The sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS's randomness; without it no session can be made safely.
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    hex::encode(bytes)
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Compares secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// Whether `ip` may try to sign in now.
    pub fn may_try(&self, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else {
            return true;
        };
        let mut failures = locked(&self.failures);
        match failures.get(&ip) {
            Some((since, n)) if since.elapsed() < FAILURE_WINDOW => *n < MAX_FAILURES,
            Some(_) => {
                failures.remove(&ip);
                true
            }
            None => true,
        }
    }

    /// Counts a failed sign-in from `ip`.
    pub fn failed(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else {
            return;
        };
        let mut failures = locked(&self.failures);
        if failures.len() > 10_000 {
            failures.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures.entry(ip).or_insert((Instant::now(), 0));
        entry.1 += 1;
    }

    /// Starts a session for `client`: its id (the cookie) and the session.
    /// `None` if the OS gave no randomness.
    pub fn start(&self, client: String) -> Option<(String, Session)> {
        let id = random_token();
        let csrf = random_token();
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let session = Session {
            client,
            csrf,
            expires: Instant::now() + TTL,
        };
        let mut sessions = locked(&self.sessions);
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The live session with id `id`.
    pub fn get(&self, id: &str) -> Option<Session> {
        let sessions = locked(&self.sessions);
        let session = sessions.get(id)?;
        (session.expires > Instant::now()).then(|| session.clone())
    }

    /// Whether `token` is `session`'s CSRF token.
    pub fn csrf_ok(session: &Session, token: Option<&str>) -> bool {
        token.is_some_and(|t| same(t, &session.csrf))
    }

    /// Ends session `id`.
    pub fn end(&self, id: &str) {
        locked(&self.sessions).remove(id);
    }
}

/// The session id in a `Cookie` header's value.
pub fn from_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|pair| pair.strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_check_csrf_and_end() {
        let sessions = Sessions::default();
        let (id, session) = sessions.start("ops".into()).unwrap();
        assert_eq!(id.len(), 64);
        let found = sessions.get(&id).unwrap();
        assert_eq!(found.client, "ops");
        assert!(Sessions::csrf_ok(&found, Some(&session.csrf)));
        assert!(!Sessions::csrf_ok(&found, Some("forged")));
        assert!(!Sessions::csrf_ok(&found, None));
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
        assert!(sessions.get("unknown").is_none());
    }

    #[test]
    fn cookies_are_found_among_others() {
        assert_eq!(from_cookie("a=1; toolmesh_session=abc; b=2"), Some("abc"));
        assert_eq!(from_cookie("toolmesh_sessionx=abc"), None);
        assert_eq!(from_cookie("toolmesh_session="), None);
    }

    #[test]
    fn failed_sign_ins_are_limited_per_address() {
        let sessions = Sessions::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(sessions.may_try(Some(ip)));
            sessions.failed(Some(ip));
        }
        assert!(!sessions.may_try(Some(ip)));
        assert!(sessions.may_try(Some("10.0.0.2".parse().unwrap())));
    }
}
