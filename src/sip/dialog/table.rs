//! The table of live dialogs and how messages find theirs (RFC 3261 §12.2):
//! an incoming request names our tag in To and the peer's in From; a
//! response to our request names ours in From and the peer's in To.

use std::collections::HashMap;

use super::super::message::{CallId, Method, Request, Response};
use super::state::check_answers;
use super::{Dialog, DialogError, DialogId, DialogState, Side};

/// What a response to our dialog-creating INVITE did (RFC 3261 §12.1.2,
/// §13.2.2). Each fork answers with its own To tag, so one INVITE may hold
/// several early dialogs, and several confirmed ones when forks answer 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteResponse {
    /// 100, or a provisional response without a To tag: no dialog (§12.1).
    NoDialog,
    /// A provisional response with a To tag: the fork's early dialog,
    /// `new` when this response created it.
    Early { id: DialogId, new: bool },
    /// A 2xx: the fork's dialog is confirmed, `new` when it had no early
    /// dialog. The TU sends the ACK ([`Dialog::ack_for_2xx`]); a fork it
    /// does not want gets ACK then BYE (§13.2.2.4).
    Confirmed { id: DialogId, new: bool },
    /// A response for a fork whose dialog is already confirmed: a late
    /// provisional response, or a retransmitted 2xx that the TU ACKs again
    /// (§13.2.2.4).
    Repeated { id: DialogId },
    /// A non-2xx final response: the INVITE's early dialogs ended (§12.3)
    /// and were removed.
    Failed { terminated: Vec<DialogId> },
}

/// The live dialogs, grouped by Call-ID: the forks of one INVITE share it,
/// and so usually hold a handful of dialogs at most under one key, which
/// are told apart by their tags. Lookups borrow the message's Call-ID and
/// tags and allocate nothing.
#[derive(Debug, Default)]
pub struct Dialogs {
    by_call_id: HashMap<String, Vec<Dialog>>,
    len: usize,
}

impl Dialogs {
    pub fn new() -> Self {
        Dialogs::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a dialog; its identifier must be new.
    pub fn insert(&mut self, dialog: Dialog) -> Result<&mut Dialog, DialogError> {
        let id = dialog.id();
        let list = self
            .by_call_id
            .entry(id.call_id.as_str().to_owned())
            .or_default();
        if list.iter().any(|d| d.id() == id) {
            return Err(DialogError::Duplicate(Box::new(id.clone())));
        }
        list.push(dialog);
        self.len += 1;
        let last = list.len() - 1;
        Ok(&mut list[last])
    }

    pub fn get(&self, id: &DialogId) -> Option<&Dialog> {
        self.by_call_id
            .get(id.call_id.as_str())?
            .iter()
            .find(|d| d.id() == id)
    }

    pub fn get_mut(&mut self, id: &DialogId) -> Option<&mut Dialog> {
        self.find_mut(id.call_id.as_str(), &id.local_tag, &id.remote_tag)
    }

    pub fn remove(&mut self, id: &DialogId) -> Option<Dialog> {
        let list = self.by_call_id.get_mut(id.call_id.as_str())?;
        let index = list.iter().position(|d| d.id() == id)?;
        let dialog = list.swap_remove(index);
        if list.is_empty() {
            self.by_call_id.remove(id.call_id.as_str());
        }
        self.len -= 1;
        Some(dialog)
    }

    /// The dialog of a request the peer sent (RFC 3261 §12.2.2): Call-ID,
    /// our tag in To, the peer's in From (a missing From tag is the null
    /// tag of RFC 2543). A request without a To tag is outside any dialog.
    pub fn match_request(&mut self, request: &Request) -> Option<&mut Dialog> {
        let h = &request.headers;
        let local = h.to.tag()?;
        self.find_mut(h.call_id.as_str(), local, h.from.tag().unwrap_or_default())
    }

    /// The dialog of a response to a request we sent: Call-ID, our tag in
    /// From, the peer's in To (none is the null tag).
    pub fn match_response(&mut self, response: &Response) -> Option<&mut Dialog> {
        let h = &response.headers;
        let local = h.from.tag()?;
        self.find_mut(h.call_id.as_str(), local, h.to.tag().unwrap_or_default())
    }

    /// The dialog set of one of our INVITEs or of one INVITE we received:
    /// the dialogs sharing a Call-ID and our tag, which differ by the
    /// peer's tag (the forks, RFC 3261 §12.1.2).
    pub fn dialog_set<'a>(
        &'a self,
        call_id: &CallId,
        local_tag: &'a str,
    ) -> impl Iterator<Item = &'a Dialog> + 'a {
        self.by_call_id
            .get(call_id.as_str())
            .into_iter()
            .flatten()
            .filter(move |d| d.id().local_tag == local_tag)
    }

    /// RFC 3261 §12.1.2, §13.2.2: a response to our dialog-creating INVITE.
    /// A provisional response with a To tag creates the early dialog of its
    /// fork, a 2xx confirms it or creates a confirmed one, a non-2xx final
    /// response ends the INVITE's early dialogs. Responses to requests
    /// inside a dialog (re-INVITEs included) go to
    /// [`Dialog::receive_response`] instead.
    pub fn invite_response(
        &mut self,
        invite: &Request,
        response: &Response,
    ) -> Result<InviteResponse, DialogError> {
        if invite.method != Method::Invite || invite.headers.to.tag().is_some() {
            return Err(DialogError::NotDialogForming {
                method: invite.method.clone(),
                status: response.status,
            });
        }
        check_answers(invite, response)?;
        let call_id = invite.headers.call_id.as_str();
        let local = invite
            .headers
            .from
            .tag()
            .ok_or(DialogError::MissingTag(Side::Local))?;
        let remote = response.headers.to.tag();
        match response.status {
            100..=199 => {
                let Some(remote) = remote.filter(|_| response.status > 100) else {
                    return Ok(InviteResponse::NoDialog);
                };
                if let Some(dialog) = self.find_mut(call_id, local, remote) {
                    let id = dialog.id().clone();
                    return Ok(match dialog.state() {
                        DialogState::Early => InviteResponse::Early { id, new: false },
                        _ => InviteResponse::Repeated { id },
                    });
                }
                let id = self.insert(Dialog::uac(invite, response)?)?.id().clone();
                Ok(InviteResponse::Early { id, new: true })
            }
            200..=299 => {
                let remote = remote.unwrap_or_default();
                if let Some(dialog) = self.find_mut(call_id, local, remote) {
                    let id = dialog.id().clone();
                    if dialog.state() != DialogState::Early {
                        return Ok(InviteResponse::Repeated { id });
                    }
                    dialog.confirm(response)?;
                    return Ok(InviteResponse::Confirmed { id, new: false });
                }
                let id = self.insert(Dialog::uac(invite, response)?)?.id().clone();
                Ok(InviteResponse::Confirmed { id, new: true })
            }
            _ => {
                let terminated = self.remove_early(invite.headers.call_id.as_str(), local);
                Ok(InviteResponse::Failed { terminated })
            }
        }
    }

    /// Removes the early dialogs of a dialog set, returning their ids.
    fn remove_early(&mut self, call_id: &str, local_tag: &str) -> Vec<DialogId> {
        let Some(list) = self.by_call_id.get_mut(call_id) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        list.retain(|d| {
            let early = d.id().local_tag == local_tag && d.state() == DialogState::Early;
            if early {
                removed.push(d.id().clone());
            }
            !early
        });
        if list.is_empty() {
            self.by_call_id.remove(call_id);
        }
        self.len -= removed.len();
        removed
    }

    fn find_mut(
        &mut self,
        call_id: &str,
        local_tag: &str,
        remote_tag: &str,
    ) -> Option<&mut Dialog> {
        self.by_call_id.get_mut(call_id)?.iter_mut().find(|d| {
            let id = d.id();
            id.local_tag == local_tag && id.remote_tag == remote_tag
        })
    }
}
