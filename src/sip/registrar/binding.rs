//! One registered contact of an agent.

use std::time::{Instant, SystemTime};

use crate::sip::flow::Flow;
use crate::sip::message::{CallId, NameAddr};

#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact as registered, without its `expires` parameter.
    pub contact: NameAddr,
    /// The contact URI as text: the binding's identity within its AOR.
    pub key: String,
    pub call_id: CallId,
    pub cseq: u32,
    pub expires_at: Instant,
    /// The same instant on the wall clock, for persistence across restarts.
    pub expires_wall: SystemTime,
    /// Where the REGISTER came from: requests to this contact go there, so
    /// that phones behind NAT are reached (the Contact may name a private
    /// address).
    pub flow: Flow,
    pub user_agent: Option<String>,
    pub reachable: bool,
    pub missed_qualifies: u32,
    pub next_qualify: Instant,
}

impl Binding {
    pub fn new(
        contact: &NameAddr,
        call_id: CallId,
        cseq: u32,
        (expires_at, expires_wall): (Instant, SystemTime),
        flow: Flow,
        user_agent: Option<String>,
    ) -> Self {
        let mut contact = contact.clone();
        contact.params.remove("expires");
        Binding {
            key: Binding::key_of(&contact),
            contact,
            call_id,
            cseq,
            expires_at,
            expires_wall,
            flow,
            user_agent,
            reachable: true,
            missed_qualifies: 0,
            next_qualify: expires_at,
        }
    }

    /// Contacts are the same binding when their URIs are (RFC 3261 §10.3
    /// step 7 compares URIs; ours are normalised by parsing, host lower-case).
    pub fn key_of(contact: &NameAddr) -> String {
        contact.uri.to_string()
    }

    /// The Contact to list in a 200, with the remaining time.
    pub fn listed(&self, now: Instant) -> NameAddr {
        let mut c = self.contact.clone();
        let left = self.expires_at.saturating_duration_since(now).as_secs();
        c.params.set("expires", Some(left.to_string()));
        c
    }

    /// The `+sip.instance` parameter (RFC 5626), if any.
    pub fn instance(&self) -> Option<&str> {
        self.contact.params.get("+sip.instance").flatten()
    }
}
