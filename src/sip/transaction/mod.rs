//! The SIP transaction layer (RFC 3261 §17 as updated by RFC 6026, with the
//! merged-request check of §8.2.2.2 and the CANCEL rules of §9).
//!
//! Sans-IO: [`TransactionLayer`] owns no socket and reads no clock. The SIP
//! core feeds it what arrived (`receive_request`, `receive_response`), what
//! the TU wants sent (`send_request`, `respond`, `cancel`), transport failures
//! and the time (`handle_timeout`), each with `now`; it then drains
//! [`TransactionLayer::poll_transmit`] and [`TransactionLayer::poll_event`]
//! and sleeps until [`TransactionLayer::poll_timeout`].
//!
//! The layer is generic over the caller's destination type `D` (an address,
//! a connection handle...): it stores the `D` a request came from or was sent
//! to and hands it back on every [`Transmit`], never looking inside it.
//!
//! What the layer leaves to the TU (as RFC 3261 does): every `Request` and
//! `Cancel` must get a final response, since a server transaction waits for
//! it without a timer; an INVITE client transaction that got a provisional
//! response waits for its final one without a timer too, until the TU
//! cancels it (then 64*T1 at most, §9.1); the TU sends and retransmits 2xx
//! responses to INVITE and their ACKs (§13.3.1.4, §13.2.2.4), and turns
//! `Timeout` into a 408.
//!
//! One file per idea: the four state machines of RFC 3261 figures 5 to 8
//! (`client_invite`, `client_non_invite`, `server_invite`,
//! `server_non_invite`), transaction matching (`key`), ACK / CANCEL / 100
//! construction (`build`), the timer queue (`timers`), id allocation
//! (`slab`), and the layer that ties them together (`layer`).

mod build;
mod client_invite;
mod client_non_invite;
mod key;
mod layer;
mod server_invite;
mod server_non_invite;
mod slab;
mod timers;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;

use super::message::{Request, Response};

pub use layer::TransactionLayer;

/// The SIP timer base values (RFC 3261 §17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip time estimate: the first retransmission interval.
    pub t1: Duration,
    /// The longest retransmission interval for non-INVITE requests and
    /// INVITE responses.
    pub t2: Duration,
    /// The longest time a message stays in the network.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, J, L, M (RFC 3261 Table 4, RFC 6026 §8.11).
    fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// A server transaction, as handed to the TU in [`TxEvent::Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(u64);

/// A client transaction, as returned by [`TransactionLayer::send_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(u64);

/// Either kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxId {
    Client(ClientTxId),
    Server(ServerTxId),
}

impl From<ClientTxId> for TxId {
    fn from(id: ClientTxId) -> Self {
        TxId::Client(id)
    }
}

impl From<ServerTxId> for TxId {
    fn from(id: ServerTxId) -> Self {
        TxId::Server(id)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxId::Client(ClientTxId(n)) => write!(f, "client transaction {n:#x}"),
            TxId::Server(ServerTxId(n)) => write!(f, "server transaction {n:#x}"),
        }
    }
}

/// A datagram or stream write for the transport. A retransmission hands out
/// the same `Bytes` again: a message is serialized once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<D> {
    pub dest: D,
    pub data: Bytes,
}

/// What the layer tells the transaction user (the SIP core).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent<D> {
    /// A new request (not ACK, not CANCEL): the TU must answer it with
    /// [`TransactionLayer::respond`]. An INVITE has already been answered
    /// `100 Trying` (RFC 3261 §17.2.1).
    Request {
        tx: ServerTxId,
        request: Request,
        source: D,
    },
    /// An ACK for the TU: one matching no INVITE transaction (the ACK for a
    /// 2xx is end to end and has a branch of its own, RFC 3261 §17.1.1.3;
    /// or a late ACK whose transaction has ended), or one reaching an INVITE
    /// transaction in the Accepted state (RFC 6026 §7.1). It needs no answer.
    Ack { request: Request, source: D },
    /// A new CANCEL (RFC 3261 §9.2), in a server transaction of its own.
    /// `target` is the INVITE server transaction it matches: the TU answers
    /// the CANCEL 200 and, if that INVITE has no final response yet, the
    /// INVITE 487 ([`TransactionLayer::respond`] returns
    /// [`TxError::FinalAlreadySent`] otherwise). Without a target the TU
    /// answers 481.
    Cancel {
        tx: ServerTxId,
        request: Request,
        source: D,
        target: Option<ServerTxId>,
    },
    /// A response to a client transaction: provisional, final, and for an
    /// INVITE the further 2xx of the RFC 6026 Accepted state (forks, or
    /// retransmissions the TU must ACK again).
    Response { tx: ClientTxId, response: Response },
    /// A response that matches no client transaction (RFC 3261 §18.1.2; a
    /// UAC core may need a stray INVITE 2xx to send an ACK and a BYE).
    Stray(Response),
    /// Timer B or F fired (RFC 3261 §17.1.1.2, §17.1.2.2), or an INVITE got
    /// no final response 64*T1 after it was cancelled (§9.1): the TU acts as
    /// if it had received a 408.
    Timeout { tx: ClientTxId },
    /// Timer H fired: no ACK came for a non-2xx final response to an INVITE
    /// (RFC 3261 §17.2.1).
    ServerTimeout { tx: ServerTxId },
    /// The transport reported a failure for this transaction, which is now
    /// terminated (RFC 3261 §17.1.4, §17.2.4).
    TransportError { tx: TxId },
    /// The transaction is gone: any later message for it is new, stray, or
    /// (for an ACK) end to end. Sent once for every transaction the TU was
    /// told about, whatever ended it.
    Terminated { tx: TxId },
}

/// Why the layer refused an input from the TU.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TxError {
    /// The transaction never existed or has already terminated.
    #[error("no live {0}")]
    UnknownTransaction(TxId),
    /// The server transaction already sent a final response; only an INVITE
    /// in the Accepted state takes further 2xx (RFC 6026 §7.1).
    #[error("{} already sent a final response", TxId::Server(*.0))]
    FinalAlreadySent(ServerTxId),
    /// Response status codes are 100 to 699 (RFC 3261 §7.2).
    #[error("status code {0} is outside 100-699")]
    InvalidStatus(u16),
    /// A request sent in a client transaction needs a top Via whose branch
    /// starts with the magic cookie (RFC 3261 §8.1.1.7).
    #[error("the request has no top Via with a z9hG4bK branch")]
    MissingBranch,
    /// A client transaction with this branch and method is alive: branches
    /// must be unique (RFC 3261 §8.1.1.7).
    #[error("a client transaction with this branch and method is already running")]
    DuplicateBranch,
    /// An ACK is never sent in a client transaction: the layer sends the ACK
    /// for a non-2xx itself, and the ACK for a 2xx belongs to the dialog
    /// (RFC 3261 §17.1.1.3, §13.2.2.4).
    #[error("ACK is not sent in a client transaction")]
    AckIsNotATransaction,
    /// Only INVITE client transactions are cancelled (RFC 3261 §9.1).
    #[error("{} is not an INVITE client transaction", TxId::Client(*.0))]
    NotAnInvite(ClientTxId),
}

#[cfg(test)]
mod tests;
