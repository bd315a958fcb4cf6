//! OPTIONS pings to registered contacts ("qualify"): a contact that stops
//! answering is marked unreachable so that calls are not offered to it.

use std::time::Instant;

use bytes::Bytes;

use super::super::message::{CSeq, CallId, Headers, Method, NameAddr, Request, SipUri, Uri, Via};
use super::super::registrar::Probe;
use super::{ClientPurpose, Endpoint};

impl Endpoint {
    pub(super) fn send_qualify(&mut self, now: Instant, probe: Probe) {
        let Ok(target) = probe.contact.parse::<Uri>() else {
            return;
        };
        let via_host = self.local_host(&probe.flow);
        let from_uri = SipUri::new(via_host.clone()).with_user("switchboard");
        let mut headers = Headers::new(
            NameAddr::new(from_uri.into()).with_tag(&self.ids.tag()),
            NameAddr::new(target.clone()),
            CallId::new(self.ids.call_id(&self.config.domain)),
            CSeq {
                seq: 1,
                method: Method::Options,
            },
        );
        let mut via = Via::new(
            probe.flow.transport.as_str(),
            via_host,
            Some(probe.flow.local.port()),
            &self.ids.branch(),
        );
        via.params.set("rport", None);
        headers.via.push(via);
        headers.max_forwards = Some(70);
        let request = Request {
            method: Method::Options,
            uri: target,
            headers,
            body: Bytes::new(),
        };
        let reliable = probe.flow.is_reliable();
        let tx = match self.tx.send_request(now, request, probe.flow, reliable) {
            Ok(tx) => tx,
            Err(error) => {
                // Our own request: a failure here is a bug, not bad input.
                tracing::error!(%error, "qualify OPTIONS not sent");
                return;
            }
        };
        self.clients.insert(
            tx,
            ClientPurpose::Qualify {
                aor: probe.aor,
                contact: probe.contact,
            },
        );
    }
}
