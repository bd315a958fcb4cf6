//! Registering with carrier trunks that want it: one sans-IO
//! `TrunkRegistration` per trunk, driven here through the transaction layer.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::super::flow::Flow;
use super::super::message::{HeaderName, NameAddr, SipUri, Via};
use super::super::registration::{
    RegistrationConfig, RegistrationEvent, RegistrationState, TrunkRegistration,
};
use super::super::transport::Transport;
use super::{ClientPurpose, Endpoint, EndpointConfig};
use crate::config::Trunk;
use crate::sip::message::CallId;

/// Our socket towards `peer`: the listener of the trunk's transport in the
/// peer's address family.
pub(super) fn flow_to(
    listen: &[(Transport, SocketAddr)],
    t: Transport,
    peer: SocketAddr,
) -> Option<Flow> {
    listen
        .iter()
        .find(|(lt, addr)| *lt == t && addr.is_ipv4() == peer.is_ipv4())
        .map(|(_, local)| Flow {
            transport: t,
            local: *local,
            remote: peer,
            connection: None,
        })
}

/// Builds the registrations of every trunk with a `[trunks.register]`
/// section. Trunks whose registration cannot be set up are logged and left
/// out rather than stopping the gateway.
pub(super) fn build(
    config: &EndpointConfig,
    ids: &mut super::ids::IdGenerator,
    now: Instant,
) -> Vec<(TrunkRegistration, Flow)> {
    let mut out = Vec::new();
    for trunk in &config.trunks {
        let Trunk {
            name,
            peer,
            register: Some(section),
            ..
        } = trunk
        else {
            continue;
        };
        let t = trunk.transport;
        let Some(flow) = flow_to(&config.listen, t, *peer) else {
            warn!(trunk = %name, transport = %t, "no listener to register with this trunk from");
            continue;
        };
        let host = super::local_host_of(&config.domain, &flow);
        let mut contact_uri = SipUri::new(host.clone()).with_user(&section.username);
        contact_uri.port = Some(flow.local.port());
        if t == Transport::Tcp {
            contact_uri.params.set("transport", Some("tcp".to_owned()));
        }
        let mut via = Via::new(t.as_str(), host, Some(flow.local.port()), "");
        via.params.set("rport", None);
        let call_id = CallId::new(ids.call_id(&config.domain));
        match RegistrationConfig::from_trunk(
            name,
            section,
            NameAddr::new(contact_uri.into()),
            via,
            call_id,
            ids.tag(),
        ) {
            Ok(rc) => {
                let tokens = Box::new(|| format!("{:016x}", rand::random::<u64>()));
                out.push((TrunkRegistration::new(rc, tokens, now), flow));
            }
            Err(error) => warn!(trunk = %name, %error, "trunk registration not started"),
        }
    }
    out
}

impl Endpoint {
    /// Sends what the trunk registrations want sent and logs what they report.
    pub(super) fn drive_trunks(&mut self, now: Instant) {
        for index in 0..self.trunks.len() {
            let (reg, flow) = &mut self.trunks[index];
            if reg.poll_timeout().is_some_and(|t| t <= now) {
                reg.handle_timeout(now);
            }
            let mut requests = Vec::new();
            while let Some(mut request) = reg.poll_request(now) {
                request
                    .headers
                    .push(HeaderName::UserAgent, self.config.user_agent.clone());
                requests.push(request);
            }
            let flow = flow.clone();
            while let Some(event) = self.trunks[index].0.poll_event() {
                log_event(&event);
            }
            for request in requests {
                let reliable = flow.is_reliable();
                match self.tx.send_request(now, request, flow.clone(), reliable) {
                    Ok(tx) => {
                        self.clients.insert(tx, ClientPurpose::TrunkRegister(index));
                    }
                    Err(error) => tracing::error!(%error, "trunk REGISTER not sent"),
                }
            }
        }
    }

    /// Starts un-registering from every trunk (at shutdown).
    pub fn shutdown(&mut self, now: Instant) {
        // Calls first: their BYEs leave while the sockets are still open.
        self.hang_up_all(now);
        for (reg, _) in &mut self.trunks {
            reg.shutdown(now);
        }
        self.drive_trunks(now);
    }

    /// True when nothing is left to finish before the process may exit.
    pub fn is_idle(&self) -> bool {
        self.trunks
            .iter()
            .all(|(reg, _)| matches!(reg.state(), RegistrationState::Unregistered))
    }

    pub(super) fn trunks_timeout(&self) -> Option<Instant> {
        self.trunks
            .iter()
            .filter_map(|(r, _)| r.poll_timeout())
            .min()
    }
}

fn log_event(event: &RegistrationEvent) {
    match event {
        RegistrationEvent::Registered {
            trunk,
            expires,
            renewed: false,
            ..
        } => {
            info!(%trunk, expires_secs = expires.as_secs(), "registered with trunk")
        }
        RegistrationEvent::Registered {
            trunk,
            expires,
            renewed: true,
            ..
        } => {
            debug!(%trunk, expires_secs = expires.as_secs(), "trunk registration renewed")
        }
        RegistrationEvent::Lapsed { trunk } => warn!(%trunk, "trunk registration lapsed"),
        RegistrationEvent::Failed { trunk, reason, .. } => {
            warn!(%trunk, %reason, "trunk registration failed; will retry")
        }
        RegistrationEvent::Unregistered {
            trunk,
            result: Ok(()),
        } => info!(%trunk, "unregistered from trunk"),
        RegistrationEvent::Unregistered {
            trunk,
            result: Err(reason),
        } => {
            warn!(%trunk, %reason, "unregistering from trunk failed")
        }
    }
}
