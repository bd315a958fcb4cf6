//! The registrar (RFC 3261 §10.3): agents' contact bindings, their expiry and
//! their reachability (qualify). Sans-IO: authentication is done by the
//! caller, persistence and OPTIONS pings are emitted as events.

mod binding;
mod schedule;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use thiserror::Error;

pub use binding::Binding;
use schedule::Schedule;

use super::flow::Flow;
use super::message::{Contacts, HeaderName, NameAddr, Request};

#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
    /// `None` disables qualify.
    pub qualify_interval: Option<Duration>,
    /// Consecutive unanswered OPTIONS before a contact is unreachable.
    pub qualify_failures: u32,
}

/// Why a REGISTER was refused; each maps to one status code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegisterError {
    #[error("expiry below the minimum of {min} s")]
    IntervalTooBrief { min: u32 },
    #[error("malformed registration: {0}")]
    Malformed(&'static str),
    #[error("request older than the stored binding (RFC 3261 §10.3 step 7)")]
    OutOfOrder,
    #[error("more than {0} contacts")]
    TooManyContacts(usize),
}

impl RegisterError {
    pub fn status(&self) -> u16 {
        match self {
            RegisterError::IntervalTooBrief { .. } => 423,
            RegisterError::Malformed(_) => 400,
            RegisterError::OutOfOrder => 500,
            RegisterError::TooManyContacts(_) => 403,
        }
    }
}

/// What the registrar wants done outside itself.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrarEvent {
    /// A binding was added or refreshed: persist it.
    Updated { aor: String, binding: Box<Binding> },
    /// A binding ended (unregistered or expired): forget it.
    Removed { aor: String, contact: String },
    /// A binding's reachability changed (log it).
    Reachability {
        aor: String,
        contact: String,
        reachable: bool,
    },
}

/// An OPTIONS ping to send (RFC 3261 §11; "qualify").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub aor: String,
    pub contact: String,
    pub flow: Flow,
}

pub struct Registrar {
    config: RegistrarConfig,
    bindings: HashMap<String, Vec<Binding>>,
    /// One expiry and (with qualify on) one probe deadline per binding.
    expiries: Schedule,
    qualifies: Schedule,
    events: VecDeque<RegistrarEvent>,
}

/// Reads a delta-seconds value, saturating huge values (RFC 4475 §3.1.2.4
/// lets a registrar treat out-of-range expiries leniently).
fn parse_expires(value: &str) -> Result<u32, RegisterError> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
        return Err(RegisterError::Malformed("Expires is not a number"));
    }
    Ok(value
        .parse::<u64>()
        .map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX)))
}

impl Registrar {
    pub fn new(config: RegistrarConfig) -> Self {
        Registrar {
            config,
            bindings: HashMap::new(),
            expiries: Schedule::default(),
            qualifies: Schedule::default(),
            events: VecDeque::new(),
        }
    }

    /// Re-installs a binding loaded from the store at start.
    pub fn restore(&mut self, now: Instant, aor: String, mut binding: Binding) {
        self.schedule(now, &aor, &mut binding);
        self.bindings.entry(aor).or_default().push(binding);
    }

    pub fn contacts(&self, aor: &str) -> &[Binding] {
        self.bindings.get(aor).map_or(&[], Vec::as_slice)
    }

    pub fn binding_count(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }

    pub fn poll_event(&mut self) -> Option<RegistrarEvent> {
        self.events.pop_front()
    }

    fn schedule(&mut self, now: Instant, aor: &str, b: &mut Binding) {
        self.expiries.insert(b.expires_at, aor, &b.key);
        if let Some(interval) = self.config.qualify_interval {
            b.next_qualify = now + interval;
            self.qualifies.insert(b.next_qualify, aor, &b.key);
        }
    }

    /// Takes a binding that ends or is replaced off the schedules.
    fn unschedule(&mut self, aor: &str, b: &Binding) {
        self.expiries.remove(b.expires_at, aor, &b.key);
        self.qualifies.remove(b.next_qualify, aor, &b.key);
    }

    /// Entries in the schedules: one per binding and kind (for tests).
    #[cfg(test)]
    fn scheduled(&self) -> (usize, usize) {
        (self.expiries.len(), self.qualifies.len())
    }

    /// Applies an authenticated REGISTER for `aor` (RFC 3261 §10.3 steps 6-8)
    /// and returns the bindings to list in the 200 response.
    pub fn register(
        &mut self,
        now: Instant,
        wall: SystemTime,
        aor: &str,
        req: &Request,
        flow: &Flow,
    ) -> Result<Vec<NameAddr>, RegisterError> {
        let header_expires = match req.headers.get(&HeaderName::Expires) {
            Some(v) => Some(parse_expires(v)?),
            None => None,
        };
        let call_id = &req.headers.call_id;
        let cseq = req.headers.cseq.seq;
        match &req.headers.contact {
            Contacts::Wildcard => {
                // RFC 3261 §10.3 step 6: '*' only with Expires: 0.
                if header_expires != Some(0) {
                    return Err(RegisterError::Malformed("Contact: * needs Expires: 0"));
                }
                let current = self.bindings.get(aor).map_or(&[][..], Vec::as_slice);
                if current
                    .iter()
                    .any(|b| &b.call_id == call_id && cseq <= b.cseq)
                {
                    return Err(RegisterError::OutOfOrder);
                }
                if let Some(removed) = self.bindings.remove(aor) {
                    for b in &removed {
                        self.unschedule(aor, b);
                    }
                    self.events.push_back(RegistrarEvent::Removed {
                        aor: aor.to_owned(),
                        contact: "*".to_owned(),
                    });
                }
            }
            Contacts::List(list) => {
                // Validate everything before changing anything (step 8 is atomic).
                let mut changes = Vec::with_capacity(list.len());
                for contact in list {
                    let expires = match contact.params.get("expires") {
                        Some(Some(v)) => parse_expires(v)?,
                        Some(None) => {
                            return Err(RegisterError::Malformed("expires without value"))
                        }
                        None => header_expires.unwrap_or(self.config.default_expires),
                    };
                    if expires != 0 && expires < self.config.min_expires {
                        return Err(RegisterError::IntervalTooBrief {
                            min: self.config.min_expires,
                        });
                    }
                    changes.push((contact, expires.min(self.config.max_expires)));
                }
                let current = self.bindings.get(aor).map_or(&[][..], Vec::as_slice);
                for (contact, _) in &changes {
                    let key = Binding::key_of(contact);
                    if current
                        .iter()
                        .any(|b| b.key == key && &b.call_id == call_id && cseq <= b.cseq)
                    {
                        return Err(RegisterError::OutOfOrder);
                    }
                }
                let adding = changes
                    .iter()
                    .filter(|(c, e)| *e > 0 && !current.iter().any(|b| b.key == Binding::key_of(c)))
                    .count();
                let removing = changes.iter().filter(|(_, e)| *e == 0).count();
                if current.len() + adding > self.config.max_contacts + removing {
                    return Err(RegisterError::TooManyContacts(self.config.max_contacts));
                }
                let user_agent = req.headers.get(&HeaderName::UserAgent).map(str::to_owned);
                for (contact, expires) in changes {
                    let key = Binding::key_of(contact);
                    let old = self.bindings.get_mut(aor).and_then(|entry| {
                        let i = entry.iter().position(|b| b.key == key)?;
                        Some(entry.remove(i))
                    });
                    if let Some(old) = old {
                        self.unschedule(aor, &old);
                    }
                    if expires == 0 {
                        self.events.push_back(RegistrarEvent::Removed {
                            aor: aor.to_owned(),
                            contact: key,
                        });
                        continue;
                    }
                    let ttl = Duration::from_secs(u64::from(expires));
                    let mut binding = Binding::new(
                        contact,
                        call_id.clone(),
                        cseq,
                        (now + ttl, wall + ttl),
                        flow.clone(),
                        user_agent.clone(),
                    );
                    self.schedule(now, aor, &mut binding);
                    self.bindings
                        .entry(aor.to_owned())
                        .or_default()
                        .push(binding.clone());
                    self.events.push_back(RegistrarEvent::Updated {
                        aor: aor.to_owned(),
                        binding: Box::new(binding),
                    });
                }
                if self.bindings.get(aor).is_some_and(Vec::is_empty) {
                    self.bindings.remove(aor);
                }
            }
        }
        Ok(self.listing(now, aor))
    }

    /// The current bindings of `aor` with their remaining time (§10.3 step 8).
    pub fn listing(&self, now: Instant, aor: &str) -> Vec<NameAddr> {
        self.contacts(aor).iter().map(|b| b.listed(now)).collect()
    }

    /// Expires bindings whose time has come and returns the qualify probes
    /// that are due.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Probe> {
        while let Some((_, aor, key)) = self.expiries.pop_due(now) {
            let Some(list) = self.bindings.get_mut(&aor) else {
                continue;
            };
            let Some(i) = list.iter().position(|b| b.key == key) else {
                continue;
            };
            let gone = list.remove(i);
            if list.is_empty() {
                self.bindings.remove(&aor);
            }
            self.qualifies.remove(gone.next_qualify, &aor, &key);
            self.events
                .push_back(RegistrarEvent::Removed { aor, contact: key });
        }
        let mut probes = Vec::new();
        let Some(interval) = self.config.qualify_interval else {
            return probes;
        };
        while let Some((_, aor, key)) = self.qualifies.pop_due(now) {
            let Some(b) = self
                .bindings
                .get_mut(&aor)
                .and_then(|l| l.iter_mut().find(|b| b.key == key))
            else {
                continue;
            };
            b.next_qualify = now + interval;
            self.qualifies.insert(b.next_qualify, &aor, &key);
            probes.push(Probe {
                aor,
                contact: key,
                flow: b.flow.clone(),
            });
        }
        probes
    }

    /// Records the answer (or its absence) to a qualify probe.
    pub fn qualify_result(&mut self, aor: &str, contact: &str, answered: bool) {
        let limit = self.config.qualify_failures.max(1);
        let Some(b) = self
            .bindings
            .get_mut(aor)
            .and_then(|l| l.iter_mut().find(|b| b.key == contact))
        else {
            return;
        };
        let was = b.reachable;
        if answered {
            b.missed_qualifies = 0;
            b.reachable = true;
        } else {
            b.missed_qualifies += 1;
            if b.missed_qualifies >= limit {
                b.reachable = false;
            }
        }
        if was != b.reachable {
            self.events.push_back(RegistrarEvent::Reachability {
                aor: aor.to_owned(),
                contact: contact.to_owned(),
                reachable: b.reachable,
            });
        }
    }

    /// The earliest expiry or qualify deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let e = self.expiries.next();
        let q = self.qualifies.next();
        match (e, q) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests;
