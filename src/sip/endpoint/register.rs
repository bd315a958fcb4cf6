//! REGISTER (RFC 3261 §10.3) and digest authentication of agents
//! (RFC 3261 §22, RFC 8760).

use std::time::{Instant, SystemTime};

use tracing::{debug, warn};

use super::super::auth::{Credentials, Verdict};
use super::super::flow::Flow;
use super::super::message::{http_date, Contacts, HeaderName, Host, Request, Response};
use super::super::registrar::RegisterError;
use super::Endpoint;

impl Endpoint {
    pub(super) fn register(
        &mut self,
        now: Instant,
        wall: SystemTime,
        request: &Request,
        source: &Flow,
    ) -> Response {
        // RFC 3261 §10.3 step 1: only our own domain is registered here.
        if !self.is_our_domain(request) {
            return self.reply(request, 404);
        }
        // The address of record must be a SIP URI (§10.2; RFC 4475 §3.3.4).
        if request.headers.to.uri.as_sip().is_none() {
            return self.reply(request, 400);
        }
        let user = match self.authenticate(now, request, source, false) {
            Ok(user) => user,
            Err(response) => return *response,
        };
        // Step 3 and 6: the authenticated user may change only its own AOR.
        let aor = request
            .headers
            .to
            .uri
            .as_sip()
            .and_then(|u| u.user.as_deref());
        if aor != Some(user.as_str()) {
            warn!(%user, to = %request.headers.to.uri, remote = %source.remote, "REGISTER for another user");
            return self.reply(request, 403);
        }
        match self.registrar.register(now, wall, &user, request, source) {
            Ok(contacts) => {
                // A query (§10.2.3) changes nothing: not worth a log line.
                if !request.headers.contact.is_empty() {
                    debug!(agent = %user, contacts = contacts.len(), remote = %source.remote, "registered");
                }
                let mut r = self.reply(request, 200);
                r.headers.contact = Contacts::List(contacts);
                r.headers.push(HeaderName::Date, http_date(wall));
                r
            }
            Err(error) => {
                let mut r = self.reply(request, error.status());
                if let RegisterError::IntervalTooBrief { min } = error {
                    r.headers.push(HeaderName::MinExpires, min.to_string());
                }
                r
            }
        }
    }

    fn is_our_domain(&self, request: &Request) -> bool {
        let Some(uri) = request.uri.as_sip() else {
            return false;
        };
        match &uri.host {
            Host::Domain(d) => d.eq_ignore_ascii_case(&self.config.domain),
            Host::Ip(ip) => {
                self.config.domain.parse() == Ok(*ip)
                    || ip.is_loopback()
                    || ip.is_unspecified()
                    || Host::Ip(*ip).to_string() == self.config.domain
            }
        }
    }

    /// Authenticates a request with digest credentials. `proxy` selects
    /// 407/Proxy-Authorization (INVITE) over 401/Authorization (REGISTER).
    /// Unknown users get exactly the same treatment as a wrong password, so
    /// that no one can enumerate agents.
    pub(super) fn authenticate(
        &mut self,
        now: Instant,
        request: &Request,
        source: &Flow,
        proxy: bool,
    ) -> Result<String, Box<Response>> {
        let ip = source.remote.ip();
        if self.limiter.is_blocked(now, ip) {
            return Err(Box::new(self.reply(request, 403)));
        }
        let header = if proxy {
            HeaderName::ProxyAuthorization
        } else {
            HeaderName::Authorization
        };
        // A request may carry credentials for several realms (§22.3); ours
        // is the one to check. Credentials for another realm only get a
        // challenge (RFC 4475 §3.3.7).
        let mut ours = None;
        for value in request.headers.get_all(&header) {
            match Credentials::parse(value) {
                Ok(c) if c.realm == self.config.realm => {
                    ours = Some(c);
                    break;
                }
                // Another realm, another scheme or credentials we cannot
                // read: a fresh challenge tells the client what we want
                // (RFC 4475 §3.3.7).
                Ok(_) | Err(_) => {}
            }
        }
        let Some(credentials) = ours else {
            return Err(Box::new(self.challenge(now, request, proxy, false)));
        };
        if !digest_uri_matches(&credentials, &request.uri.to_string()) {
            return Err(Box::new(self.reply(request, 400)));
        }
        let secret = self.users.get(credentials.username.as_str());
        match self
            .verifier
            .verify(now, request.method.as_str(), &credentials, secret)
        {
            Verdict::Ok => {
                self.limiter.record_success(ip);
                Ok(credentials.username)
            }
            Verdict::Stale => Err(Box::new(self.challenge(now, request, proxy, true))),
            Verdict::Failed(reason) => {
                let blocked = self.limiter.record_failure(now, ip);
                warn!(user = %credentials.username, remote = %source.remote, ?reason, blocked, "authentication failed");
                Err(Box::new(self.reply(request, 403)))
            }
        }
    }

    fn challenge(&mut self, now: Instant, request: &Request, proxy: bool, stale: bool) -> Response {
        let (status, header) = if proxy {
            (407, HeaderName::ProxyAuthenticate)
        } else {
            (401, HeaderName::WwwAuthenticate)
        };
        let mut r = self.reply(request, status);
        for challenge in self.verifier.challenges(now, stale) {
            r.headers.push(header.clone(), challenge.to_header_value());
        }
        r
    }
}

/// RFC 2617 §3.2.2.5: the digest-uri must be the Request-URI. SIPp 3.6 writes
/// IPv6 hosts without brackets there (`sip:::1:5060`), so brackets are not
/// significant in the comparison; the response hash still covers the exact
/// text the client used.
fn digest_uri_matches(credentials: &Credentials, request_uri: &str) -> bool {
    let unbracketed = |s: &str| s.replace(['[', ']'], "");
    credentials.uri_matches(request_uri)
        || unbracketed(&credentials.uri) == unbracketed(request_uri)
}
