//! When to refresh and when to retry, and the header values that decide it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use crate::sip::message::{Contacts, HeaderName, Params, Response, SipUri, Uri};

/// How long before expiry a refresh is sent, for lifetimes over twice this.
///
/// It covers a whole refresh going wrong in the slow way while the binding
/// still holds: a non-INVITE transaction may take 64*T1 = 32 s to time out
/// (RFC 3261 §17.1.2.2), and a challenge adds a round trip. A margin
/// proportional to the lifetime (10 % of an hour is 6 minutes) would buy
/// nothing more; a fixed one also absorbs the delay between the registrar
/// starting its clock and ours.
pub(super) const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Lifetimes we track are capped at a day: we then refresh at least daily,
/// which any registrar allows, and instant arithmetic stays far from
/// overflow whatever a registrar grants (up to 2^32-1 s, RFC 3261 §20.19).
pub(super) const MAX_TRACKED_LIFETIME: u32 = 24 * 3600;

/// The first retry delay after a failure; it doubles with every further
/// consecutive failure up to [`BACKOFF_MAX`].
pub(super) const BACKOFF_BASE: Duration = Duration::from_secs(30);

/// The longest retry delay: a carrier that is down for hours is still tried
/// twice an hour, and the same bound caps a Retry-After so that a typo or a
/// hostile value cannot park a trunk for days.
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(30 * 60);

/// Jitter takes up to this share (per mille) off a retry delay.
const JITTER_PER_MILLE: u64 = 200;

/// When to refresh a binding of lifetime `granted`, counted from when the
/// REGISTER was sent: [`REFRESH_MARGIN`] before expiry, but never before
/// half the lifetime. A short lifetime (two minutes or less) would leave
/// little or nothing between two refreshes after the margin, so those are
/// refreshed at half-time, leaving the other half for a refresh that fails
/// or is challenged.
pub(super) fn refresh_delay(granted: Duration) -> Duration {
    (granted / 2).max(granted.saturating_sub(REFRESH_MARGIN))
}

/// The delay before retry after the `failures`-th consecutive failure
/// (1-based): [`BACKOFF_BASE`] doubled per further failure, capped at
/// [`BACKOFF_MAX`], minus up to 20 % jitter so that trunks failing together
/// (a carrier outage, a restart) do not retry in lock step. The jitter is a
/// hash of `seed` (the Call-ID, random per registration) and the failure
/// count: different across trunks and runs, reproducible in tests.
pub(super) fn backoff(failures: u32, seed: &str) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let bound = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX);
    let mut hasher = DefaultHasher::new();
    (seed, failures).hash(&mut hasher);
    let per_mille = hasher.finish() % JITTER_PER_MILLE;
    let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(bound_ms - bound_ms / 1000 * per_mille)
}

/// `delta-seconds` (RFC 3261 §25.1) at the start of a header or parameter
/// value: Expires, Min-Expires, Retry-After (which may go on with a comment
/// and parameters, §20.33), a Contact's `expires`. Values beyond 2^32-1
/// count as 2^32-1 (§20.19); no leading digit gives `None`.
pub(super) fn delta_seconds(value: &str) -> Option<u32> {
    let digits = value.trim_start_matches([' ', '\t']);
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    Some(digits[..end].bytes().fold(0u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

/// The lifetime a 2xx grants our contact (RFC 3261 §10.2.4): the `expires`
/// parameter of our Contact in the response, else the Expires header, else
/// what we asked for.
pub(super) fn granted(response: &Response, contact: &Uri, asked: u32) -> u32 {
    if let Contacts::List(list) = &response.headers.contact {
        let ours = list.iter().find(|c| same_uri(&c.uri, contact));
        if let Some(secs) = ours
            .and_then(|c| c.params.get("expires").flatten())
            .and_then(delta_seconds)
        {
            return secs;
        }
    }
    response
        .headers
        .get(&HeaderName::Expires)
        .and_then(delta_seconds)
        .unwrap_or(asked)
}

/// URI equality for finding our contact among those a registrar lists
/// (RFC 3261 §19.1.4, as §10.2.4 asks): scheme, user and password
/// case-sensitively, host and port exactly (an absent port does not equal
/// an explicit 5060), URI parameters by the §19.1.4 rules, headers exactly.
/// Escaped and unescaped forms of the same character are not equated: a
/// registrar echoes what we sent.
pub(super) fn same_uri(a: &Uri, b: &Uri) -> bool {
    match (a, b) {
        (Uri::Sip(a), Uri::Sip(b)) => same_sip_uri(a, b),
        _ => a == b,
    }
}

fn same_sip_uri(a: &SipUri, b: &SipUri) -> bool {
    a.secure == b.secure
        && a.user == b.user
        && a.password == b.password
        && a.host == b.host
        && a.port == b.port
        && a.headers == b.headers
        && params_agree(&a.params, &b.params)
        && params_agree(&b.params, &a.params)
}

/// Every parameter of `a` matches in `b` (case-insensitively) or, absent
/// from `b`, is one that may be ignored: all but `user`, `ttl`, `method` and
/// `maddr`, which never match when only one URI has them.
fn params_agree(a: &Params, b: &Params) -> bool {
    a.iter().all(|(name, value)| match b.get(name) {
        Some(other) => match (value, other) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            (x, y) => x == y,
        },
        None => !["user", "ttl", "method", "maddr"]
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name)),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn refresh_at_half_when_short_else_a_minute_before() {
        assert_eq!(refresh_delay(secs(3600)), secs(3540));
        assert_eq!(refresh_delay(secs(300)), secs(240));
        assert_eq!(refresh_delay(secs(120)), secs(60));
        assert_eq!(refresh_delay(secs(60)), secs(30));
        assert_eq!(refresh_delay(secs(1)), Duration::from_millis(500));
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter() {
        for failures in 1..=12 {
            let bound = BACKOFF_BASE
                .saturating_mul(1 << (failures - 1))
                .min(BACKOFF_MAX);
            let d = backoff(failures, "call-1@gw");
            assert!(d <= bound && d >= bound * 4 / 5, "{failures}: {d:?}");
            assert_eq!(d, backoff(failures, "call-1@gw"), "deterministic");
        }
        assert!(backoff(u32::MAX, "x") <= BACKOFF_MAX);
        // The jitter differs between registrations.
        let spread: std::collections::HashSet<Duration> =
            (0..20).map(|i| backoff(1, &format!("c{i}"))).collect();
        assert!(spread.len() > 10, "{spread:?}");
    }

    #[test]
    fn delta_seconds_forms() {
        assert_eq!(delta_seconds("3600"), Some(3600));
        assert_eq!(
            delta_seconds(" 120 (I'm in a meeting);duration=60"),
            Some(120)
        );
        assert_eq!(delta_seconds("99999999999999999999"), Some(u32::MAX));
        assert_eq!(delta_seconds(""), None);
        assert_eq!(delta_seconds("soon"), None);
        assert_eq!(delta_seconds("-5"), None);
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn uri_comparison_follows_rfc_3261() {
        let ours = uri("sip:gw@192.0.2.10:5060;transport=udp");
        // Host case and other parameters present on one side only.
        assert!(same_uri(
            &uri("sip:gw@192.0.2.10:5060;TRANSPORT=UDP;ob"),
            &ours
        ));
        assert!(same_uri(
            &uri("sip:GW@Gw.Example"),
            &uri("sip:GW@gw.example")
        ));
        for other in [
            "sip:GW@192.0.2.10:5060;transport=udp",
            "sip:gw@192.0.2.10;transport=udp",
            "sip:gw@192.0.2.10:5070;transport=udp",
            "sip:gw@192.0.2.10:5060;transport=tcp",
            "sip:gw@192.0.2.10:5060;transport=udp;maddr=192.0.2.1",
            "sips:gw@192.0.2.10:5060;transport=udp",
            "sip:gw@192.0.2.11:5060;transport=udp",
        ] {
            assert!(!same_uri(&uri(other), &ours), "{other}");
        }
    }
}
