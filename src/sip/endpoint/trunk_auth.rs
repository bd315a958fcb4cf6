//! Our requests to a carrier that asks for credentials (RFC 3261 §22.2 and
//! §22.3). Carriers commonly challenge every call they are to bill: a 401
//! or 407 to one of our trunk INVITEs is answered with the trunk's
//! `[trunks.auth]` credentials in a new INVITE of the same attempt (same
//! Call-ID, From tag, To and offer; CSeq one higher; a new branch), and the
//! call goes on from there as if that INVITE had been the first. A second
//! challenge not marked `stale` means the credentials are wrong: the call
//! fails as it did before (the agent gets 403, never the carrier's
//! challenge, which only the gateway can answer). Our BYE to a carrier is
//! answered the same way when challenged: until it accepts one, the carrier
//! keeps the call up, and bills it.

use std::time::Instant;

use tracing::{info, warn};

use super::super::flow::Flow;
use super::super::message::{HeaderName, Request, Response};
use super::super::transaction::ClientTxId;
use super::{ClientPurpose, Endpoint};
use crate::sip::auth::{Challenger, ClientAuth};

impl Endpoint {
    /// Answers the challenge `response` to our trunk request `tx` (sent for
    /// `purpose`: an INVITE or a BYE) with a new, authenticated one. True
    /// when it was sent: the call now follows the new transaction. False
    /// when the challenge stands (not a trunk request, no credentials,
    /// refused credentials, a challenge we cannot answer); the caller then
    /// fails the call (a BYE is simply over).
    pub(super) fn answer_trunk_challenge(
        &mut self,
        now: Instant,
        tx: ClientTxId,
        purpose: &ClientPurpose,
        response: &Response,
    ) -> bool {
        let mut state = self.trunk_auth.remove(&tx).unwrap_or_default();
        let Some(who) = Challenger::of_status(response.status) else {
            return false;
        };
        let Some((request, flow)) = self.trunk_request_sent(purpose, tx) else {
            return false;
        };
        let Some((trunk, credentials)) = self
            .config
            .trunks
            .iter()
            .find(|t| t.peer == flow.remote)
            .and_then(|t| Some((t.name.to_string(), t.auth.clone()?)))
        else {
            info!(
                status = response.status,
                "the trunk challenged a call and has no [trunks.auth] credentials"
            );
            return false;
        };
        if let Err(error) = state.challenged(who, response) {
            warn!(%trunk, %error, "the trunk refused our call's credentials");
            return false;
        }
        let Some(retry) = self.authenticated_retry(&request, &mut state, &credentials) else {
            return false;
        };
        let purpose = match purpose {
            ClientPurpose::Bye(_) => ClientPurpose::Bye(Box::new((retry.clone(), flow.clone()))),
            other => other.clone(),
        };
        let Some(new_tx) = self.send_request(now, &retry, &flow, purpose.clone()) else {
            return false;
        };
        self.trunk_auth.insert(new_tx, state);
        self.follow_retry(&purpose, tx, new_tx, retry);
        true
    }

    /// The request after `request`, answering the challenges in `state`.
    fn authenticated_retry(
        &mut self,
        request: &Request,
        state: &mut ClientAuth,
        credentials: &crate::config::TrunkAuth,
    ) -> Option<Request> {
        let mut retry = request.clone();
        retry.headers.cseq.seq = retry.headers.cseq.seq.saturating_add(1);
        let via = retry.headers.via.first_mut()?;
        via.params.set("branch", Some(self.ids.branch()));
        retry.headers.remove(&HeaderName::Authorization);
        retry.headers.remove(&HeaderName::ProxyAuthorization);
        let headers = state
            .credentials(
                &retry.method.to_string(),
                &retry.uri.to_string(),
                &credentials.username,
                credentials.password.expose(),
                &mut || format!("{:016x}", rand::random::<u64>()),
            )
            .map_err(|error| warn!(%error, "challenge not answered"))
            .ok()?;
        for (name, value) in headers {
            retry.headers.push(name, value);
        }
        Some(retry)
    }

    /// Our request on transaction `tx` and where it went, from the state of
    /// the call that sent it.
    fn trunk_request_sent(
        &self,
        purpose: &ClientPurpose,
        tx: ClientTxId,
    ) -> Option<(Request, Flow)> {
        match purpose {
            ClientPurpose::Bye(sent) => Some((sent.0.clone(), sent.1.clone())),
            ClientPurpose::Outbound => self.outbound.invite_sent(tx),
            ClientPurpose::Originate => self.originate.invite_sent(tx),
            ClientPurpose::Forward => self.forwards.invite_sent(tx),
            _ => None,
        }
    }

    /// The call that sent `old` follows `new` (carrying `invite`) instead.
    fn follow_retry(
        &mut self,
        purpose: &ClientPurpose,
        old: ClientTxId,
        new: ClientTxId,
        invite: Request,
    ) {
        match purpose {
            ClientPurpose::Outbound => self.outbound.follow(old, new, invite),
            ClientPurpose::Originate => self.originate.follow(old, new, invite),
            ClientPurpose::Forward => self.forwards.follow(old, new, invite),
            _ => {}
        }
    }
}
