//! Why the dialog layer refused a message or an action, grouped by cause:
//! a message that cannot create a dialog, a message of another dialog, an
//! action the dialog's state forbids, a CSeq out of order.

use thiserror::Error;

use super::super::message::Method;
use super::{DialogId, Side};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DialogError {
    // --- Creating a dialog (RFC 3261 §12.1) ---
    /// Only an INVITE answered with 101 to 299 creates a dialog here (§12.1);
    /// a request that already has a To tag is inside a dialog.
    #[error("{method} answered {status} does not create a dialog")]
    NotDialogForming { method: Method, status: u16 },
    /// Our tag is missing (From of our INVITE, To of our response), or the
    /// peer's To tag is missing from a provisional response, which then
    /// creates no dialog (§12.1).
    #[error("the {0} tag is missing")]
    MissingTag(Side),
    /// A dialog needs both targets: the peer's Contact becomes the remote
    /// target and ours goes into target refresh requests (§12.1.1, §12.1.2).
    #[error("the {0} Contact is missing or is not a single address")]
    MissingContact(Side),
    /// The response does not answer this request: its Call-ID, From tag or
    /// CSeq differ (§8.1.3.3, §17.1.3).
    #[error("the response's {0} differs from the request's")]
    ResponseMismatch(&'static str),

    // --- A message of another dialog ---
    /// The message's Call-ID and tags name another dialog than this one.
    #[error("the message belongs to another dialog than {0}")]
    WrongDialog(Box<DialogId>),
    /// The table already holds a dialog with this identifier.
    #[error("{0} already exists")]
    Duplicate(Box<DialogId>),

    // --- What the dialog's state forbids ---
    /// `confirm` on a dialog that is not an early UAC dialog.
    #[error("only an early UAC dialog can be confirmed")]
    NotEarly,
    /// The dialog has ended; the TU should remove it.
    #[error("the dialog has terminated")]
    Terminated,
    /// ACK for a 2xx is built with `ack_for_2xx`, CANCEL by the transaction
    /// layer: neither takes a new CSeq number (§12.2.1.1).
    #[error("{0} is not built with Dialog::request")]
    NotDialogRequest(Method),
    /// RFC 3261 §15: the callee must not send BYE on an early dialog (it
    /// rejects the INVITE instead).
    #[error("the callee cannot send BYE on an early dialog")]
    ByeOnEarlyDialog,
    /// RFC 3261 §14.1, §14.2: one INVITE at a time per dialog, in either
    /// direction. For a received INVITE: `side` Local means ours is pending
    /// (glare, answered 491), Remote means the peer's previous one is not
    /// answered yet (answered 500 with a Retry-After).
    #[error("the {side} INVITE with CSeq {cseq} is still in progress")]
    InviteInProgress { side: Side, cseq: u32 },

    // --- Sequence numbers (RFC 3261 §12.2.1.1, §12.2.2) ---
    /// The request's CSeq is not above the remote sequence number: answered
    /// 500 (§12.2.2).
    #[error("CSeq {got} is not above {expected_above}")]
    OutOfOrder { got: u32, expected_above: u32 },
    /// The local sequence number reached 2^31 - 1: no CSeq is left (§8.1.1.5).
    #[error("no CSeq number is left in this dialog")]
    SequenceExhausted,
}

impl DialogError {
    /// The status code answering a request that `Dialog::receive_request`
    /// refused (RFC 3261 §12.2.2, §14.2); `None` for errors about our own
    /// actions. A 500 for `InviteInProgress` needs a Retry-After of 0 to 10
    /// seconds (§14.2).
    pub fn status(&self) -> Option<u16> {
        match self {
            DialogError::OutOfOrder { .. } => Some(500),
            DialogError::InviteInProgress {
                side: Side::Remote, ..
            } => Some(500),
            DialogError::InviteInProgress {
                side: Side::Local, ..
            } => Some(491),
            DialogError::WrongDialog(_) | DialogError::Terminated => Some(481),
            _ => None,
        }
    }
}
