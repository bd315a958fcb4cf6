//! Requests inside a dialog (RFC 3261 §12.2.2). The call layer (a later
//! issue) creates the dialogs; the endpoint already matches every request
//! carrying a To tag against them, so a request for no dialog gets 481 and
//! one for a known dialog is checked for order and answered.

use std::time::Instant;

use super::super::dialog::{DialogError, Outcome};
use super::super::message::{HeaderName, Method, Request, Response};
use super::Endpoint;

impl Endpoint {
    pub(super) fn in_dialog(&mut self, now: Instant, request: &Request) -> Response {
        let checked = match self.dialogs.match_request(request) {
            None => return self.reply(request, 481),
            Some(dialog) => dialog
                .receive_request(request)
                .map(|()| dialog.id().clone()),
        };
        let id = match checked {
            Ok(id) => id,
            Err(error) => return self.refused(request, &error),
        };
        let answered = self.in_call(now, &id, request);
        let status = match request.method {
            Method::Bye | Method::Info | Method::Options => 200,
            // A re-INVITE or UPDATE outside a call we run: no media to change.
            Method::Invite | Method::Update => 488,
            _ => 405,
        };
        let mut response = answered.unwrap_or_else(|| self.reply(request, status));
        if response.status == 405 {
            response
                .headers
                .push(HeaderName::Allow, super::requests::ALLOW);
        }
        if let Some(dialog) = self.dialogs.get_mut(&id) {
            if let Ok(Outcome::Terminated) = dialog.send_response(&response) {
                self.dialogs.remove(&id);
            }
        }
        response
    }

    /// The answer to a request the dialog refused (§12.2.2: 500 out of
    /// order; §14.2: 491 or 500 with Retry-After during another INVITE).
    fn refused(&mut self, request: &Request, error: &DialogError) -> Response {
        let status = error.status().unwrap_or(500);
        let mut response = self.reply(request, status);
        if matches!(error, DialogError::InviteInProgress { .. }) && status == 500 {
            let after = rand::random::<u8>() % 11;
            response
                .headers
                .push(HeaderName::RetryAfter, after.to_string());
        }
        response
    }

    /// The ACK of a 2xx belongs to the dialog, not to a transaction (§13.2.2.4).
    pub(super) fn in_dialog_ack(&mut self, request: &Request) {
        if let Some(dialog) = self.dialogs.match_request(request) {
            // A stray or late ACK changes nothing worth an answer.
            let _ = dialog.receive_request(request);
        }
    }
}
