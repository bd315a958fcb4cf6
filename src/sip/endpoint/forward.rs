//! A caller transferred to an external number (the control API's blind
//! transfer): the caller hears ringback while the number is called through
//! the trunk; the answer bridges them in the caller's own session (still
//! recorded, the far end on the right). A failure hangs the caller up.

use std::collections::HashMap;
use std::time::Instant;

use tracing::{debug, info};

use super::super::dialog::DialogId;
use super::super::flow::Flow;
use super::super::message::{Request, Response};
use super::super::transaction::ClientTxId;
use super::originate::ringback;
use super::queue_calls::{QueueCallId, Role, BYE_RECEIVED};
use super::routing::Caller;
use super::uac::{negotiate, NewLeg};
use super::{ClientOutcome, ClientPurpose, Endpoint, Output};
use crate::call::record::{CallOutcome, CallRecordBuilder, HungUpBy};
use crate::control::Event;
use crate::media::control::MediaCommand;
use crate::media::relay::LegId;
use crate::media::session::{Feed, SessionId};

/// Our INVITE to the number, not answered yet.
#[derive(Debug)]
struct Ringing {
    who: Caller,
    call: QueueCallId,
    invite: Request,
    flow: Flow,
    leg: NewLeg,
}

/// Callers being forwarded or forwarded.
#[derive(Default)]
pub(super) struct Forwards {
    ringing: HashMap<ClientTxId, Ringing>,
    /// Connected forwards: the caller's record until a leg ends.
    connected: HashMap<QueueCallId, (SessionId, CallRecordBuilder)>,
}

impl Forwards {
    /// Our INVITE on `tx` and where it went.
    pub(super) fn invite_sent(&self, tx: ClientTxId) -> Option<(Request, Flow)> {
        let r = self.ringing.get(&tx)?;
        Some((r.invite.clone(), r.flow.clone()))
    }

    /// The forward ringing on `old` goes on with `invite`, sent on `new`
    /// (the carrier challenged the first INVITE).
    pub(super) fn follow(&mut self, old: ClientTxId, new: ClientTxId, invite: Request) {
        if let Some(mut r) = self.ringing.remove(&old) {
            r.invite = invite;
            self.ringing.insert(new, r);
        }
    }
}

impl Endpoint {
    /// Calls `number` for the caller `who` (out of its queue call already).
    pub(super) fn forward(&mut self, now: Instant, who: Caller, number: &str) {
        let Some(call) = who.number_in_acd else {
            return self.forward_failed(now, who, "not a queued call".into());
        };
        let Some((tx, invite, flow, leg)) =
            self.place_trunk_call(now, number, ClientPurpose::Forward)
        else {
            return self.forward_failed(now, who, "trunk unavailable".into());
        };
        info!(%call, %number, "caller forwarded: calling the number");
        self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
            session: who.session,
            leg: LegId::Caller,
            feed: ringback(),
        }));
        self.calls.set_role(&who.dialog, Role::Forwarded(call));
        self.forwards.ringing.insert(
            tx,
            Ringing {
                who,
                call,
                invite,
                flow,
                leg,
            },
        );
    }

    /// What the number's side answered.
    pub(super) fn forward_outcome(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        outcome: ClientOutcome<'_>,
    ) {
        if matches!(outcome, ClientOutcome::Response(r) if r.status < 200) {
            return;
        }
        let Some(r) = self.forwards.ringing.remove(&tx) else {
            return;
        };
        match outcome {
            ClientOutcome::Response(response) if response.status < 300 => {
                self.forward_answered(now, tx, r, response)
            }
            outcome => {
                self.calls.release_ports(r.leg.ports);
                let status = outcome.status();
                self.forward_failed(now, r.who, format!("the number answered {status}"));
            }
        }
    }

    fn forward_answered(&mut self, now: Instant, tx: ClientTxId, r: Ringing, response: &Response) {
        let Some(id) = self.accept_2xx(tx, &r.invite, &r.flow, response) else {
            self.calls.release_ports(r.leg.ports);
            return self.forward_failed(now, r.who, "no dialog".into());
        };
        let Some(negotiated) = negotiate(&r.leg.sdp, &response.body) else {
            self.send_bye(now, &id, r.flow.clone());
            self.calls.release_ports(r.leg.ports);
            return self.forward_failed(now, r.who, "no common codec".into());
        };
        let session = r.who.session;
        self.calls.add_leg(
            id.clone(),
            r.flow.clone(),
            r.leg.ports,
            r.leg.sdp,
            Some(r.who.dialog.clone()),
            Role::Forwarded(r.call),
        );
        self.calls.set_partner(&r.who.dialog, id.clone());
        self.open_leg(&id, session, LegId::Agent, negotiated, Feed::Other);
        self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
            session,
            leg: LegId::Caller,
            feed: Feed::Other,
        }));
        info!(call = %r.call, "caller forwarded: connected");
        self.forwards
            .connected
            .insert(r.call, (session, r.who.record));
    }

    fn forward_failed(&mut self, now: Instant, mut who: Caller, why: String) {
        info!(call = %who.call_id, reason = %why, "forward failed: hanging up the caller");
        let wall = self.wall(now);
        who.record
            .ended(wall, CallOutcome::Failed, Some(HungUpBy::Gateway), why);
        let dialog = who.dialog.clone();
        let call = who.number_in_acd.map(|c| c.0);
        self.calls.set_role(&dialog, Role::Goodbye);
        self.close_record(who.session, who.record, 1, call);
        self.hang_up(now, &dialog, "forward failed");
    }

    /// A leg of a forwarded call is ending: the first says who hung up;
    /// a caller hanging up while the number rings cancels the call.
    pub(super) fn forwarded_leg_ending(
        &mut self,
        now: Instant,
        call: QueueCallId,
        leg: &DialogId,
        why: &str,
    ) {
        let ringing = self
            .forwards
            .ringing
            .iter()
            .find(|(_, r)| &r.who.dialog == leg)
            .map(|(tx, _)| *tx);
        if let Some(tx) = ringing {
            if let Some(mut r) = self.forwards.ringing.remove(&tx) {
                if let Err(error) = self.tx.cancel(now, tx) {
                    debug!(%error, "nothing to cancel");
                }
                self.calls.release_ports(r.leg.ports);
                let wall = self.wall(now);
                r.who
                    .record
                    .ended(wall, CallOutcome::Answered, Some(HungUpBy::Caller), why);
                self.close_record(r.who.session, r.who.record, 1, Some(call.0));
            }
            return;
        }
        let Some((session, mut record)) = self.forwards.connected.remove(&call) else {
            return;
        };
        let by = if why != BYE_RECEIVED {
            HungUpBy::Gateway
        } else if self.calls.leg_of(leg) == Some(LegId::Caller) {
            HungUpBy::Caller
        } else {
            HungUpBy::Customer
        };
        record.ended(self.wall(now), CallOutcome::Answered, Some(by), why);
        self.close_record(session, record, 2, Some(call.0));
        self.event(Event::CallEnded {
            call: call.0,
            agent: None,
            outcome: "answered".to_owned(),
        });
    }
}
