//! Calls agents place to customers through the carrier trunk.
//!
//! Only an authenticated agent reaches this code (the endpoint challenges
//! every INVITE not from a trunk), and only with the dial permission the
//! number needs: `international` for numbers written with `+` or `00`,
//! `national` for any other number. Nothing else ever makes the gateway
//! send an INVITE to a trunk, so a stranger cannot place calls on the call
//! centre's account (toll fraud), and a carrier's call for an unknown
//! number is never sent back out.
//!
//! The agent's INVITE is answered `180 Ringing` at once; our INVITE goes to
//! the trunk with our own SDP offer. When the customer answers we ACK, then
//! answer the agent (same To tag as the 180) and bridge both legs in one
//! media session, recorded like inbound calls (customer left, agent right).
//! A failure of the trunk leg is passed back to the agent as its status; a
//! CANCEL from the agent cancels the trunk leg (RFC 3261 §9). While the call
//! lasts the agent is paused in the ACD ("outbound call"), so that no queue
//! offers it a second call.

use std::collections::HashMap;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::super::dialog::DialogId;
use super::super::flow::Flow;
use super::super::message::{HeaderName, Host, NameAddr, Request, Response, SipUri, Uri};
use super::super::transaction::{ClientTxId, ServerTxId};
use super::calls::PendingStart;
use super::queue_calls::{Role, BYE_RECEIVED};
use super::uac::NewLeg;
use super::{ClientOutcome, ClientPurpose, Endpoint, Output};
use crate::call::acd::{AgentState, PauseReason};
use crate::call::record::{CallDirection, CallOutcome, CallRecordBuilder, HungUpBy};
use crate::config::{AgentId, DialPermission};
use crate::control::Event;
use crate::media::ports::PortPair;
use crate::media::relay::LegId;
use crate::media::sdp::{Negotiated, SessionDescription};
use crate::media::session::{Feed, SessionId};

/// The pause reason an agent has in the ACD during an outbound call.
const OUTBOUND_PAUSE: &str = "outbound call";

/// Which side of an outbound call a leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Agent,
    Customer,
}

/// An outbound call being placed: the agent's INVITE waits for the trunk's
/// answer to ours.
#[derive(Debug)]
struct Placing {
    agent: AgentId,
    number: String,
    /// The agent's INVITE and where it came from.
    request: Request,
    source: Flow,
    /// Its server transaction, once the 180 has been sent on it.
    server_tx: Option<ServerTxId>,
    /// The To tag of our 180 (the final answer must repeat it).
    tag: String,
    /// Our INVITE to the trunk.
    invite: Request,
    flow: Flow,
    ports: PortPair,
    local_sdp: SessionDescription,
    /// The agent cancelled: a 2xx that still comes is ACKed and hung up.
    cancelled: bool,
    /// Taken when the call is answered, or written when it fails.
    record: Option<CallRecordBuilder>,
}

/// What an answered outbound call starts with once the agent's media is
/// negotiated: the customer's leg, already answered.
#[derive(Debug)]
pub(super) struct OutboundStart {
    agent: AgentId,
    customer: DialogId,
    customer_media: Negotiated,
    number: String,
    record: CallRecordBuilder,
}

/// The two legs of an outbound call, bridged in `session`.
pub(super) struct Bridge {
    pub(super) call: u64,
    pub(super) session: SessionId,
    pub(super) agent: AgentId,
    pub(super) number: String,
    pub(super) agent_leg: DialogId,
    pub(super) customer_leg: DialogId,
}

/// Outbound calls in progress.
#[derive(Default)]
pub(super) struct Outbound {
    placing: HashMap<ClientTxId, Placing>,
    by_server: HashMap<ServerTxId, ClientTxId>,
    /// The placing call whose 180 is being sent (see [`Endpoint::outbound_bind`]).
    awaiting_tx: Option<ClientTxId>,
    /// Connected calls, by session, until a leg ends.
    pub(super) connected: HashMap<SessionId, Connected>,
}

impl Outbound {
    /// Our INVITE to the trunk on `tx` and where it went.
    pub(super) fn invite_sent(&self, tx: ClientTxId) -> Option<(Request, Flow)> {
        let p = self.placing.get(&tx)?;
        Some((p.invite.clone(), p.flow.clone()))
    }

    /// The call placed on `old` goes on with `invite`, sent on `new` (the
    /// carrier challenged the first INVITE).
    pub(super) fn follow(&mut self, old: ClientTxId, new: ClientTxId, invite: Request) {
        let Some(mut p) = self.placing.remove(&old) else {
            return;
        };
        p.invite = invite;
        if let Some(server) = p.server_tx {
            self.by_server.insert(server, new);
        }
        if self.awaiting_tx == Some(old) {
            self.awaiting_tx = Some(new);
        }
        self.placing.insert(new, p);
    }
}

/// An outbound call in conversation.
#[derive(Debug)]
pub(super) struct Connected {
    /// The call's number for the control API and events.
    pub(super) call: u64,
    pub(super) agent: AgentId,
    pub(super) number: String,
    pub(super) agent_leg: DialogId,
    pub(super) customer_leg: DialogId,
    pub(super) recording_paused: bool,
    record: CallRecordBuilder,
}

/// The permission a dialled number needs, if it is a number at all: digits
/// with an optional leading `+`, 3 to 15 of them (E.164 allows 15).
pub(super) fn permission_for(dialled: &str) -> Option<DialPermission> {
    let digits = dialled.strip_prefix('+').unwrap_or(dialled);
    if !(3..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if dialled.starts_with('+') || digits.starts_with("00") {
        Some(DialPermission::International)
    } else {
        Some(DialPermission::National)
    }
}

impl Endpoint {
    /// An authenticated agent dialled a number no route knows: an outbound
    /// call through the trunk, if the agent may dial it. `None` when the
    /// dialled string is not a number.
    pub(super) fn outbound_call(
        &mut self,
        now: Instant,
        request: &Request,
        source: &Flow,
        user: &str,
    ) -> Option<Response> {
        let dialled = Self::dialled(request);
        let needed = permission_for(&dialled)?;
        let Ok(agent) = user.parse::<AgentId>() else {
            return Some(self.reply(request, 403));
        };
        if !self.may_dial(user, needed) {
            warn!(%agent, number = %dialled, ?needed, "outbound call refused: no dial permission");
            let mut r = self.reply(request, 403);
            let warning = format!(
                "399 {} \"agent {agent} may not dial {needed:?} numbers\"",
                self.config.domain
            );
            r.headers.push(HeaderName::Warning, warning);
            return Some(r);
        }
        let Some((trunk, flow, caller_id)) = self.outbound_trunk() else {
            warn!("outbound call refused: no trunk to send it to");
            return Some(self.reply(request, 503));
        };
        let Some(NewLeg { ports, sdp }) = self.new_leg() else {
            let mut r = self.reply(request, 503);
            r.headers.push(HeaderName::RetryAfter, "5");
            return Some(r);
        };
        let invite = self.trunk_invite(&flow, &dialled, &caller_id, &sdp);
        let Some(tx) = self.send_request(now, &invite, &flow, ClientPurpose::Outbound) else {
            self.calls.release_ports(ports);
            return Some(self.reply(request, 500));
        };
        info!(%agent, number = %dialled, %trunk, "outbound call placed");
        let record = CallRecordBuilder::new(
            request.headers.call_id.to_string(),
            CallDirection::Outbound,
            agent.to_string(),
            dialled.clone(),
            self.wall(now),
        );
        let tag = self.ids.tag();
        let ringing = self.reply_tagged(request, 180, &tag);
        self.outbound.awaiting_tx = Some(tx);
        self.outbound.placing.insert(
            tx,
            Placing {
                agent,
                number: dialled,
                request: request.clone(),
                source: source.clone(),
                server_tx: None,
                tag,
                invite,
                flow,
                ports,
                local_sdp: sdp,
                cancelled: false,
                record: Some(record),
            },
        );
        Some(ringing)
    }

    /// Whether the agent's `dial_permissions` include `needed`.
    pub(super) fn may_dial(&self, agent: &str, needed: DialPermission) -> bool {
        agent
            .parse::<AgentId>()
            .ok()
            .and_then(|a| self.config.dial_permissions.get(&a))
            .is_some_and(|p| p.contains(&needed))
    }

    /// The trunk outbound calls take (the first one we have a socket for),
    /// the flow to it, and the caller id to present.
    pub(super) fn outbound_trunk(&self) -> Option<(String, Flow, String)> {
        self.config.trunks.iter().find_map(|t| {
            let flow = super::trunks::flow_to(&self.config.listen, t.transport, t.peer)?;
            let caller_id = t
                .caller_id
                .as_ref()
                .map_or_else(|| self.config.domain.clone(), ToString::to_string);
            Some((t.name.to_string(), flow, caller_id))
        })
    }

    /// Our INVITE to the carrier for `number`, presenting `caller_id`.
    pub(super) fn trunk_invite(
        &mut self,
        flow: &Flow,
        number: &str,
        caller_id: &str,
        sdp: &SessionDescription,
    ) -> Request {
        let target = SipUri::new(Host::Ip(flow.remote.ip()))
            .with_user(number)
            .with_port(flow.remote.port());
        let from = self.our_name_addr(flow, caller_id, None);
        let to = NameAddr::new(target.clone().into());
        self.build_invite(flow, Uri::Sip(target), from, to, sdp)
    }

    /// The 180 to an agent's outbound INVITE went out on `tx`: the call's
    /// final answer goes there later.
    pub(super) fn outbound_bind(&mut self, tx: ServerTxId) {
        if let Some(client) = self.outbound.awaiting_tx.take() {
            if let Some(p) = self.outbound.placing.get_mut(&client) {
                p.server_tx = Some(tx);
                self.outbound.by_server.insert(tx, client);
            }
        }
    }

    /// The agent cancelled its outbound INVITE (`tx`): 487 to it, CANCEL to
    /// the trunk. False when `tx` is not an outbound call being placed.
    pub(super) fn outbound_cancel(&mut self, now: Instant, tx: ServerTxId) -> bool {
        let Some(client) = self.outbound.by_server.remove(&tx) else {
            return false;
        };
        let Some(mut p) = self.outbound.placing.remove(&client) else {
            return false;
        };
        info!(agent = %p.agent, number = %p.number, "outbound call cancelled by the agent");
        let response = self.reply_tagged(&p.request, 487, &p.tag);
        if let Err(error) = self.tx.respond(now, tx, response) {
            debug!(%error, "INVITE already answered");
        }
        if let Err(error) = self.tx.cancel(now, client) {
            debug!(%error, "nothing to cancel");
        }
        self.calls.release_ports(p.ports);
        if let Some(mut record) = p.record.take() {
            let wall = self.wall(now);
            record.ended(
                wall,
                CallOutcome::Abandoned,
                Some(HungUpBy::Agent),
                "cancelled",
            );
            self.outputs
                .push_back(Output::CallRecord(Box::new(record.finish())));
        }
        // Kept so that a 2xx racing the CANCEL is ACKed and hung up.
        p.cancelled = true;
        self.outbound.placing.insert(client, p);
        true
    }

    /// What the trunk answered to our INVITE.
    pub(super) fn outbound_outcome(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        outcome: ClientOutcome<'_>,
    ) {
        match outcome {
            ClientOutcome::Response(r) if r.status < 200 => {}
            ClientOutcome::Response(r) if r.status < 300 => {
                if let Some(p) = self.outbound.placing.remove(&tx) {
                    if let Some(s) = p.server_tx {
                        self.outbound.by_server.remove(&s);
                    }
                    self.customer_answered(now, tx, p, r);
                }
            }
            outcome => {
                let Some(mut p) = self.outbound.placing.remove(&tx) else {
                    return;
                };
                if p.cancelled {
                    return;
                }
                self.calls.release_ports(p.ports);
                let status = outcome.status();
                // The trunk's credentials are its business: the agent gets
                // a plain refusal, not a challenge it cannot answer.
                let passed = match status {
                    401 | 407 => 403,
                    s => s,
                };
                info!(agent = %p.agent, number = %p.number, status, "outbound call failed");
                if let Some(s) = p.server_tx {
                    self.outbound.by_server.remove(&s);
                    let response = self.reply_tagged(&p.request, passed, &p.tag);
                    if let Err(error) = self.tx.respond(now, s, response) {
                        debug!(%error, "agent's INVITE already answered");
                    }
                }
                if let Some(mut record) = p.record.take() {
                    let wall = self.wall(now);
                    record.ended(
                        wall,
                        CallOutcome::Failed,
                        Some(HungUpBy::Customer),
                        format!("trunk answered {status}"),
                    );
                    self.outputs
                        .push_back(Output::CallRecord(Box::new(record.finish())));
                }
            }
        }
    }

    /// The customer answered: ACK, then answer the agent and bridge.
    fn customer_answered(&mut self, now: Instant, tx: ClientTxId, mut p: Placing, r: &Response) {
        let Some(id) = self.accept_2xx(tx, &p.invite, &p.flow, r) else {
            self.calls.release_ports(p.ports);
            return;
        };
        let negotiated = super::uac::negotiate(&p.local_sdp, &r.body);
        let (Some(negotiated), false, Some(server_tx), Some(mut record)) =
            (negotiated, p.cancelled, p.server_tx, p.record.take())
        else {
            info!(number = %p.number, "customer answered a call that cannot go on: hanging up");
            self.send_bye(now, &id, p.flow.clone());
            if !p.cancelled {
                self.calls.release_ports(p.ports);
            }
            return;
        };
        self.calls.add_leg(
            id.clone(),
            p.flow.clone(),
            p.ports,
            p.local_sdp.clone(),
            None,
            Role::Outbound(Side::Customer),
        );
        let wall = self.wall(now);
        record.answered(p.agent.clone(), wall);
        let start = PendingStart::Outbound(Box::new(OutboundStart {
            agent: p.agent.clone(),
            customer: id.clone(),
            customer_media: negotiated,
            number: p.number.clone(),
            record,
        }));
        let contact = p.number.clone();
        let response =
            self.answer_call_tagged(now, &p.request, &p.source, &contact, start, Some(&p.tag));
        let answered = response.status < 300;
        if let Err(error) = self.tx.respond(now, server_tx, response) {
            debug!(%error, "agent's INVITE already answered");
        }
        if !answered {
            // The agent's phone and ours share no codec: nobody to talk to.
            self.hang_up(now, &id, "agent's answer failed");
        }
    }

    /// Both legs are answered and the agent's media negotiated: one session,
    /// each leg hearing the other, recorded.
    pub(super) fn start_outbound_media(
        &mut self,
        now: Instant,
        agent_leg: &DialogId,
        negotiated: Negotiated,
        start: OutboundStart,
    ) {
        let session = self.new_session();
        self.open_leg(
            &start.customer,
            session,
            LegId::Caller,
            start.customer_media,
            Feed::Other,
        );
        self.open_leg(agent_leg, session, LegId::Agent, negotiated, Feed::Other);
        self.calls.set_role(agent_leg, Role::Outbound(Side::Agent));
        let call = self.queues.next;
        self.queues.next += 1;
        let bridge = Bridge {
            call,
            session,
            agent: start.agent,
            number: start.number,
            agent_leg: agent_leg.clone(),
            customer_leg: start.customer,
        };
        self.outbound_bridged(now, bridge, start.record);
    }

    /// Both legs of an outbound call (or a click-to-call) are in `session`
    /// hearing each other: partners, recording, the agent paused in the
    /// ACD meanwhile, the event.
    pub(super) fn outbound_bridged(
        &mut self,
        now: Instant,
        b: Bridge,
        mut record: CallRecordBuilder,
    ) {
        self.calls.set_partner(&b.customer_leg, b.agent_leg.clone());
        self.calls.set_partner(&b.agent_leg, b.customer_leg.clone());
        let call_id = self.calls.call_id_of(&b.agent_leg).unwrap_or_default();
        let who = (
            b.number.clone(),
            b.number.clone(),
            format!("agent {}", b.agent),
        );
        let path = self.start_recording(b.session, &call_id, self.wall(now), who);
        record.recording(path.clone());
        info!(agent = %b.agent, session = %b.session, "outbound call bridged");
        // The agent is busy: no queue offers it a call meanwhile.
        if let Some(acd) = self.queues.acd_mut() {
            if acd.agent_state(&b.agent) == AgentState::Available {
                let _ = acd.pause(now, &b.agent, PauseReason::new(OUTBOUND_PAUSE));
            }
        }
        self.pump_acd(now);
        self.event(Event::CallAnswered {
            call: b.call,
            agent: b.agent.to_string(),
        });
        self.event(Event::RecordingStarted {
            call: b.call,
            path: path.display().to_string(),
        });
        self.outbound.connected.insert(
            b.session,
            Connected {
                call: b.call,
                agent: b.agent,
                number: b.number,
                agent_leg: b.agent_leg,
                customer_leg: b.customer_leg,
                recording_paused: false,
                record,
            },
        );
    }

    /// The agent holds (`held`) or resumes the outbound call in `session`:
    /// its record counts the hold time, as for queued calls.
    pub(super) fn outbound_hold(&mut self, now: Instant, session: SessionId, held: bool) {
        let wall = self.wall(now);
        if let Some(c) = self.outbound.connected.get_mut(&session) {
            if held {
                c.record.hold_started(wall);
            } else {
                c.record.hold_ended(wall);
            }
        }
    }

    /// A leg of an outbound call is ending: the first one says who hung up.
    pub(super) fn outbound_leg_ending(
        &mut self,
        now: Instant,
        id: &DialogId,
        side: Side,
        why: &str,
    ) {
        let Some(session) = self.calls.session_of(id) else {
            return;
        };
        if side == Side::Agent && self.originate_agent_gone(now, id, why) {
            return;
        }
        let wall = self.wall(now);
        let Some(Connected {
            agent,
            mut record,
            call,
            ..
        }) = self.outbound.connected.remove(&session)
        else {
            return;
        };
        let by = match (why == BYE_RECEIVED, side) {
            (true, Side::Agent) => HungUpBy::Agent,
            (true, Side::Customer) => HungUpBy::Customer,
            (false, _) => HungUpBy::Gateway,
        };
        record.ended(wall, CallOutcome::Answered, Some(by), why);
        self.close_record(session, record, 2, Some(call));
        if let Some(acd) = self.queues.acd_mut() {
            if acd.agent_state(&agent) == AgentState::Paused(PauseReason::new(OUTBOUND_PAUSE)) {
                let _ = acd.unpause(now, &agent);
            }
        }
        self.pump_acd(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_need_the_permission_of_their_form() {
        assert_eq!(permission_for("2125550123"), Some(DialPermission::National));
        assert_eq!(
            permission_for("+442071234567"),
            Some(DialPermission::International)
        );
        assert_eq!(
            permission_for("00442071234567"),
            Some(DialPermission::International)
        );
        // Not numbers: feature codes, names, too short or too long.
        assert_eq!(permission_for("*43"), None);
        assert_eq!(permission_for("alice"), None);
        assert_eq!(permission_for("12"), None);
        assert_eq!(permission_for("+1234567890123456"), None);
    }
}
