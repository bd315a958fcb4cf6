//! Registrar bindings as stored, and the backend-neutral coalescing of queued
//! binding writes into one batch.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

/// One registrar binding (RFC 3261 §10.3) as persisted. Key: `(aor, contact)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBinding {
    /// Address of record: the agent id.
    pub aor: String,
    /// The Contact URI exactly as received.
    pub contact: String,
    /// `+sip.instance` Contact parameter (RFC 5626 §4.1).
    pub instance: Option<String>,
    /// `reg-id` Contact parameter (RFC 5626 §4.2).
    pub reg_id: Option<u32>,
    pub call_id: String,
    pub cseq: u32,
    pub expires_at: SystemTime,
    /// q-value in thousandths (RFC 3261 §20.10: `q=0.5` is 500).
    pub q: Option<u16>,
    /// "UDP" / "TCP".
    pub transport: String,
    /// Where the REGISTER came from, which is where we send to behind NAT.
    /// (For IPv6 the scope id is kept; the flow label is not.)
    pub source: SocketAddr,
    /// Our socket the REGISTER arrived on.
    pub local: SocketAddr,
    pub user_agent: Option<String>,
    /// Path header values (RFC 3327), in order.
    pub path: Vec<String>,
}

/// A queued write, as the write-behind thread receives it.
#[derive(Debug, Clone)]
pub(crate) enum BindingOp {
    Upsert(Box<StoredBinding>),
    Remove { aor: String, contact: String },
    RemoveAor { aor: String },
}

/// What is to happen to one `(aor, contact)` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContactChange {
    Upsert(Box<StoredBinding>),
    Remove,
}

/// A change together with the number of commits it already failed in.
#[derive(Debug)]
pub(crate) struct Pending<T> {
    pub(crate) change: T,
    pub(crate) failures: u8,
}

impl<T> Pending<T> {
    fn new(change: T) -> Self {
        Pending {
            change,
            failures: 0,
        }
    }
}

/// Changes for one AOR: optionally delete all its rows first, then apply the
/// last change per contact.
#[derive(Debug, Default)]
pub(crate) struct AorChanges {
    /// `Some` when a `remove_aor` came in: delete every row of the AOR before
    /// applying `contacts` (which then only holds changes queued after it).
    pub(crate) clear: Option<Pending<()>>,
    pub(crate) contacts: BTreeMap<String, Pending<ContactChange>>,
}

/// Queued binding writes coalesced so that committing the batch in one
/// transaction leaves the database exactly as applying the ops one by one
/// would, with at most one statement per key (plus one per cleared AOR).
///
/// Ordered maps so that the commit touches the table in key order: SQLite
/// then walks its B-tree sequentially instead of jumping between pages.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) aors: BTreeMap<String, AorChanges>,
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.aors.is_empty()
    }

    /// Fold one more op, queued after all those already in the batch.
    pub(crate) fn push(&mut self, op: BindingOp) {
        match op {
            BindingOp::Upsert(b) => {
                let aor = self.aors.entry(b.aor.clone()).or_default();
                aor.contacts
                    .insert(b.contact.clone(), Pending::new(ContactChange::Upsert(b)));
            }
            BindingOp::Remove { aor, contact } => {
                // Even if the AOR is cleared earlier in the batch, an explicit
                // DELETE is kept: it is harmless and keeps the result right if
                // the clear itself is later dropped after repeated failures.
                self.aors
                    .entry(aor)
                    .or_default()
                    .contacts
                    .insert(contact, Pending::new(ContactChange::Remove));
            }
            BindingOp::RemoveAor { aor } => {
                // Everything queued earlier for this AOR is superseded.
                self.aors.insert(
                    aor,
                    AorChanges {
                        clear: Some(Pending::new(())),
                        contacts: BTreeMap::new(),
                    },
                );
            }
        }
    }

    /// Number of statements committing this batch will execute.
    pub(crate) fn statements(&self) -> usize {
        self.aors
            .values()
            .map(|a| usize::from(a.clear.is_some()) + a.contacts.len())
            .sum()
    }

    /// The commit of this batch failed: count one more failure on every
    /// change and drop those that reached `max_failures`, so that one change
    /// the database keeps refusing cannot hold back all later writes.
    /// Returns what was dropped, for logging.
    pub(crate) fn record_failure(&mut self, max_failures: u8) -> Vec<DroppedChange> {
        let mut dropped = Vec::new();
        self.aors.retain(|aor, changes| {
            if let Some(clear) = &mut changes.clear {
                clear.failures = clear.failures.saturating_add(1);
                if clear.failures >= max_failures {
                    changes.clear = None;
                    dropped.push(DroppedChange::Clear { aor: aor.clone() });
                }
            }
            changes.contacts.retain(|contact, pending| {
                pending.failures = pending.failures.saturating_add(1);
                let keep = pending.failures < max_failures;
                if !keep {
                    dropped.push(DroppedChange::Contact {
                        aor: aor.clone(),
                        contact: contact.clone(),
                    });
                }
                keep
            });
            changes.clear.is_some() || !changes.contacts.is_empty()
        });
        dropped
    }

    pub(crate) fn clear(&mut self) {
        self.aors.clear();
    }
}

/// A change given up on after repeated failures.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DroppedChange {
    Clear { aor: String },
    Contact { aor: String, contact: String },
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::{Duration, UNIX_EPOCH};

    pub(crate) type Model = HashMap<(String, String), StoredBinding>;

    pub(crate) fn binding(aor: &str, contact: &str, cseq: u32) -> StoredBinding {
        StoredBinding {
            aor: aor.to_owned(),
            contact: contact.to_owned(),
            instance: None,
            reg_id: None,
            call_id: format!("call-{aor}"),
            cseq,
            expires_at: UNIX_EPOCH + Duration::from_secs(4_000_000_000),
            q: None,
            transport: "UDP".to_owned(),
            source: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 5060)),
            local: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), 5060)),
            user_agent: None,
            path: Vec::new(),
        }
    }

    /// The reference semantics: apply one op to a plain map.
    pub(crate) fn apply_to_model(model: &mut Model, op: &BindingOp) {
        match op {
            BindingOp::Upsert(b) => {
                model.insert((b.aor.clone(), b.contact.clone()), (**b).clone());
            }
            BindingOp::Remove { aor, contact } => {
                model.remove(&(aor.clone(), contact.clone()));
            }
            BindingOp::RemoveAor { aor } => model.retain(|(a, _), _| a != aor),
        }
    }

    /// What committing a batch does to the table, in the same order as the
    /// SQLite backend (clear, then per-contact changes).
    fn apply_batch_to_model(model: &mut Model, batch: &Batch) {
        for (aor, changes) in &batch.aors {
            if changes.clear.is_some() {
                model.retain(|(a, _), _| a != aor);
            }
            for (contact, pending) in &changes.contacts {
                let key = (aor.clone(), contact.clone());
                match &pending.change {
                    ContactChange::Upsert(b) => {
                        model.insert(key, (**b).clone());
                    }
                    ContactChange::Remove => {
                        model.remove(&key);
                    }
                }
            }
        }
    }

    /// Ops over a small key space, so that keys collide often.
    pub(crate) fn arb_op() -> impl Strategy<Value = BindingOp> {
        let aor = prop::sample::select(vec!["alice", "bob", "carol"]);
        let contact = prop::sample::select(vec![
            "sip:a@192.0.2.1",
            "sip:b@192.0.2.2;transport=tcp",
            "sip:c@[2001:db8::1]",
        ]);
        prop_oneof![
            4 => (aor.clone(), contact.clone(), any::<u32>()).prop_map(|(a, c, cseq)| {
                BindingOp::Upsert(Box::new(binding(a, c, cseq)))
            }),
            2 => (aor.clone(), contact).prop_map(|(a, c)| BindingOp::Remove {
                aor: a.to_owned(),
                contact: c.to_owned(),
            }),
            1 => aor.prop_map(|a| BindingOp::RemoveAor { aor: a.to_owned() }),
        ]
    }

    proptest! {
        /// Committing a coalesced batch on top of any prior state equals
        /// applying the ops one by one.
        #[test]
        fn batch_equals_sequential(
            before in prop::collection::vec(arb_op(), 0..20),
            ops in prop::collection::vec(arb_op(), 0..60),
        ) {
            let mut initial = Model::new();
            for op in &before {
                apply_to_model(&mut initial, op);
            }
            let mut expected = initial.clone();
            let mut batch = Batch::default();
            for op in &ops {
                apply_to_model(&mut expected, op);
                batch.push(op.clone());
            }
            let mut got = initial;
            apply_batch_to_model(&mut got, &batch);
            prop_assert_eq!(got, expected);
            // Coalescing: never more statements than keys + cleared AORs.
            prop_assert!(batch.statements() <= 3 * 3 + 3);
        }
    }

    #[test]
    fn repeated_upserts_of_one_key_coalesce_to_the_last() {
        let mut batch = Batch::default();
        for cseq in 0..1000 {
            batch.push(BindingOp::Upsert(Box::new(binding("alice", "sip:a", cseq))));
        }
        assert_eq!(batch.statements(), 1);
        let change = &batch.aors["alice"].contacts["sip:a"].change;
        assert_eq!(
            change,
            &ContactChange::Upsert(Box::new(binding("alice", "sip:a", 999)))
        );
    }

    #[test]
    fn remove_aor_supersedes_earlier_changes_but_not_later_ones() {
        let mut batch = Batch::default();
        batch.push(BindingOp::Upsert(Box::new(binding("alice", "sip:a", 1))));
        batch.push(BindingOp::Upsert(Box::new(binding("alice", "sip:b", 1))));
        batch.push(BindingOp::RemoveAor {
            aor: "alice".to_owned(),
        });
        batch.push(BindingOp::Upsert(Box::new(binding("alice", "sip:c", 1))));
        let alice = &batch.aors["alice"];
        assert!(alice.clear.is_some());
        assert_eq!(alice.contacts.len(), 1);
        assert!(alice.contacts.contains_key("sip:c"));
        assert_eq!(batch.statements(), 2);
    }

    #[test]
    fn record_failure_drops_only_changes_that_failed_too_often() {
        let mut batch = Batch::default();
        batch.push(BindingOp::Upsert(Box::new(binding("alice", "sip:a", 1))));
        batch.push(BindingOp::RemoveAor {
            aor: "bob".to_owned(),
        });
        assert!(batch.record_failure(2).is_empty());
        // A newer change of the same key starts counting afresh.
        batch.push(BindingOp::Upsert(Box::new(binding("alice", "sip:a", 2))));
        let dropped = batch.record_failure(2);
        assert_eq!(
            dropped,
            vec![DroppedChange::Clear {
                aor: "bob".to_owned()
            }]
        );
        assert_eq!(batch.statements(), 1);
        assert_eq!(
            batch.record_failure(2),
            vec![DroppedChange::Contact {
                aor: "alice".to_owned(),
                contact: "sip:a".to_owned()
            }]
        );
        assert!(batch.is_empty());
    }
}
