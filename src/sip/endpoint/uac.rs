//! The gateway as the caller (UAC): the INVITEs it sends to agents' phones
//! and to the trunk, each with our SDP offer for a new leg, and the ACK of
//! their 2xx, which is also kept to answer the 2xx's retransmissions
//! (RFC 3261 §13.2.2.4, RFC 6026 §7.2).

use std::time::Instant;

use bytes::Bytes;
use tracing::{info, warn};

use super::super::dialog::{Dialog, DialogId};
use super::super::flow::Flow;
use super::super::message::{
    CSeq, CallId as SipCallId, Contacts, HeaderName, Headers, Method, NameAddr, Request, Response,
    SipUri, Uri, Via,
};
use super::super::registrar::Binding;
use super::super::transaction::ClientTxId;
use super::{ClientPurpose, Endpoint, Output};
use crate::media::ports::PortPair;
use crate::media::sdp::{accept_answer, make_offer, Negotiated, SessionDescription};

/// A leg we offer: its ports and our SDP offer on them.
#[derive(Debug)]
pub(super) struct NewLeg {
    pub(super) ports: PortPair,
    pub(super) sdp: SessionDescription,
}

impl Endpoint {
    /// Ports and our SDP offer for a leg we are about to call; `None` when
    /// media is off or no port pair is free.
    pub(super) fn new_leg(&mut self) -> Option<NewLeg> {
        let settings = self.calls.settings()?.clone();
        let Some(ports) = self.calls.allocate_ports() else {
            warn!("no RTP port pair free: call not placed");
            return None;
        };
        let local = super::calls::our_media(
            settings.address,
            ports.rtp(),
            rand::random::<u32>().into(),
            1,
        );
        let sdp = make_offer(&local, &settings.preferences);
        Some(NewLeg { ports, sdp })
    }

    /// The agent's most recently registered reachable phone.
    pub(super) fn agent_contact(&self, agent: &str) -> Option<Binding> {
        let found = self
            .registrar
            .contacts(agent)
            .iter()
            .filter(|b| b.reachable)
            .max_by_key(|b| b.expires_at)
            .cloned();
        if found.is_none() {
            info!(%agent, "agent has no reachable phone registered");
        }
        found
    }

    /// An INVITE of ours to `target` over `flow`, carrying `sdp`: a new
    /// Call-ID and From tag, our Contact, a Via with a fresh branch.
    pub(super) fn build_invite(
        &mut self,
        flow: &Flow,
        target: Uri,
        from: NameAddr,
        to: NameAddr,
        sdp: &SessionDescription,
    ) -> Request {
        let host = self.local_host(flow);
        let mut headers = Headers::new(
            from.with_tag(&self.ids.tag()),
            to,
            SipCallId::new(self.ids.call_id(&self.config.domain)),
            CSeq {
                seq: 1,
                method: Method::Invite,
            },
        );
        let mut via = Via::new(
            flow.transport.as_str(),
            host.clone(),
            Some(flow.local.port()),
            &self.ids.branch(),
        );
        via.params.set("rport", None);
        headers.via.push(via);
        headers.max_forwards = Some(70);
        let contact = SipUri::new(host)
            .with_user("switchboard")
            .with_port(flow.local.port());
        headers.contact = Contacts::List(vec![NameAddr::new(contact.into())]);
        headers.push(HeaderName::Allow, super::requests::ALLOW);
        headers.push(HeaderName::UserAgent, self.config.user_agent.clone());
        headers.push(HeaderName::ContentType, "application/sdp");
        Request {
            method: Method::Invite,
            uri: target,
            headers,
            body: Bytes::from(sdp.to_string()),
        }
    }

    /// Sends one of our requests in a client transaction and remembers what
    /// it is for. `None` (logged) when the transaction layer refuses it.
    pub(super) fn send_request(
        &mut self,
        now: Instant,
        request: &Request,
        flow: &Flow,
        purpose: ClientPurpose,
    ) -> Option<ClientTxId> {
        let reliable = flow.is_reliable();
        match self
            .tx
            .send_request(now, request.clone(), flow.clone(), reliable)
        {
            Ok(tx) => {
                self.clients.insert(tx, purpose);
                Some(tx)
            }
            Err(error) => {
                // Our own request: a refusal here is a bug, not bad input.
                tracing::error!(%error, method = %request.method, "request not sent");
                None
            }
        }
    }

    /// Calls `number` through the trunk for one of our calls: ports, our
    /// offer, the INVITE sent for `purpose`. `None` when no trunk, ports or
    /// transaction can be had; nothing is left held then.
    pub(super) fn place_trunk_call(
        &mut self,
        now: Instant,
        number: &str,
        purpose: ClientPurpose,
    ) -> Option<(ClientTxId, Request, Flow, NewLeg)> {
        let (_, flow, caller_id) = self.outbound_trunk()?;
        let leg = self.new_leg()?;
        let invite = self.trunk_invite(&flow, number, &caller_id, &leg.sdp);
        match self.send_request(now, &invite, &flow, purpose) {
            Some(tx) => Some((tx, invite, flow, leg)),
            None => {
                self.calls.release_ports(leg.ports);
                None
            }
        }
    }

    /// A From (or To) for one of our requests: `user@<our host>`.
    pub(super) fn our_name_addr(
        &self,
        flow: &Flow,
        user: &str,
        display: Option<String>,
    ) -> NameAddr {
        let user = if user.is_empty() { "anonymous" } else { user };
        let mut n = NameAddr::new(SipUri::new(self.local_host(flow)).with_user(user).into());
        n.display = display;
        n
    }

    /// A 2xx to our INVITE `invite` (transaction `tx`, sent over `flow`):
    /// the dialog is created and kept, the ACK sent (and kept for the 2xx's
    /// retransmissions). `None` when the 2xx forms no usable dialog.
    pub(super) fn accept_2xx(
        &mut self,
        tx: ClientTxId,
        invite: &Request,
        flow: &Flow,
        response: &Response,
    ) -> Option<DialogId> {
        let dialog = match Dialog::uac(invite, response) {
            Ok(d) => d,
            Err(error) => {
                warn!(%error, "a 2xx to our INVITE forms no dialog");
                return None;
            }
        };
        let id = dialog.id().clone();
        let mut via = Via::new(
            flow.transport.as_str(),
            self.local_host(flow),
            Some(flow.local.port()),
            &self.ids.branch(),
        );
        via.params.set("rport", None);
        let ack = Bytes::from(dialog.ack_for_2xx(invite.headers.cseq.seq, via).to_bytes());
        self.outputs.push_back(Output::Transmit {
            flow: flow.clone(),
            data: ack.clone(),
        });
        self.queues.acks.insert(tx, (flow.clone(), ack));
        if let Err(error) = self.dialogs.insert(dialog) {
            warn!(%error, "dialog not kept");
            return None;
        }
        Some(id)
    }
}

/// The media a 2xx's SDP answer to our offer sets up.
pub(super) fn negotiate(offer: &SessionDescription, answer: &[u8]) -> Option<Negotiated> {
    SessionDescription::parse_bytes(answer)
        .ok()
        .and_then(|a| accept_answer(offer, &a).ok())
}
