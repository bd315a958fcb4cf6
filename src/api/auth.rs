//! Who is calling and what they may do: bearer tokens from the
//! configuration (RFC 6750), each with a role, and a limiter that answers
//! 429 to an address after too many wrong tokens.
//!
//! The access matrix ([`allows`]) is the one place that says which role
//! may do what; docs/api.md shows it as a table and a test checks every
//! cell.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::state::ApiState;
use crate::config::{AgentId, ApiRole, ApiToken};

/// Wrong tokens from one address (an IPv6 /64) within [`FAILURE_WINDOW`]
/// before it is refused with 429 for the rest of the window.
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; the oldest windows are forgotten first.
const LIMITER_CAPACITY: usize = 10_000;

/// What a request wants to do, for [`allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Agents, queues and calls as they are now; the event stream.
    ReadLive,
    /// Log agents in and out, pause, steer calls, originate, answer offers.
    Steer,
    /// Call records and their CSV export.
    ReadRecords,
    /// Queue and agent reports.
    ReadReports,
    /// Recording search, metadata and audio.
    ReadRecordings,
    DeleteRecordings,
    /// Prometheus metrics.
    ReadMetrics,
}

impl Access {
    pub const ALL: &'static [Access] = &[
        Access::ReadLive,
        Access::Steer,
        Access::ReadRecords,
        Access::ReadReports,
        Access::ReadRecordings,
        Access::DeleteRecordings,
        Access::ReadMetrics,
    ];
}

/// Whether `role` may do `access` at all. An agent's access is further
/// limited to its own state, calls and records by the handlers.
pub fn allows(role: &ApiRole, access: Access) -> bool {
    use Access::*;
    match role {
        ApiRole::Admin => true,
        // Sees and steers everything live and reads the history; recordings
        // are for quality staff (give a coaching supervisor a qa token too).
        ApiRole::Supervisor => matches!(
            access,
            ReadLive | Steer | ReadRecords | ReadReports | ReadMetrics
        ),
        ApiRole::Qa => matches!(
            access,
            ReadLive | ReadRecords | ReadReports | ReadRecordings
        ),
        ApiRole::Agent(_) => matches!(access, ReadLive | Steer | ReadRecords),
    }
}

/// An authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: ApiRole,
}

impl Caller {
    /// The agent an agent token is bound to; `None` for the other roles.
    pub fn agent(&self) -> Option<&AgentId> {
        match &self.role {
            ApiRole::Agent(id) => Some(id),
            _ => None,
        }
    }

    /// 403 unless the role allows `access`.
    pub fn require(&self, access: Access) -> Result<(), ApiError> {
        if allows(&self.role, access) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not {}",
                self.role.name(),
                describe(access)
            )))
        }
    }

    /// 403 if this is an agent token for another agent than `agent`.
    pub fn require_self_or_above(&self, agent: &str) -> Result<(), ApiError> {
        match self.agent() {
            Some(me) if me.as_str() != agent => Err(ApiError::forbidden(format!(
                "an agent token for {me} may not act for agent {agent}"
            ))),
            _ => Ok(()),
        }
    }
}

fn describe(access: Access) -> &'static str {
    match access {
        Access::ReadLive => "read live state",
        Access::Steer => "steer agents or calls",
        Access::ReadRecords => "read call records",
        Access::ReadReports => "read reports",
        Access::ReadRecordings => "read recordings",
        Access::DeleteRecordings => "delete recordings",
        Access::ReadMetrics => "read metrics",
    }
}

/// The configured tokens, kept as SHA-256 digests so that every comparison
/// is over 32 bytes in constant time, whatever the token's length.
pub struct TokenTable {
    tokens: Vec<([u8; 32], ApiRole)>,
}

impl TokenTable {
    pub fn new(tokens: &[ApiToken]) -> Self {
        TokenTable {
            tokens: tokens
                .iter()
                .map(|t| (digest(t.token.expose()), t.role.clone()))
                .collect(),
        }
    }

    /// The role of `presented`. Every configured token is compared, so the
    /// time taken does not depend on which one (if any) matches.
    pub fn lookup(&self, presented: &str) -> Option<ApiRole> {
        let d = digest(presented);
        let mut found = None;
        for (token, role) in &self.tokens {
            if bool::from(token.ct_eq(&d)) {
                found = Some(role.clone());
            }
        }
        found
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Failed authentications per source address, in fixed windows. Sans-IO:
/// the caller passes `now`.
pub struct AuthLimiter {
    max: u32,
    window: Duration,
    capacity: usize,
    entries: HashMap<IpAddr, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    since: Instant,
    failures: u32,
}

impl AuthLimiter {
    pub fn new(max: u32, window: Duration, capacity: usize) -> Self {
        AuthLimiter {
            max: max.max(1),
            window,
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// `Err(retry after)` while `ip` is blocked.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = key(ip);
        match self.entries.get(&key) {
            Some(w) if now.saturating_duration_since(w.since) >= self.window => {
                self.entries.remove(&key);
                Ok(())
            }
            Some(w) if w.failures >= self.max => {
                Err(self.window - now.saturating_duration_since(w.since))
            }
            _ => Ok(()),
        }
    }

    /// One more wrong token from `ip`.
    pub fn fail(&mut self, ip: IpAddr, now: Instant) {
        let key = key(ip);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let window = self.window;
            self.entries
                .retain(|_, w| now.saturating_duration_since(w.since) < window);
            if self.entries.len() >= self.capacity {
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, w)| w.since)
                    .map(|(k, _)| *k)
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        let w = self.entries.entry(key).or_insert(Window {
            since: now,
            failures: 0,
        });
        if now.saturating_duration_since(w.since) >= self.window {
            *w = Window {
                since: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

impl Default for AuthLimiter {
    fn default() -> Self {
        AuthLimiter::new(MAX_FAILURES, FAILURE_WINDOW, LIMITER_CAPACITY)
    }
}

/// IPv4 addresses count alone (also when mapped into IPv6); IPv6 ones by
/// their /64, which one host usually has whole.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Authenticates a request from its `Authorization: Bearer` header or,
/// when `query_token` is given (the event stream, for browsers, which
/// cannot set headers on a WebSocket), from that.
pub fn authenticate(
    state: &ApiState,
    parts: &Parts,
    query_token: Option<&str>,
) -> Result<Caller, ApiError> {
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip());
    let now = Instant::now();
    if let Err(wait) = lock(&state.limiter).check(ip, now) {
        state.counters.rate_limited.inc();
        // Rounded up: retrying at the advertised second must succeed.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err(ApiError::RateLimited {
            retry_after_secs: secs.max(1),
        });
    }
    let header_token = match parts.headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            // RFC 7235 §2.1: the scheme is case-insensitive.
            let text = value.to_str().unwrap_or("");
            match text.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    Some(token.trim())
                }
                _ => None,
            }
        }
    };
    let Some(token) = header_token.or(query_token).filter(|t| !t.is_empty()) else {
        return Err(ApiError::MissingToken);
    };
    match state.tokens.lookup(token) {
        Some(role) => Ok(Caller { role }),
        None => {
            state.counters.auth_failures.inc();
            lock(&state.limiter).fail(ip, now);
            Err(ApiError::InvalidToken)
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        authenticate(state, parts, None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Secret;

    #[test]
    fn tokens_are_found_by_value_only() {
        let table = TokenTable::new(&[
            ApiToken {
                token: Secret::new("admin-demo"),
                role: ApiRole::Admin,
            },
            ApiToken {
                token: Secret::new("agent-1001-demo"),
                role: ApiRole::Agent("1001".parse().unwrap()),
            },
        ]);
        assert_eq!(table.lookup("admin-demo"), Some(ApiRole::Admin));
        assert_eq!(
            table.lookup("agent-1001-demo"),
            Some(ApiRole::Agent("1001".parse().unwrap()))
        );
        for wrong in ["", "admin-dem", "admin-demo ", "ADMIN-DEMO", "admin-demoo"] {
            assert_eq!(table.lookup(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn limiter_blocks_after_max_failures_for_the_rest_of_the_window() {
        let t0 = Instant::now();
        let mut l = AuthLimiter::new(3, Duration::from_secs(60), 100);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..3 {
            assert_eq!(l.check(ip, t0 + Duration::from_secs(i)), Ok(()));
            l.fail(ip, t0 + Duration::from_secs(i));
        }
        assert_eq!(
            l.check(ip, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert_eq!(l.check(other, t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(l.check(ip, t0 + Duration::from_secs(60)), Ok(()));
        // A new window starts from zero.
        l.fail(ip, t0 + Duration::from_secs(61));
        assert_eq!(l.check(ip, t0 + Duration::from_secs(62)), Ok(()));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let t0 = Instant::now();
        let mut l = AuthLimiter::new(2, Duration::from_secs(60), 100);
        l.fail("2001:db8:1:2::1".parse().unwrap(), t0);
        l.fail("2001:db8:1:2:ffff::9".parse().unwrap(), t0);
        assert!(l.check("2001:db8:1:2::77".parse().unwrap(), t0).is_err());
        assert!(l.check("2001:db8:1:3::1".parse().unwrap(), t0).is_ok());
        l.fail("::ffff:192.0.2.9".parse().unwrap(), t0);
        l.fail("192.0.2.9".parse().unwrap(), t0);
        assert!(l.check("192.0.2.9".parse().unwrap(), t0).is_err());
    }

    #[test]
    fn limiter_memory_is_bounded() {
        let t0 = Instant::now();
        let mut l = AuthLimiter::new(1, Duration::from_secs(60), 3);
        for i in 0..10u8 {
            l.fail(
                IpAddr::from([192, 0, 2, i]),
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert!(l.entries.len() <= 3);
        // The newest are still blocked.
        assert!(l.check(IpAddr::from([192, 0, 2, 9]), t0).is_err());
    }

    #[test]
    fn access_matrix() {
        use Access::*;
        let agent = ApiRole::Agent("1001".parse().unwrap());
        let rows: [(&ApiRole, &[Access]); 4] = [
            (&ApiRole::Admin, Access::ALL),
            (
                &ApiRole::Supervisor,
                &[ReadLive, Steer, ReadRecords, ReadReports, ReadMetrics],
            ),
            (
                &ApiRole::Qa,
                &[ReadLive, ReadRecords, ReadReports, ReadRecordings],
            ),
            (&agent, &[ReadLive, Steer, ReadRecords]),
        ];
        for (role, granted) in rows {
            for access in Access::ALL {
                assert_eq!(
                    allows(role, *access),
                    granted.contains(access),
                    "{role:?} {access:?}"
                );
            }
        }
    }
}
