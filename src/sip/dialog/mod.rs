//! The dialog layer (RFC 3261 §12 to §15, with the ACK rules of RFC 6026).
//!
//! A dialog is the peer-to-peer relationship an INVITE sets up between two
//! user agents: the state needed to build every later request of the call
//! (Request-URI, Route set, From/To tags, CSeq numbers) and to accept the
//! peer's (CSeq ordering, target refreshes). Switchboard is a B2BUA, so each
//! call holds two dialogs: one where we are the UAS (towards the caller) and
//! one where we are the UAC (towards the agent or the carrier); [`Dialog`]
//! serves both roles.
//!
//! Sans-IO and clock-free: a dialog only reads and builds messages. The
//! transaction layer carries every request and response except the ACK for
//! a 2xx (end to end, §13.2.2.4), which the TU builds here with
//! [`Dialog::ack_for_2xx`] and sends itself, and CANCEL, which never belongs
//! to a dialog: it is built by the INVITE client transaction from its own
//! request (same Request-URI, Via branch, CSeq number and Route set, §9.1,
//! `transaction::TransactionLayer::cancel`).
//!
//! What the TU tells a dialog, and when:
//! - a request in the dialog arrived: [`Dialogs::match_request`] then
//!   [`Dialog::receive_request`] (CSeq order and INVITE glare, §12.2.2,
//!   §14.2); if the TU accepts a target refresh, [`Dialog::refresh_target`];
//! - we answer such a request: [`Dialog::send_response`] (the answer to the
//!   initial INVITE confirms or ends an early UAS dialog; a final answer to
//!   a re-INVITE ends the INVITE in progress);
//! - we send a request in the dialog: [`Dialog::request`]; its responses go
//!   to [`Dialog::receive_response`] (found by [`Dialogs::match_response`]);
//! - responses to our initial INVITE: [`Dialogs::invite_response`] creates,
//!   confirms and ends the UAC dialogs of every fork (§12.1.2, §13.2.2).
//!
//! Retransmitting our 2xx to an INVITE until its ACK comes (§13.3.1.4) is
//! timer work for the TU; [`Dialog::receive_request`] accepts the ACK.

mod error;
mod request;
mod state;
mod table;

use std::fmt;

use super::message::CallId;

pub use error::DialogError;
pub use state::{Dialog, Outcome};
pub use table::{Dialogs, InviteResponse};

/// RFC 3261 §12: a dialog is identified by its Call-ID, local tag and remote
/// tag. Tags are compared byte for byte, like the Call-ID (as the
/// transaction keys do). A peer following RFC 2543 may send no tag at all;
/// RFC 3261 §12.1.1 and §12.1.2 call that a null tag, stored here as "".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DialogId {
    pub call_id: CallId,
    pub local_tag: String,
    pub remote_tag: String,
}

impl DialogId {
    pub fn new(
        call_id: CallId,
        local_tag: impl Into<String>,
        remote_tag: impl Into<String>,
    ) -> Self {
        DialogId {
            call_id,
            local_tag: local_tag.into(),
            remote_tag: remote_tag.into(),
        }
    }
}

impl fmt::Display for DialogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dialog {} (local tag {:?}, remote tag {:?})",
            self.call_id, self.local_tag, self.remote_tag
        )
    }
}

/// Which side of the INVITE we were when the dialog was created. It decides
/// the order of the route set (§12.1.1, §12.1.2) and who may send BYE on an
/// early dialog (§15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Uac,
    Uas,
}

/// RFC 3261 §12: a dialog created by a provisional response is early; a 2xx
/// confirms it. `Terminated` is kept until the TU removes the dialog, so
/// that nothing more is sent in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogState {
    Early,
    Confirmed,
    Terminated,
}

/// Ours or the peer's: whose tag, Contact or INVITE an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Local,
    Remote,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Local => "local",
            Side::Remote => "remote",
        })
    }
}

#[cfg(test)]
mod tests;
