//! Answering a server's digest challenges as a client (RFC 3261 §22.2-22.3):
//! the trunk registration's REGISTERs and our INVITEs to a carrier. An
//! accepted nonce is reused for later requests (RFC 7616 §3.4: the nonce
//! count numbers the requests a client sends with one nonce).

use thiserror::Error;

use super::{respond, AuthError, Challenge, Qop};
use crate::sip::message::{HeaderName, Response};

/// Why a 401 or 407 could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    /// The response carries no WWW-Authenticate (401) or Proxy-Authenticate
    /// (407) header.
    #[error("{0} without a challenge")]
    Missing(u16),
    /// None of the challenges can be answered; the error of the topmost.
    #[error("no usable challenge: {0}")]
    Unusable(AuthError),
    /// Challenged again, not as stale, right after our answer: the user
    /// name or password is wrong for this realm.
    #[error("credentials refused by realm {realm:?}")]
    BadCredentials { realm: String },
}

/// Who challenged: the registrar itself (401) or a proxy on the way (407).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenger {
    Registrar,
    Proxy,
}

impl Challenger {
    fn challenge_header(self) -> HeaderName {
        match self {
            Challenger::Registrar => HeaderName::WwwAuthenticate,
            Challenger::Proxy => HeaderName::ProxyAuthenticate,
        }
    }

    /// RFC 3261 §22.2 and §22.3: WWW-Authenticate is answered in
    /// Authorization, Proxy-Authenticate in Proxy-Authorization.
    fn credentials_header(self) -> HeaderName {
        match self {
            Challenger::Registrar => HeaderName::Authorization,
            Challenger::Proxy => HeaderName::ProxyAuthorization,
        }
    }

    /// The challenger of a 401 or 407; `None` for any other status.
    pub fn of_status(status: u16) -> Option<Challenger> {
        match status {
            401 => Some(Challenger::Registrar),
            407 => Some(Challenger::Proxy),
            _ => None,
        }
    }

    fn status(self) -> u16 {
        match self {
            Challenger::Registrar => 401,
            Challenger::Proxy => 407,
        }
    }
}

/// A challenge we answer, with the nonce count last used with its nonce.
#[derive(Debug, Clone)]
struct Session {
    challenge: Challenge,
    nc: u32,
    /// The challenge came in the response to the previous request, so the
    /// request in flight answers it directly (as opposed to reusing an older
    /// nonce pre-emptively).
    answering: bool,
}

/// The challenges we answer: at most one from the server (401) and one from
/// a proxy (407), both answered in every request (a proxy's 407 can be
/// followed by the server's 401, and the second request must satisfy both).
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    registrar: Option<Session>,
    proxy: Option<Session>,
}

impl ClientAuth {
    fn slot(&mut self, who: Challenger) -> &mut Option<Session> {
        match who {
            Challenger::Registrar => &mut self.registrar,
            Challenger::Proxy => &mut self.proxy,
        }
    }

    /// Takes the challenge of a 401 or 407 to answer in the next request.
    ///
    /// Bad credentials: a challenge without `stale=true` right after we
    /// answered the same challenger's previous challenge. RFC 2617 §3.2.1
    /// and RFC 7616 §3.3: `stale` false means the user name or password is
    /// wrong, so answering again would only repeat the refusal. This holds
    /// whether or not the nonce changed (servers such as our own
    /// `DigestVerifier` issue a new nonce with every challenge). After
    /// credentials reused from an older exchange, the same answer only means
    /// the server forgot that nonce (e.g. it restarted), and it is answered.
    pub fn challenged(
        &mut self,
        who: Challenger,
        response: &Response,
    ) -> Result<(), ChallengeError> {
        let challenge = select(who, response)?;
        let slot = self.slot(who);
        let mut nc = 0;
        if let Some(previous) = slot {
            if previous.answering && !challenge.stale {
                return Err(ChallengeError::BadCredentials {
                    realm: challenge.realm,
                });
            }
            // A nonce handed out again keeps counting: the server may have
            // recorded the counts already used with it.
            if previous.challenge.nonce == challenge.nonce {
                nc = previous.nc;
            }
        }
        *slot = Some(Session {
            challenge,
            nc,
            answering: true,
        });
        let other = match who {
            Challenger::Registrar => &mut self.proxy,
            Challenger::Proxy => &mut self.registrar,
        };
        if let Some(other) = other {
            other.answering = false;
        }
        Ok(())
    }

    /// The request was accepted: the nonces stay for pre-emptive reuse in
    /// the next REGISTERs, saving a round trip on every refresh. Challenges
    /// without `qop` are dropped: without a nonce count a reused nonce looks
    /// like a replay, and careful servers refuse it.
    pub fn accepted(&mut self) {
        for slot in [&mut self.registrar, &mut self.proxy] {
            slot.take_if(|s| s.challenge.qop.is_empty());
            if let Some(s) = slot {
                s.answering = false;
            }
        }
    }

    /// Forgets every challenge: after a failure the next attempt starts
    /// without credentials and is challenged afresh.
    pub fn clear(&mut self) {
        *self = ClientAuth::default();
    }

    /// The credentials headers for a `method` request to `uri` (the
    /// Request-URI as printed): one per challenge held, each with the next
    /// nonce count and a fresh `cnonce`.
    pub fn credentials(
        &mut self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        cnonce: &mut dyn FnMut() -> String,
    ) -> Result<Vec<(HeaderName, String)>, AuthError> {
        let mut headers = Vec::with_capacity(2);
        for who in [Challenger::Proxy, Challenger::Registrar] {
            let Some(session) = self.slot(who) else {
                continue;
            };
            // 2^32 requests with one nonce do not happen; saturating keeps
            // the arithmetic total, and a repeated count earns a new nonce.
            session.nc = session.nc.saturating_add(1);
            let credentials = respond(
                &session.challenge,
                method,
                uri,
                username,
                password,
                &cnonce(),
                session.nc,
            )?;
            headers.push((who.credentials_header(), credentials.to_header_value()));
        }
        Ok(headers)
    }
}

/// The challenge to answer: the topmost one we support. RFC 8760 §2.4: the
/// server lists its challenges in order of preference and the client uses
/// the topmost it supports. Supported: Digest with MD5 or SHA-256, and
/// either no `qop` or one offering `auth`.
fn select(who: Challenger, response: &Response) -> Result<Challenge, ChallengeError> {
    let header = who.challenge_header();
    let mut first_error = None;
    for value in response.headers.get_all(&header) {
        let error = match Challenge::parse(value) {
            Ok(c) if c.qop.is_empty() || c.qop.contains(&Qop::Auth) => return Ok(c),
            Ok(c) => {
                let offered: Vec<&str> = c.qop.iter().map(|q| q.as_str()).collect();
                AuthError::UnsupportedQop(offered.join(","))
            }
            Err(e) => e,
        };
        first_error.get_or_insert(error);
    }
    Err(match first_error {
        Some(error) => ChallengeError::Unusable(error),
        None => ChallengeError::Missing(who.status()),
    })
}
