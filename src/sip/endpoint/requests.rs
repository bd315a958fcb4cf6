//! The answer to each request outside a dialog: checks common to all
//! methods (RFC 3261 §8.2), then one handler per method.

use std::time::{Instant, SystemTime};

use super::super::flow::Flow;
use super::super::message::{HeaderName, Method, Request, Response, Uri};
use super::Endpoint;

/// Methods we implement, for Allow (RFC 3261 §20.5).
pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO";

/// What we accept as a body (RFC 3261 §8.2.3).
const ACCEPT: &str = "application/sdp";

/// The DTMF bodies a SIP INFO may carry besides SDP.
const INFO_BODIES: [&str; 2] = ["application/dtmf-relay", "application/dtmf"];

impl Endpoint {
    /// A response with our To tag and Server header.
    pub(super) fn reply(&mut self, request: &Request, status: u16) -> Response {
        *self.responses.entry(status).or_default() += 1;
        let tag = (status > 100).then(|| self.ids.tag());
        let mut response = request.response(status, tag.as_deref());
        response
            .headers
            .push(HeaderName::Server, self.config.user_agent.clone());
        response
    }

    /// A response with a To tag we already gave the dialog (a final response
    /// after a provisional one).
    pub(super) fn reply_tagged(&mut self, request: &Request, status: u16, tag: &str) -> Response {
        *self.responses.entry(status).or_default() += 1;
        let mut response = request.response(status, Some(tag));
        response
            .headers
            .push(HeaderName::Server, self.config.user_agent.clone());
        response
    }

    /// Decides the final response to a request outside any transaction state.
    pub(super) fn answer(
        &mut self,
        now: Instant,
        wall: SystemTime,
        request: &Request,
        source: &Flow,
    ) -> Response {
        // RFC 3261 §8.2.2.1: we serve SIP and SIPS URIs only.
        if !matches!(request.uri, Uri::Sip(_)) {
            return self.reply(request, 416);
        }
        // RFC 3261 §8.2.2.3: we support no extension that can be required.
        let unsupported: Vec<String> = request
            .headers
            .tokens(&HeaderName::Require)
            .map(str::to_owned)
            .collect();
        if !unsupported.is_empty() && request.method != Method::Cancel {
            let mut r = self.reply(request, 420);
            r.headers
                .push(HeaderName::Unsupported, unsupported.join(", "));
            return r;
        }
        // RFC 3261 §8.2.3: bodies we cannot read.
        if !request.body.is_empty() && !self.acceptable_body(request) {
            let mut r = self.reply(request, 415);
            r.headers.push(HeaderName::Accept, ACCEPT);
            return r;
        }
        if request.headers.to.tag().is_some() {
            return self.in_dialog(now, request);
        }
        match &request.method {
            Method::Register => self.register(now, wall, request, source),
            Method::Options => {
                let mut r = self.reply(request, 200);
                r.headers.push(HeaderName::Allow, ALLOW);
                r.headers.push(HeaderName::Accept, ACCEPT);
                r
            }
            Method::Invite => self.invite(now, wall, request, source),
            Method::Bye
            | Method::Info
            | Method::Update
            | Method::Prack
            | Method::Notify
            | Method::Refer => self.reply(request, 481),
            Method::Ack | Method::Cancel => self.reply(request, 400),
            Method::Subscribe | Method::Publish | Method::Message => {
                let mut r = self.reply(request, 405);
                r.headers.push(HeaderName::Allow, ALLOW);
                r
            }
            Method::Extension(_) => {
                let mut r = self.reply(request, 501);
                r.headers.push(HeaderName::Allow, ALLOW);
                r
            }
        }
    }

    /// An absent Accept means application/sdp (RFC 3261 §20.1).
    fn accepts_sdp(&self, request: &Request) -> bool {
        let mut ranges = request.headers.tokens(&HeaderName::Accept).peekable();
        if ranges.peek().is_none() {
            return true;
        }
        ranges.any(|range| {
            let media = range.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case(ACCEPT)
                || media == "*/*"
                || media.eq_ignore_ascii_case("application/*")
        })
    }

    fn acceptable_body(&self, request: &Request) -> bool {
        let content_type = request.headers.get(&HeaderName::ContentType).unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        // An INFO also carries a key press (`Endpoint::info_digit`, which
        // answers bodies it cannot read itself).
        media.eq_ignore_ascii_case(ACCEPT)
            || (request.method == Method::Info
                && INFO_BODIES.iter().any(|t| media.eq_ignore_ascii_case(t)))
    }

    /// A request is the carrier's when it comes from a trunk's peer address
    /// or source networks (`Trunk::is_source`).
    fn is_trunk_peer(&self, source: &Flow) -> bool {
        self.config
            .trunks
            .iter()
            .any(|t| t.is_source(source.remote))
    }

    /// Calls are not routed yet (the call-handling issue): a known target is
    /// temporarily unavailable, an unknown one does not exist. Anything not
    /// from a trunk must authenticate first, so that no one probes our
    /// numbers or, later, our trunks for free.
    fn invite(
        &mut self,
        now: Instant,
        wall: SystemTime,
        request: &Request,
        source: &Flow,
    ) -> Response {
        // RFC 3261 §21.4.7: our answers carry SDP; a caller that accepts no
        // SDP cannot be served.
        if !self.accepts_sdp(request) {
            let mut r = self.reply(request, 406);
            r.headers.push(HeaderName::Accept, ACCEPT);
            return r;
        }
        let agent = if self.is_trunk_peer(source) {
            None
        } else {
            match self.authenticate(now, request, source, true) {
                Ok(user) => Some(user),
                Err(response) => return *response,
            }
        };
        if let Some(response) = self.test_call(now, wall, request, source) {
            return response;
        }
        if let Some(user) = &agent {
            if let Some(response) = self.feature_call(now, request, source, user) {
                return response;
            }
        }
        if let Some(response) = self.routed_call(now, request, source, agent.as_deref()) {
            return response;
        }
        // Only an authenticated agent may reach the trunk; a carrier's call
        // for a number we do not serve is never sent back out.
        if let Some(user) = &agent {
            if let Some(response) = self.outbound_call(now, request, source, user) {
                return response;
            }
        }
        let target = Self::dialled(request);
        let status = if self.config.known_targets.contains(&target) {
            480
        } else {
            404
        };
        self.reply(request, status)
    }
}
