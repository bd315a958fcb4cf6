//! Requests inside a dialog (RFC 3261 §12.2.1.1): Request-URI and Route
//! from the route set and remote target, with loose or strict routing
//! (§16.12.1.2), and the ACK for a 2xx (§13.2.2.4).

use bytes::Bytes;

use super::super::message::{CSeq, Contacts, Headers, Method, NameAddr, Request, Uri, Via};
use super::state::{is_target_refresh, MAX_CSEQ};
use super::{Dialog, DialogError, DialogState, Role};

/// RFC 3261 §8.1.1.6: the recommended Max-Forwards, for the ACK.
const MAX_FORWARDS: u8 = 70;

/// RFC 3261 §12.2.1.1, §8.1.1.5: the first CSeq of a UAS that has sent
/// nothing yet. Any value below 2^31 will do: the peer's remote sequence
/// number is empty until our first request sets it. Starting low leaves the
/// whole range for the dialog's life.
const INITIAL_CSEQ: u32 = 1;

/// A URI as a Request-URI: RFC 3261 §19.1.1 Table 1 allows neither the
/// `method` parameter nor headers there (a Record-Route or Contact URI may
/// carry them, §12.2.1.1 says to strip them).
fn request_uri(uri: &Uri) -> Uri {
    match uri {
        Uri::Sip(sip) => {
            let mut sip = sip.clone();
            sip.params.remove("method");
            sip.headers = None;
            Uri::Sip(sip)
        }
        other => other.clone(),
    }
}

/// A route set entry whose URI has `lr` is a loose router (RFC 3261
/// §16.12.1.2, §19.1.1).
fn is_loose(route: &NameAddr) -> bool {
    route.uri.as_sip().is_some_and(|u| u.params.contains("lr"))
}

impl Dialog {
    /// RFC 3261 §12.2.1.1: a new request in the dialog, with CSeq one above
    /// the local sequence number (an initial value when it is empty), From
    /// and To with the dialog's URIs and tags, its Call-ID, the Request-URI
    /// and Route headers from the route set, `via` as the only Via and, for
    /// a target refresh request, our Contact. The TU adds the body and any
    /// other header, then sends it in a client transaction.
    ///
    /// Refused: ACK and CANCEL (see [`Dialog::ack_for_2xx`] and the module
    /// documentation), BYE from the callee on an early dialog (§15), an
    /// INVITE while one is in progress either way (§14.1), anything after
    /// the dialog terminated.
    pub fn request(
        &mut self,
        method: Method,
        via: Via,
        max_forwards: u8,
    ) -> Result<Request, DialogError> {
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(DialogError::NotDialogRequest(method));
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        if method == Method::Bye && self.role == Role::Uas && self.state == DialogState::Early {
            return Err(DialogError::ByeOnEarlyDialog);
        }
        if method == Method::Invite {
            self.check_no_invite_in_progress()?;
        }
        let seq = match self.local_seq {
            None => INITIAL_CSEQ,
            Some(seq) if seq >= MAX_CSEQ => return Err(DialogError::SequenceExhausted),
            Some(seq) => seq + 1,
        };
        self.local_seq = Some(seq);
        if method == Method::Invite {
            self.local_invite = Some(seq);
        }
        let target_refresh = is_target_refresh(&method);
        let mut request = self.build(method, seq, via, max_forwards);
        if target_refresh {
            request.headers.contact = Contacts::List(vec![self.local_contact.clone()]);
        }
        Ok(request)
    }

    /// RFC 3261 §13.2.2.4: the ACK for a 2xx to our INVITE with CSeq number
    /// `invite_cseq` (the dialog-creating one or a re-INVITE). It is built
    /// like any request in the dialog (so it follows the route set of the
    /// confirmed dialog) but keeps the INVITE's CSeq number with method ACK,
    /// and does not change the local sequence number. `via` needs a branch
    /// of its own: the ACK is a transaction of its own (§17.1.1.3). The TU
    /// copies the INVITE's credentials (§22) and adds the SDP answer when
    /// the 2xx carried the offer; it sends this ACK again for every
    /// retransmission of the 2xx, which the INVITE client transaction passes
    /// up in its Accepted state (RFC 6026 §7.2).
    pub fn ack_for_2xx(&self, invite_cseq: u32, via: Via) -> Request {
        self.build(Method::Ack, invite_cseq, via, MAX_FORWARDS)
    }

    /// Where a request of this dialog is sent (RFC 3261 §8.1.2): the first
    /// route, or the remote target when the route set is empty. Holds for
    /// both routing modes, since a strict router's URI is then the
    /// Request-URI.
    pub fn next_hop(&self) -> &Uri {
        self.route_set
            .first()
            .map_or(&self.remote_target, |route| &route.uri)
    }

    fn build(&self, method: Method, seq: u32, via: Via, max_forwards: u8) -> Request {
        let (uri, route) = self.request_uri_and_route();
        let mut headers = Headers::new(
            self.local.clone(),
            self.remote.clone(),
            self.id.call_id.clone(),
            CSeq {
                seq,
                method: method.clone(),
            },
        );
        headers.via = vec![via];
        headers.max_forwards = Some(max_forwards);
        headers.route = route;
        Request {
            method,
            uri,
            headers,
            body: Bytes::new(),
        }
    }

    /// RFC 3261 §12.2.1.1: the Request-URI and Route headers.
    fn request_uri_and_route(&self) -> (Uri, Vec<NameAddr>) {
        match self.route_set.split_first() {
            // No route set: straight to the remote target, without Route.
            None => (request_uri(&self.remote_target), Vec::new()),
            // Loose routing: the remote target is the Request-URI and the
            // whole route set is the Route header.
            Some((first, _)) if is_loose(first) => {
                (request_uri(&self.remote_target), self.route_set.clone())
            }
            // Strict routing: the first route is the Request-URI, the rest
            // of the route set follows with every parameter, and the remote
            // target closes the Route header so that the strict router's
            // successors can restore it (§16.12.1.2).
            Some((first, rest)) => {
                let mut route = Vec::with_capacity(rest.len() + 1);
                route.extend_from_slice(rest);
                route.push(NameAddr::new(self.remote_target.clone()));
                (request_uri(&first.uri), route)
            }
        }
    }
}
