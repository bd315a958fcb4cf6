//! A dialog's state (RFC 3261 §12.1) and what received and sent messages do
//! to it (§12.2.1.2, §12.2.2, §13.2.2.4, §14, §15).

use super::super::message::{CallId, Contacts, Headers, Method, NameAddr, Request, Response, Uri};
use super::{DialogError, DialogId, DialogState, Role, Side};

/// One dialog, in either role. Built by [`Dialog::uas`] or [`Dialog::uac`];
/// its fields change only through the methods below, which keep the RFC
/// 3261 §12 invariants (tags and Call-ID fixed, local CSeq increasing,
/// remote CSeq increasing, route set fixed once confirmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub(super) id: DialogId,
    pub(super) role: Role,
    pub(super) state: DialogState,
    /// The CSeq of our last request; empty for a UAS until it sends one.
    pub(super) local_seq: Option<u32>,
    /// The CSeq of the peer's last request; empty for a UAC until one comes.
    pub(super) remote_seq: Option<u32>,
    /// The From of our requests: local URI and local tag.
    pub(super) local: NameAddr,
    /// The To of our requests: remote URI and remote tag (absent when null).
    pub(super) remote: NameAddr,
    /// Where our requests go when no route set says otherwise: the peer's
    /// Contact URI.
    pub(super) remote_target: Uri,
    /// Our Contact, sent in target refresh requests (§12.2.1.1).
    pub(super) local_contact: NameAddr,
    /// The Record-Route values in the order our requests must visit them.
    pub(super) route_set: Vec<NameAddr>,
    pub(super) secure: bool,
    /// The CSeq of our INVITE awaiting its final response (§14.1), the
    /// dialog-creating one included.
    pub(super) local_invite: Option<u32>,
    /// The CSeq of the peer's INVITE we have not answered finally (§14.2).
    pub(super) remote_invite: Option<u32>,
}

/// What a response did to a dialog. `Terminated` tells the TU to end the
/// session and remove the dialog from its table.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    /// An early dialog became confirmed (§12.1, §13.2.2.4, §13.3.1.4).
    Confirmed,
    /// A 2xx to a target refresh request changed the remote target
    /// (§12.2.1.2).
    TargetRefreshed,
    Terminated,
}

/// RFC 3261 §8.1.1.5: CSeq numbers stay below 2^31.
pub(super) const MAX_CSEQ: u32 = (1 << 31) - 1;

/// Methods that refresh the remote target: INVITE (RFC 3261 §12.2), UPDATE
/// (RFC 3311), SUBSCRIBE and NOTIFY (RFC 6665), and REFER, which creates a
/// subscription (RFC 3515).
pub(super) fn is_target_refresh(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
    )
}

/// The single SIP or SIPS URI of a Contact (RFC 3261 §8.1.1.8: exactly one
/// in a request that can create a dialog, and in its 2xx).
fn single_contact(headers: &Headers) -> Option<&NameAddr> {
    match &headers.contact {
        Contacts::List(list) if list.len() == 1 => {
            list.first().filter(|c| c.uri.as_sip().is_some())
        }
        _ => None,
    }
}

/// RFC 3261 §12.1.1, §12.1.2: the dialog is secure when the INVITE's
/// Request-URI is a SIPS URI and the INVITE travelled over TLS. The top Via
/// names the transport of the hop that reached the UAS (the sender adds it
/// for that hop, §18.1.1), on whichever side we read it. WSS runs over TLS
/// too (RFC 7118).
fn is_secure(invite: &Request) -> bool {
    invite.uri.as_sip().is_some_and(|u| u.secure)
        && invite
            .headers
            .top_via()
            .is_some_and(|v| matches!(v.transport.as_str(), "TLS" | "WSS"))
}

/// The response answers the request (§8.1.3.3, §17.1.3): same Call-ID, From
/// tag and CSeq.
pub(super) fn check_answers(request: &Request, response: &Response) -> Result<(), DialogError> {
    let (q, r) = (&request.headers, &response.headers);
    if q.call_id != r.call_id {
        return Err(DialogError::ResponseMismatch("Call-ID"));
    }
    if q.from.tag() != r.from.tag() {
        return Err(DialogError::ResponseMismatch("From tag"));
    }
    if q.cseq != r.cseq {
        return Err(DialogError::ResponseMismatch("CSeq"));
    }
    Ok(())
}

/// Only an INVITE outside a dialog, answered 101-299, creates a dialog
/// (§12.1); 100 never carries a To tag (§8.2.6.1).
fn check_dialog_forming(invite: &Request, response: &Response) -> Result<(), DialogError> {
    if invite.method != Method::Invite
        || invite.headers.to.tag().is_some()
        || !(101..300).contains(&response.status)
    {
        return Err(DialogError::NotDialogForming {
            method: invite.method.clone(),
            status: response.status,
        });
    }
    Ok(())
}

impl Dialog {
    /// RFC 3261 §12.1.1: the dialog of an INVITE we received, created when
    /// we send `response` (a 2xx, or a 101-199 for an early dialog), which
    /// carries our To tag and our Contact.
    ///
    /// The route set is the INVITE's Record-Route in order, the remote
    /// target its Contact, the remote sequence number its CSeq; the local
    /// sequence number stays empty until we send a request. A From without
    /// a tag (RFC 2543) gives a null remote tag.
    pub fn uas(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        check_dialog_forming(request, response)?;
        check_answers(request, response)?;
        let h = &request.headers;
        let local_tag = response
            .headers
            .to
            .tag()
            .ok_or(DialogError::MissingTag(Side::Local))?;
        let remote_target = single_contact(h)
            .ok_or(DialogError::MissingContact(Side::Remote))?
            .uri
            .clone();
        let local_contact = single_contact(&response.headers)
            .ok_or(DialogError::MissingContact(Side::Local))?
            .clone();
        let early = response.is_provisional();
        Ok(Dialog {
            id: DialogId::new(
                h.call_id.clone(),
                local_tag,
                h.from.tag().unwrap_or_default(),
            ),
            role: Role::Uas,
            state: if early {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            local_seq: None,
            remote_seq: Some(h.cseq.seq),
            local: response.headers.to.clone(),
            remote: h.from.clone(),
            remote_target,
            local_contact,
            route_set: h.record_route.clone(),
            secure: is_secure(request),
            local_invite: None,
            // An early dialog's INVITE still awaits our final answer (§14.2).
            remote_invite: early.then_some(h.cseq.seq),
        })
    }

    /// RFC 3261 §12.1.2: the dialog our INVITE `request` created with the
    /// peer's `response` (a 2xx, or a 101-199 with a To tag for an early
    /// dialog). Each fork answers with its own To tag and gets its own
    /// dialog.
    ///
    /// The route set is the response's Record-Route in reverse order, the
    /// remote target its Contact, the local sequence number the INVITE's
    /// CSeq; the remote sequence number stays empty until the peer sends a
    /// request. A 2xx without a To tag (RFC 2543) gives a null remote tag.
    pub fn uac(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        check_dialog_forming(request, response)?;
        check_answers(request, response)?;
        let h = &request.headers;
        let local_tag = h.from.tag().ok_or(DialogError::MissingTag(Side::Local))?;
        let early = response.is_provisional();
        let remote_tag = match response.headers.to.tag() {
            Some(tag) => tag,
            // §12.1: a provisional response creates a dialog only with a tag.
            None if early => return Err(DialogError::MissingTag(Side::Remote)),
            None => "",
        };
        let remote_target = single_contact(&response.headers)
            .ok_or(DialogError::MissingContact(Side::Remote))?
            .uri
            .clone();
        let local_contact = single_contact(h)
            .ok_or(DialogError::MissingContact(Side::Local))?
            .clone();
        Ok(Dialog {
            id: DialogId::new(h.call_id.clone(), local_tag, remote_tag),
            role: Role::Uac,
            state: if early {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            local_seq: Some(h.cseq.seq),
            remote_seq: None,
            local: h.from.clone(),
            remote: response.headers.to.clone(),
            remote_target,
            local_contact,
            route_set: response
                .headers
                .record_route
                .iter()
                .rev()
                .cloned()
                .collect(),
            secure: is_secure(request),
            local_invite: early.then_some(h.cseq.seq),
            remote_invite: None,
        })
    }

    /// RFC 3261 §13.2.2.4: a 2xx to our INVITE on the early dialog of the
    /// same fork confirms it; the route set is recomputed from the 2xx (it
    /// may differ from the provisional response's) and so is the remote
    /// target (§12.2.1.2).
    pub fn confirm(&mut self, response: &Response) -> Result<(), DialogError> {
        if self.role != Role::Uac || self.state != DialogState::Early {
            return Err(DialogError::NotEarly);
        }
        let cseq = &response.headers.cseq;
        if cseq.method != Method::Invite
            || !response.is_success()
            || self.local_invite != Some(cseq.seq)
        {
            return Err(DialogError::NotDialogForming {
                method: cseq.method.clone(),
                status: response.status,
            });
        }
        self.check_response(response)?;
        let target =
            single_contact(&response.headers).ok_or(DialogError::MissingContact(Side::Remote))?;
        self.remote_target = target.uri.clone();
        self.route_set = response
            .headers
            .record_route
            .iter()
            .rev()
            .cloned()
            .collect();
        self.state = DialogState::Confirmed;
        self.local_invite = None;
        Ok(())
    }

    /// RFC 3261 §14.1/§14.2: one INVITE at a time per dialog, whichever side
    /// sent the pending one (ours: 491 for theirs; theirs: 500 for a second).
    pub(super) fn check_no_invite_in_progress(&self) -> Result<(), DialogError> {
        if let Some(cseq) = self.local_invite {
            return Err(DialogError::InviteInProgress {
                side: Side::Local,
                cseq,
            });
        }
        if let Some(cseq) = self.remote_invite {
            return Err(DialogError::InviteInProgress {
                side: Side::Remote,
                cseq,
            });
        }
        Ok(())
    }

    /// RFC 3261 §12.2.2: checks a request the peer sent in this dialog.
    ///
    /// Its CSeq must be above the remote sequence number, which it then
    /// becomes (set from the first request when empty); a request out of
    /// order is refused with [`DialogError::OutOfOrder`], answered 500. ACK
    /// and CANCEL carry the CSeq number of their INVITE and are not checked.
    /// An INVITE while another is in progress in either direction is
    /// refused too (§14.2, see [`DialogError::status`]). The remote target is
    /// left alone: the TU calls [`Dialog::refresh_target`] if it accepts the
    /// request.
    pub fn receive_request(&mut self, request: &Request) -> Result<(), DialogError> {
        let h = &request.headers;
        self.check_id(&h.call_id, h.to.tag(), h.from.tag())?;
        if matches!(request.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        let got = h.cseq.seq;
        if let Some(remote) = self.remote_seq {
            if got <= remote {
                return Err(DialogError::OutOfOrder {
                    got,
                    expected_above: remote,
                });
            }
        }
        // Set even if the request is refused below: its CSeq was in order,
        // and the peer's retry will come with a higher one.
        self.remote_seq = Some(got);
        if request.method == Method::Invite {
            self.check_no_invite_in_progress()?;
            self.remote_invite = Some(got);
        }
        Ok(())
    }

    /// RFC 3261 §12.2.2, §14.2: the TU accepted a target refresh request
    /// (re-INVITE, UPDATE...): its Contact becomes the remote target. A
    /// refused request must not change it, hence a step of its own. Returns
    /// whether the target changed; other methods, and requests without a
    /// single SIP Contact, change nothing.
    pub fn refresh_target(&mut self, request: &Request) -> bool {
        if !is_target_refresh(&request.method) {
            return false;
        }
        self.set_target(&request.headers)
    }

    /// The TU answers `response` to a request the peer sent in this dialog.
    ///
    /// The final answer to the dialog-creating INVITE confirms an early UAS
    /// dialog (2xx) or ends it (§12.1.1, §13.3.1.4); a final answer to a
    /// re-INVITE ends that INVITE's transaction for §14.2; a 2xx to BYE ends
    /// the dialog (§15.1.2). The ACK of a 2xx is then accepted by
    /// [`Dialog::receive_request`]; retransmitting the 2xx until it comes
    /// (§13.3.1.4) is the TU's.
    pub fn send_response(&mut self, response: &Response) -> Result<Outcome, DialogError> {
        let h = &response.headers;
        self.check_id(&h.call_id, h.to.tag(), h.from.tag())?;
        if self.state == DialogState::Terminated || response.is_provisional() {
            return Ok(Outcome::Unchanged);
        }
        let cseq = &h.cseq;
        match cseq.method {
            Method::Invite if self.remote_invite == Some(cseq.seq) => {
                self.remote_invite = None;
                if self.state == DialogState::Early {
                    return Ok(self.settle_early(response.is_success()));
                }
                Ok(Outcome::Unchanged)
            }
            Method::Bye if response.is_success() => {
                self.state = DialogState::Terminated;
                Ok(Outcome::Terminated)
            }
            _ => Ok(Outcome::Unchanged),
        }
    }

    /// A response to a request we sent in this dialog (built by
    /// [`Dialog::request`], or the dialog-creating INVITE).
    ///
    /// - A 2xx to a target refresh request replaces the remote target with
    ///   its Contact (§12.2.1.2).
    /// - A 2xx to the INVITE of an early UAC dialog confirms it (as
    ///   [`Dialog::confirm`]); a non-2xx final ends it (§12.3).
    /// - A 481 or 408 ends the dialog (§12.2.1.2), and so does any final
    ///   response to BYE but a challenge the TU may answer (§15.1.1, §22.2).
    /// - A final response to our re-INVITE lets the next INVITE go (§14.1).
    pub fn receive_response(&mut self, response: &Response) -> Result<Outcome, DialogError> {
        self.check_response(response)?;
        if self.state == DialogState::Terminated || response.is_provisional() {
            return Ok(Outcome::Unchanged);
        }
        let cseq = &response.headers.cseq;
        let ours = cseq.method == Method::Invite && self.local_invite == Some(cseq.seq);
        if ours && self.state == DialogState::Early {
            if response.is_success() {
                self.confirm(response)?;
                return Ok(Outcome::Confirmed);
            }
            self.local_invite = None;
            return Ok(self.settle_early(false));
        }
        if ours {
            self.local_invite = None;
        }
        match (response.status, &cseq.method) {
            (481 | 408, _) => {
                self.state = DialogState::Terminated;
                Ok(Outcome::Terminated)
            }
            (401 | 407, Method::Bye) => Ok(Outcome::Unchanged),
            (_, Method::Bye) => {
                self.state = DialogState::Terminated;
                Ok(Outcome::Terminated)
            }
            (200..=299, method) if is_target_refresh(method) => {
                Ok(if self.set_target(&response.headers) {
                    Outcome::TargetRefreshed
                } else {
                    Outcome::Unchanged
                })
            }
            _ => Ok(Outcome::Unchanged),
        }
    }

    /// The final answer to the INVITE of an early dialog.
    fn settle_early(&mut self, success: bool) -> Outcome {
        if success {
            self.state = DialogState::Confirmed;
            Outcome::Confirmed
        } else {
            self.state = DialogState::Terminated;
            Outcome::Terminated
        }
    }

    fn set_target(&mut self, headers: &Headers) -> bool {
        match single_contact(headers) {
            Some(contact) if contact.uri != self.remote_target => {
                self.remote_target = contact.uri.clone();
                true
            }
            _ => false,
        }
    }

    /// A response to one of our requests names our tag in From and the
    /// peer's in To.
    fn check_response(&self, response: &Response) -> Result<(), DialogError> {
        let h = &response.headers;
        self.check_id(&h.call_id, h.from.tag(), h.to.tag())
    }

    /// The message's Call-ID, local-side tag and remote-side tag name this
    /// dialog; a missing remote tag is the null tag.
    fn check_id(
        &self,
        call_id: &CallId,
        local_tag: Option<&str>,
        remote_tag: Option<&str>,
    ) -> Result<(), DialogError> {
        let id = &self.id;
        if *call_id == id.call_id
            && local_tag == Some(id.local_tag.as_str())
            && remote_tag.unwrap_or_default() == id.remote_tag
        {
            Ok(())
        } else {
            Err(DialogError::WrongDialog(Box::new(id.clone())))
        }
    }

    pub fn id(&self) -> &DialogId {
        &self.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn state(&self) -> DialogState {
        self.state
    }

    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }

    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Local URI and tag: the From of our requests.
    pub fn local_uri(&self) -> &NameAddr {
        &self.local
    }

    /// Remote URI and tag: the To of our requests.
    pub fn remote_uri(&self) -> &NameAddr {
        &self.remote
    }

    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    pub fn local_contact(&self) -> &NameAddr {
        &self.local_contact
    }

    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The CSeq of our INVITE awaiting a final response, if any (§14.1).
    pub fn local_invite_in_progress(&self) -> Option<u32> {
        self.local_invite
    }
}
