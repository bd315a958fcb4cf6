//! Registrar bindings to and from the store: the registrar keeps them in
//! memory, the store keeps them across restarts (write-behind, so a
//! REGISTER never waits for the disk). Finished calls' records go to the
//! store the same way.

use std::time::{Instant, SystemTime};

use tracing::{debug, warn};

use crate::call::record::CallRecord;
use crate::sip::flow::Flow;
use crate::sip::message::{CallId, NameAddr, Uri};
use crate::sip::registrar::{Binding, Registrar, RegistrarEvent};
use crate::storage::{BindingWriter, CallRecordWriter, StoredBinding};

pub fn apply(writer: &BindingWriter, event: RegistrarEvent) {
    match event {
        RegistrarEvent::Updated { aor, binding } => writer.upsert(to_stored(aor, &binding)),
        RegistrarEvent::Removed { aor, contact } if contact == "*" => writer.remove_aor(aor),
        RegistrarEvent::Removed { aor, contact } => writer.remove(aor, contact),
        RegistrarEvent::Reachability { .. } => {}
    }
}

/// Persists a finished call's record; never blocks (the store's writer
/// thread inserts it).
pub fn record_call(writer: &CallRecordWriter, record: Box<CallRecord>) {
    debug!(
        call_id = %record.id,
        outcome = %record.outcome,
        queue = ?record.queue.as_ref().map(|q| q.as_str()),
        agent = ?record.agent.as_ref().map(|a| a.as_str()),
        wait_ms = record.wait.as_millis(),
        talk_ms = record.talk.as_millis(),
        "call record"
    );
    writer.write(record);
}

fn to_stored(aor: String, b: &Binding) -> StoredBinding {
    StoredBinding {
        aor,
        contact: b.key.clone(),
        instance: b.instance().map(str::to_owned),
        reg_id: b
            .contact
            .params
            .get("reg-id")
            .flatten()
            .and_then(|v| v.parse().ok()),
        call_id: b.call_id.to_string(),
        cseq: b.cseq,
        expires_at: b.expires_wall,
        q: None,
        transport: b.flow.transport.as_str().to_owned(),
        source: b.flow.remote,
        local: b.flow.local,
        user_agent: b.user_agent.clone(),
        path: Vec::new(),
    }
}

/// Installs stored bindings into the registrar, converting their wall-clock
/// expiry to the monotonic clock. Returns how many were restored.
pub fn restore(
    registrar: &mut Registrar,
    now: Instant,
    wall: SystemTime,
    stored: Vec<StoredBinding>,
) -> usize {
    let mut restored = 0;
    for s in stored {
        let (Ok(uri), Ok(transport)) = (s.contact.parse::<Uri>(), s.transport.parse()) else {
            warn!(aor = %s.aor, contact = %s.contact, "unreadable stored binding skipped");
            continue;
        };
        let Ok(left) = s.expires_at.duration_since(wall) else {
            continue;
        };
        let mut contact = NameAddr::new(uri);
        if let Some(instance) = &s.instance {
            contact.params.set("+sip.instance", Some(instance.clone()));
        }
        let flow = Flow {
            transport,
            local: s.local,
            remote: s.source,
            connection: None,
        };
        let binding = Binding::new(
            &contact,
            CallId::new(s.call_id),
            s.cseq,
            (now + left, s.expires_at),
            flow,
            s.user_agent,
        );
        registrar.restore(now, s.aor, binding);
        restored += 1;
    }
    restored
}
