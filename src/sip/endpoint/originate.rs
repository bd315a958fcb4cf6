//! Click-to-call (the control API's `originate`): the agent's phone is
//! called first; once the agent answers it hears ringback while the
//! customer is called through the trunk; the customer's answer bridges
//! them, recorded like any call (customer left, agent right). The same
//! dial permissions as an agent's own outbound call apply.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::super::dialog::DialogId;
use super::super::flow::Flow;
use super::super::message::{Request, Response};
use super::super::transaction::ClientTxId;
use super::outbound::{permission_for, Bridge, Side};
use super::queue_calls::Role;
use super::uac::{negotiate, NewLeg};
use super::{ClientOutcome, ClientPurpose, Endpoint, Output};
use crate::call::record::{CallDirection, CallOutcome, CallRecordBuilder, HungUpBy};
use crate::config::AgentId;
use crate::control::{ControlError, ControlErrorKind, Event, Reply};
use crate::media::control::MediaCommand;
use crate::media::player::{PlayItem, Player};
use crate::media::relay::LegId;
use crate::media::session::{Feed, SessionId};

/// One of our INVITEs of a click-to-call, not answered yet.
#[derive(Debug)]
struct Pending {
    call: u64,
    invite: Request,
    flow: Flow,
    leg: NewLeg,
}

/// A click-to-call in progress.
#[derive(Debug)]
struct Originating {
    agent: AgentId,
    number: String,
    /// Once the agent answered: its leg and the session.
    agent_leg: Option<(DialogId, SessionId)>,
    /// Our INVITE to the trunk, once sent.
    customer_tx: Option<ClientTxId>,
    record: CallRecordBuilder,
}

#[derive(Default)]
pub(super) struct Originate {
    calls: HashMap<u64, Originating>,
    invites: HashMap<ClientTxId, Pending>,
}

impl Originate {
    /// Our INVITE on `tx` and where it went.
    pub(super) fn invite_sent(&self, tx: ClientTxId) -> Option<(Request, Flow)> {
        let p = self.invites.get(&tx)?;
        Some((p.invite.clone(), p.flow.clone()))
    }

    /// The INVITE sent on `old` goes on as `invite`, sent on `new` (the
    /// carrier challenged the first one).
    pub(super) fn follow(&mut self, old: ClientTxId, new: ClientTxId, invite: Request) {
        let Some(mut p) = self.invites.remove(&old) else {
            return;
        };
        p.invite = invite;
        if let Some(o) = self.calls.get_mut(&p.call) {
            if o.customer_tx == Some(old) {
                o.customer_tx = Some(new);
            }
        }
        self.invites.insert(new, p);
    }
}

/// What the agent hears while the customer's phone rings: 425 Hz, 1 s on,
/// 4 s off (ITU-T E.180 ringing tone).
pub(super) fn ringback() -> Feed {
    let items = vec![
        PlayItem::Tone {
            freq_hz: 425.0,
            amplitude: 6000,
            duration: Duration::from_secs(1),
        },
        PlayItem::Silence(Duration::from_secs(4)),
    ];
    Feed::Play(Player::new(items, true))
}

fn refused(kind: ControlErrorKind, why: impl Into<String>) -> ControlError {
    ControlError::new(kind, why)
}

impl Endpoint {
    /// Starts a click-to-call: rings the agent's phone.
    pub(super) fn originate(
        &mut self,
        now: Instant,
        agent: &str,
        number: &str,
    ) -> Result<Reply, ControlError> {
        let id: AgentId = agent
            .parse()
            .ok()
            .filter(|a: &AgentId| self.config.agents.iter().any(|(x, _)| x == a.as_str()))
            .ok_or_else(|| refused(ControlErrorKind::NotFound, format!("no agent {agent}")))?;
        let needed = permission_for(number).ok_or_else(|| {
            refused(
                ControlErrorKind::Invalid,
                format!("{number:?} is no number"),
            )
        })?;
        if !self.may_dial(agent, needed) {
            return Err(refused(
                ControlErrorKind::Invalid,
                format!("agent {agent} may not dial {needed:?} numbers"),
            ));
        }
        if self.outbound_trunk().is_none() {
            return Err(refused(ControlErrorKind::Unavailable, "no trunk"));
        }
        let binding = self.agent_contact(agent).ok_or_else(|| {
            refused(
                ControlErrorKind::Conflict,
                format!("agent {agent} has no phone registered"),
            )
        })?;
        let leg = self
            .new_leg()
            .ok_or_else(|| refused(ControlErrorKind::Unavailable, "no RTP ports free"))?;
        let flow = binding.flow.clone();
        let from = self.our_name_addr(&flow, number, Some(format!("Call to {number}")));
        let to = self.our_name_addr(&flow, agent, None);
        let invite = self.build_invite(&flow, binding.contact.uri.clone(), from, to, &leg.sdp);
        let Some(tx) = self.send_request(now, &invite, &flow, ClientPurpose::Originate) else {
            self.calls.release_ports(leg.ports);
            return Err(refused(ControlErrorKind::Unavailable, "INVITE not sent"));
        };
        let call = self.queues.next;
        self.queues.next += 1;
        info!(call, %agent, %number, "click-to-call: ringing the agent");
        let record = CallRecordBuilder::new(
            invite.headers.call_id.to_string(),
            CallDirection::Outbound,
            agent,
            number,
            self.wall(now),
        );
        self.originate.invites.insert(
            tx,
            Pending {
                call,
                invite,
                flow,
                leg,
            },
        );
        self.originate.calls.insert(
            call,
            Originating {
                agent: id,
                number: number.to_owned(),
                agent_leg: None,
                customer_tx: None,
                record,
            },
        );
        self.event(Event::CallRinging {
            call,
            agent: agent.to_owned(),
        });
        Ok(Reply::Done)
    }

    /// What the agent's phone or the trunk answered to one of our INVITEs.
    pub(super) fn originate_outcome(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        outcome: ClientOutcome<'_>,
    ) {
        if matches!(outcome, ClientOutcome::Response(r) if r.status < 200) {
            return;
        }
        let Some(pending) = self.originate.invites.remove(&tx) else {
            return;
        };
        let call = pending.call;
        let agent_side = self
            .originate
            .calls
            .get(&call)
            .is_some_and(|o| o.agent_leg.is_none());
        match outcome {
            ClientOutcome::Response(r) if r.status < 300 => {
                if agent_side {
                    self.originate_agent_answered(now, tx, pending, r);
                } else {
                    self.originate_customer_answered(now, tx, pending, r);
                }
            }
            outcome => {
                self.calls.release_ports(pending.leg.ports);
                let status = outcome.status();
                let by = if agent_side {
                    HungUpBy::Agent
                } else {
                    HungUpBy::Customer
                };
                self.originate_failed(now, call, by, format!("answered {status}"));
            }
        }
    }

    fn originate_agent_answered(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        pending: Pending,
        r: &Response,
    ) {
        let call = pending.call;
        let Some(id) = self.accept_2xx(tx, &pending.invite, &pending.flow, r) else {
            self.calls.release_ports(pending.leg.ports);
            return self.originate_failed(now, call, HungUpBy::Agent, "no dialog".into());
        };
        let Some(negotiated) = negotiate(&pending.leg.sdp, &r.body) else {
            self.send_bye(now, &id, pending.flow.clone());
            self.calls.release_ports(pending.leg.ports);
            return self.originate_failed(now, call, HungUpBy::Gateway, "no common codec".into());
        };
        self.calls.add_leg(
            id.clone(),
            pending.flow.clone(),
            pending.leg.ports,
            pending.leg.sdp,
            None,
            Role::Outbound(Side::Agent),
        );
        let session = self.new_session();
        self.open_leg(&id, session, LegId::Agent, negotiated, ringback());
        let Some(number) = self.originate.calls.get_mut(&call).map(|o| {
            o.agent_leg = Some((id.clone(), session));
            o.number.clone()
        }) else {
            return;
        };
        // The agent is on the line: now the customer.
        let placed = self
            .place_trunk_call(now, &number, ClientPurpose::Originate)
            .map(|(tx, invite, flow, leg)| {
                (
                    tx,
                    Pending {
                        call,
                        invite,
                        flow,
                        leg,
                    },
                )
            });
        match placed {
            Some((tx, pending)) => {
                info!(call, %number, "click-to-call: calling the customer");
                self.originate.invites.insert(tx, pending);
                if let Some(o) = self.originate.calls.get_mut(&call) {
                    o.customer_tx = Some(tx);
                }
            }
            None => {
                self.hang_up(now, &id, "customer not called");
                self.originate_failed(now, call, HungUpBy::Gateway, "trunk unavailable".into());
            }
        }
    }

    fn originate_customer_answered(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        pending: Pending,
        r: &Response,
    ) {
        let call = pending.call;
        let Some(id) = self.accept_2xx(tx, &pending.invite, &pending.flow, r) else {
            self.calls.release_ports(pending.leg.ports);
            return self.originate_failed(now, call, HungUpBy::Customer, "no dialog".into());
        };
        let negotiated = negotiate(&pending.leg.sdp, &r.body);
        let originating = self.originate.calls.remove(&call);
        let (Some(negotiated), Some(o)) = (negotiated, originating) else {
            // The agent hung up meanwhile, or no common codec.
            self.send_bye(now, &id, pending.flow.clone());
            self.calls.release_ports(pending.leg.ports);
            return;
        };
        let Some((agent_leg, session)) = o.agent_leg else {
            return;
        };
        self.calls.add_leg(
            id.clone(),
            pending.flow.clone(),
            pending.leg.ports,
            pending.leg.sdp,
            None,
            Role::Outbound(Side::Customer),
        );
        self.open_leg(&id, session, LegId::Caller, negotiated, Feed::Other);
        self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
            session,
            leg: LegId::Agent,
            feed: Feed::Other,
        }));
        let mut record = o.record;
        record.answered(o.agent.clone(), self.wall(now));
        let bridge = Bridge {
            call,
            session,
            agent: o.agent,
            number: o.number,
            agent_leg,
            customer_leg: id,
        };
        self.outbound_bridged(now, bridge, record);
    }

    /// A click-to-call that will not connect: the agent's leg (if up) is
    /// hung up, the record written.
    fn originate_failed(&mut self, now: Instant, call: u64, by: HungUpBy, why: String) {
        let Some(mut o) = self.originate.calls.remove(&call) else {
            return;
        };
        info!(call, agent = %o.agent, reason = %why, "click-to-call failed");
        o.record
            .ended(self.wall(now), CallOutcome::Failed, Some(by), why);
        self.outputs
            .push_back(Output::CallRecord(Box::new(o.record.finish())));
        self.event(Event::CallEnded {
            call,
            agent: Some(o.agent.to_string()),
            outcome: "failed".to_owned(),
        });
        if let Some((leg, _)) = o.agent_leg {
            self.hang_up(now, &leg, "click-to-call failed");
        }
    }

    /// The agent's leg of a click-to-call ended while the customer's phone
    /// rang: the trunk leg is cancelled. True when `leg` was such a leg.
    pub(super) fn originate_agent_gone(&mut self, now: Instant, leg: &DialogId, why: &str) -> bool {
        let Some(call) = self
            .originate
            .calls
            .iter()
            .find(|(_, o)| o.agent_leg.as_ref().is_some_and(|(l, _)| l == leg))
            .map(|(c, _)| *c)
        else {
            return false;
        };
        let Some(mut o) = self.originate.calls.remove(&call) else {
            return false;
        };
        if let Some(tx) = o.customer_tx {
            if let Err(error) = self.tx.cancel(now, tx) {
                debug!(%error, "nothing to cancel");
            }
            if let Some(p) = self.originate.invites.remove(&tx) {
                self.calls.release_ports(p.leg.ports);
            }
        }
        o.record.ended(
            self.wall(now),
            CallOutcome::Abandoned,
            Some(HungUpBy::Agent),
            why,
        );
        self.outputs
            .push_back(Output::CallRecord(Box::new(o.record.finish())));
        true
    }
}
