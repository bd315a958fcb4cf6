//! The transaction layer: matching messages to transactions, driving the
//! state machines, and queueing what they send and report.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::message::{Method, Request, Response};
use super::build;
use super::client_invite::{self, ClientInvite, Reaction};
use super::client_non_invite::{self, ClientNonInvite};
use super::key::{self, ServerKey};
use super::server_invite::{self, AckAction, Keep, ServerInvite};
use super::server_non_invite::{self, ServerNonInvite};
use super::slab::Slab;
use super::timers::{Fired, Owner, TimerQueue};
use super::{ClientTxId, ServerTxId, TimerConfig, Transmit, TxError, TxEvent, TxId};

/// The SIP transaction layer (see the module documentation).
pub struct TransactionLayer<D> {
    config: TimerConfig,
    servers: Slab<ServerTx<D>>,
    clients: Slab<ClientTx<D>>,
    /// RFC 3261 §17.2.3 matching: key to live server transaction.
    server_keys: HashMap<Arc<str>, ServerTxId>,
    /// RFC 3261 §8.2.2.2: From tag, Call-ID and CSeq of the live server
    /// transactions whose request had no To tag.
    merge_keys: HashMap<Arc<str>, ServerTxId>,
    /// RFC 3261 §17.1.3 matching.
    client_keys: HashMap<Arc<str>, ClientTxId>,
    /// RFC 3261 §17.2.3: the ACK of an RFC 2543 INVITE transaction matches
    /// by the To tag of the final response, kept here for those (rare)
    /// transactions only rather than in every record.
    rfc2543_ack_tags: HashMap<ServerTxId, Box<str>>,
    timers: TimerQueue,
    /// Scratch space for `handle_timeout`, kept to avoid an allocation per call.
    due: Vec<(Instant, Owner)>,
    transmits: VecDeque<Transmit<D>>,
    events: VecDeque<TxEvent<D>>,
}

/// A server transaction: its key, where its responses go, the last response
/// (for retransmissions) and its state. The request itself went to the TU.
struct ServerTx<D> {
    key: Arc<str>,
    merge_key: Option<Arc<str>>,
    source: D,
    /// Resent on a request retransmission and by Timer G; empty when
    /// nothing is to be resent.
    last_response: Bytes,
    machine: ServerMachine,
    /// The deadline this transaction has in the timer queue.
    queued: Option<Instant>,
    rfc2543: bool,
    /// Created by the layer to answer a merged request 482 (RFC 3261
    /// §8.2.2.2): the TU never hears of it.
    internal: bool,
}

enum ServerMachine {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

impl ServerMachine {
    fn is_terminated(&self) -> bool {
        match self {
            ServerMachine::Invite(m) => m.state == server_invite::State::Terminated,
            ServerMachine::NonInvite(m) => m.state == server_non_invite::State::Terminated,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            ServerMachine::Invite(m) => m.deadline(),
            ServerMachine::NonInvite(m) => m.deadline(),
        }
    }
}

struct ClientTx<D> {
    key: Arc<str>,
    dest: D,
    /// The request as sent, resent by Timers A and E.
    request: Bytes,
    machine: ClientMachine,
    queued: Option<Instant>,
}

enum ClientMachine {
    Invite(InviteClient),
    NonInvite(ClientNonInvite),
}

/// An INVITE client transaction keeps what its ACK and CANCEL need.
struct InviteClient {
    fsm: ClientInvite,
    /// Request-URI, top Via, From, To, Call-ID, CSeq and Route.
    skeleton: Box<Request>,
    /// The ACK for the non-2xx final response, resent on its retransmissions.
    ack: Option<Bytes>,
    /// The CANCEL transaction for this INVITE, once `cancel` was called.
    cancel: Option<ClientTxId>,
}

impl ClientMachine {
    fn is_terminated(&self) -> bool {
        match self {
            ClientMachine::Invite(m) => m.fsm.state == client_invite::State::Terminated,
            ClientMachine::NonInvite(m) => m.state == client_non_invite::State::Terminated,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            ClientMachine::Invite(m) => m.fsm.deadline(),
            ClientMachine::NonInvite(m) => m.deadline(),
        }
    }
}

/// What to do with a held CANCEL after its INVITE saw a response.
enum HeldCancel {
    Send(ClientTxId),
    Drop(ClientTxId),
}

impl<D: Clone + fmt::Debug> TransactionLayer<D> {
    /// A layer with these timer values. T1 is raised to 1 ms and T2 to T1
    /// if smaller, so that retransmission timers always move forward.
    pub fn new(config: TimerConfig) -> Self {
        let t1 = config.t1.max(Duration::from_millis(1));
        let config = TimerConfig {
            t1,
            t2: config.t2.max(t1),
            t4: config.t4,
        };
        TransactionLayer {
            config,
            servers: Slab::new(),
            clients: Slab::new(),
            server_keys: HashMap::new(),
            merge_keys: HashMap::new(),
            client_keys: HashMap::new(),
            rfc2543_ack_tags: HashMap::new(),
            timers: TimerQueue::default(),
            due: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The number of live transactions, client and server.
    pub fn live_transactions(&self) -> usize {
        self.servers.len() + self.clients.len()
    }

    // ----- Inputs from the transport -------------------------------------

    /// A request arrived from `source` over a reliable (stream) or
    /// unreliable (datagram) transport.
    pub fn receive_request(&mut self, now: Instant, request: Request, source: D, reliable: bool) {
        if request.method == Method::Ack {
            self.receive_ack(now, request, source);
        } else {
            self.receive_other(now, request, source, reliable);
        }
        self.prune_timers();
    }

    fn receive_other(&mut self, now: Instant, request: Request, source: D, reliable: bool) {
        // Without a Via there is nowhere to send a response (the parser
        // rejects such requests; a hand-built one is dropped).
        let Some(key) = key::server_key(&request, &request.method) else {
            return;
        };
        if let Some(&id) = self.server_keys.get(key.text.as_str()) {
            self.retransmitted_request(id);
            return;
        }
        let merge_key = key::merge_key(&request);
        if merge_key
            .as_deref()
            .is_some_and(|m| self.merge_keys.contains_key(m))
        {
            self.answer_merged(now, &request, source, reliable, key);
            return;
        }
        let invite = request.method == Method::Invite;
        let id = self.insert_server(key, merge_key, source.clone(), reliable, invite, false);
        if invite {
            // RFC 3261 §17.2.1: answer at once so that the client stops
            // retransmitting; the TU's provisional responses replace it.
            let trying = build::response_bytes(&build::trying(&request));
            if let Some(tx) = self.servers.get_mut(id.0) {
                tx.last_response = trying.clone();
            }
            self.transmit(source.clone(), trying);
        }
        let event = if request.method == Method::Cancel {
            // RFC 3261 §9.2: the target is found by matching the CANCEL as
            // if it were the INVITE. The layer's own 482 transactions are
            // not offered: the TU never heard of them, and they are answered.
            let target = key::server_key(&request, &Method::Invite)
                .and_then(|k| self.server_keys.get(k.text.as_str()).copied())
                .filter(|t| self.servers.get(t.0).is_some_and(|t| !t.internal));
            TxEvent::Cancel {
                tx: id,
                request,
                source,
                target,
            }
        } else {
            TxEvent::Request {
                tx: id,
                request,
                source,
            }
        };
        self.events.push_back(event);
    }

    /// RFC 3261 §17.2.1, §17.2.2: a retransmission is absorbed, answered
    /// with the last response if there is one to resend.
    fn retransmitted_request(&mut self, id: ServerTxId) {
        let Some(tx) = self.servers.get(id.0) else {
            return;
        };
        let resend = match &tx.machine {
            ServerMachine::Invite(m) => m.on_request(),
            ServerMachine::NonInvite(m) => m.on_request(),
        };
        if resend && !tx.last_response.is_empty() {
            let (dest, data) = (tx.source.clone(), tx.last_response.clone());
            self.transmit(dest, data);
        }
    }

    /// RFC 3261 §8.2.2.2: a request without To tag with the From tag,
    /// Call-ID and CSeq of a live transaction that it does not match arrived
    /// by another path (a fork looping back). It gets a server transaction of
    /// its own, so that its retransmissions are absorbed, answered 482.
    fn answer_merged(
        &mut self,
        now: Instant,
        request: &Request,
        source: D,
        reliable: bool,
        key: ServerKey,
    ) {
        tracing::debug!(call_id = %request.headers.call_id, ?source, "merged request answered 482");
        let invite = request.method == Method::Invite;
        let id = self.insert_server(key, None, source, reliable, invite, true);
        // A fresh transaction takes any final response.
        let _ = self.respond_inner(now, id, &build::loop_detected(request));
    }

    fn receive_ack(&mut self, now: Instant, request: Request, source: D) {
        let matched = key::server_key(&request, &Method::Invite).and_then(|key| {
            let id = *self.server_keys.get(key.text.as_str())?;
            // RFC 3261 §17.2.3: an RFC 2543 ACK also carries the To tag of
            // the response it acknowledges.
            let tag_ok = !key.rfc2543
                || self.rfc2543_ack_tags.get(&id).map(|t| &**t) == request.headers.to.tag();
            tag_ok.then_some(id)
        });
        let Some(id) = matched else {
            // The ACK for a 2xx: end to end, for the TU (RFC 6026 §7.1).
            self.events.push_back(TxEvent::Ack { request, source });
            return;
        };
        let config = self.config;
        let Some(ServerTx {
            machine: ServerMachine::Invite(m),
            ..
        }) = self.servers.get_mut(id.0)
        else {
            return;
        };
        match m.on_ack(now, &config) {
            AckAction::Absorb => {}
            AckAction::PassUp => self.events.push_back(TxEvent::Ack { request, source }),
        }
        self.after_server_step(id);
    }

    /// A response arrived; it is matched by top Via branch and CSeq method
    /// (RFC 3261 §17.1.3).
    pub fn receive_response(&mut self, now: Instant, response: Response) {
        let matched = key::response_client_key(&response)
            .and_then(|k| self.client_keys.get(k.as_str()).copied());
        match matched {
            Some(id) => self.client_response(now, id, response),
            None => self.events.push_back(TxEvent::Stray(response)),
        }
        self.prune_timers();
    }

    fn client_response(&mut self, now: Instant, id: ClientTxId, response: Response) {
        let config = self.config;
        let Some(tx) = self.clients.get_mut(id.0) else {
            return;
        };
        let mut held = None;
        match &mut tx.machine {
            ClientMachine::NonInvite(m) => {
                if m.on_response(response.status, now, &config) {
                    self.events
                        .push_back(TxEvent::Response { tx: id, response });
                }
            }
            ClientMachine::Invite(m) => {
                match m.fsm.on_response(response.status, now, &config) {
                    Reaction::PassUp => self
                        .events
                        .push_back(TxEvent::Response { tx: id, response }),
                    Reaction::PassUpAndAck => {
                        let ack = build::request_bytes(&build::ack(&m.skeleton, &response));
                        m.ack = Some(ack.clone());
                        // RFC 3261 §17.1.1.3: to where the INVITE went.
                        self.transmits.push_back(Transmit {
                            dest: tx.dest.clone(),
                            data: ack,
                        });
                        self.events
                            .push_back(TxEvent::Response { tx: id, response });
                    }
                    Reaction::ResendAck => {
                        if let Some(ack) = &m.ack {
                            self.transmits.push_back(Transmit {
                                dest: tx.dest.clone(),
                                data: ack.clone(),
                            });
                        }
                    }
                    Reaction::Stray => self.events.push_back(TxEvent::Stray(response)),
                    Reaction::Absorb => {}
                }
                // RFC 3261 §9.1: a held CANCEL goes out with the first
                // provisional response, and is dropped by a final one.
                held = m.cancel.map(|c| {
                    if m.fsm.may_cancel() {
                        HeldCancel::Send(c)
                    } else {
                        HeldCancel::Drop(c)
                    }
                });
            }
        }
        match held {
            Some(HeldCancel::Send(cancel)) => self.start_cancel(now, id, cancel),
            Some(HeldCancel::Drop(cancel)) => {
                self.drop_held_cancel(cancel);
                if let Some(ClientTx {
                    machine: ClientMachine::Invite(m),
                    ..
                }) = self.clients.get_mut(id.0)
                {
                    m.cancel = None;
                }
            }
            None => {}
        }
        self.after_client_step(id);
    }

    /// The transport could not deliver a message of this transaction (RFC
    /// 3261 §17.1.4, §17.2.4): the TU is told and the transaction ends.
    pub fn transport_error(&mut self, tx: impl Into<TxId>) -> Result<(), TxError> {
        let tx = tx.into();
        match tx {
            TxId::Client(id) => {
                if self.clients.get(id.0).is_none() {
                    return Err(TxError::UnknownTransaction(tx));
                }
                self.events.push_back(TxEvent::TransportError { tx });
                self.remove_client(id);
            }
            TxId::Server(id) => {
                let internal = self.servers.get(id.0).map(|t| t.internal);
                match internal {
                    None => return Err(TxError::UnknownTransaction(tx)),
                    Some(false) => self.events.push_back(TxEvent::TransportError { tx }),
                    Some(true) => {}
                }
                self.remove_server(id);
            }
        }
        self.prune_timers();
        Ok(())
    }

    // ----- Inputs from the TU --------------------------------------------

    /// The TU's response on a server transaction: sent to where the request
    /// came from, and kept for retransmissions when the RFC asks for it.
    pub fn respond(
        &mut self,
        now: Instant,
        tx: ServerTxId,
        response: Response,
    ) -> Result<(), TxError> {
        let result = self.respond_inner(now, tx, &response);
        self.prune_timers();
        result
    }

    fn respond_inner(
        &mut self,
        now: Instant,
        id: ServerTxId,
        response: &Response,
    ) -> Result<(), TxError> {
        let status = response.status;
        if !(100..=699).contains(&status) {
            return Err(TxError::InvalidStatus(status));
        }
        let config = self.config;
        let tx = self
            .servers
            .get_mut(id.0)
            .ok_or(TxError::UnknownTransaction(TxId::Server(id)))?;
        let keep = match &mut tx.machine {
            ServerMachine::Invite(m) => {
                let keep = m
                    .on_tu_response(status, now, &config)
                    .map_err(|_| TxError::FinalAlreadySent(id))?;
                if let (true, true, Some(tag)) =
                    (tx.rfc2543, status >= 200, response.headers.to.tag())
                {
                    self.rfc2543_ack_tags.insert(id, tag.into());
                }
                keep == Keep::ForRetransmission
            }
            ServerMachine::NonInvite(m) => {
                m.on_tu_response(status, now, &config)
                    .map_err(|_| TxError::FinalAlreadySent(id))?;
                true
            }
        };
        let data = build::response_bytes(response);
        tx.last_response = if keep { data.clone() } else { Bytes::new() };
        let dest = tx.source.clone();
        self.transmit(dest, data);
        self.after_server_step(id);
        Ok(())
    }

    /// Starts a client transaction for `request` towards `dest`. The request
    /// must carry its final top Via, with a unique `z9hG4bK` branch.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        dest: D,
        reliable: bool,
    ) -> Result<ClientTxId, TxError> {
        if request.method == Method::Ack {
            return Err(TxError::AckIsNotATransaction);
        }
        if !key::has_rfc3261_branch(&request) {
            return Err(TxError::MissingBranch);
        }
        let key = request
            .headers
            .top_via()
            .and_then(|via| key::client_key(&request.method, via))
            .ok_or(TxError::MissingBranch)?;
        if self.client_keys.contains_key(key.as_str()) {
            return Err(TxError::DuplicateBranch);
        }
        let data = build::request_bytes(&request);
        let machine = if request.method == Method::Invite {
            ClientMachine::Invite(InviteClient {
                fsm: ClientInvite::start(now, reliable, &self.config),
                skeleton: Box::new(build::skeleton(&request)),
                ack: None,
                cancel: None,
            })
        } else {
            let mut fsm = ClientNonInvite::new(reliable);
            fsm.start(now, &self.config);
            ClientMachine::NonInvite(fsm)
        };
        let id = self.insert_client(key, dest.clone(), data.clone(), machine);
        self.transmit(dest, data);
        self.after_client_step(id);
        self.prune_timers();
        Ok(id)
    }

    /// Cancels an INVITE client transaction (RFC 3261 §9.1). Returns the
    /// CANCEL's client transaction: sent now if a provisional response has
    /// arrived, otherwise held until one does (and dropped, with a
    /// `Terminated` event, if a final response comes first). Calling it again
    /// before the final response returns the same CANCEL. `None` once the
    /// INVITE has its final response: there is nothing left to cancel.
    pub fn cancel(&mut self, now: Instant, tx: ClientTxId) -> Result<Option<ClientTxId>, TxError> {
        let invite = self
            .clients
            .get(tx.0)
            .ok_or(TxError::UnknownTransaction(TxId::Client(tx)))?;
        let ClientMachine::Invite(m) = &invite.machine else {
            return Err(TxError::NotAnInvite(tx));
        };
        if let Some(cancel) = m.cancel {
            return Ok(Some(cancel));
        }
        if m.fsm.is_over() {
            return Ok(None);
        }
        let request = build::cancel(&m.skeleton);
        let key = request
            .headers
            .top_via()
            .and_then(|via| key::client_key(&Method::Cancel, via))
            .ok_or(TxError::MissingBranch)?;
        if self.client_keys.contains_key(key.as_str()) {
            // The TU sent its own CANCEL with this branch.
            return Err(TxError::DuplicateBranch);
        }
        let (send_now, reliable, dest) = (m.fsm.may_cancel(), m.fsm.reliable, invite.dest.clone());
        let machine = ClientMachine::NonInvite(ClientNonInvite::new(reliable));
        let cancel = self.insert_client(key, dest, build::request_bytes(&request), machine);
        if let Some(ClientTx {
            machine: ClientMachine::Invite(m),
            ..
        }) = self.clients.get_mut(tx.0)
        {
            m.cancel = Some(cancel);
        }
        if send_now {
            self.start_cancel(now, tx, cancel);
        }
        self.prune_timers();
        Ok(Some(cancel))
    }

    /// Sends a held CANCEL and starts the INVITE's §9.1 timer.
    fn start_cancel(&mut self, now: Instant, invite: ClientTxId, cancel: ClientTxId) {
        let config = self.config;
        let Some(tx) = self.clients.get_mut(cancel.0) else {
            return;
        };
        let ClientMachine::NonInvite(m) = &mut tx.machine else {
            return;
        };
        if m.state != client_non_invite::State::Held {
            return;
        }
        m.start(now, &config);
        let (dest, data) = (tx.dest.clone(), tx.request.clone());
        self.transmit(dest, data);
        self.after_client_step(cancel);
        if let Some(ClientTx {
            machine: ClientMachine::Invite(m),
            ..
        }) = self.clients.get_mut(invite.0)
        {
            m.fsm.on_cancel_sent(now, &config);
        }
        self.after_client_step(invite);
    }

    fn drop_held_cancel(&mut self, cancel: ClientTxId) {
        let held = matches!(
            self.clients.get(cancel.0),
            Some(ClientTx { machine: ClientMachine::NonInvite(m), .. }) if m.state == client_non_invite::State::Held
        );
        if held {
            self.remove_client(cancel);
        }
    }

    // ----- Time ----------------------------------------------------------

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Due entries are taken first: a timer rearmed while handling them
        // waits for the next call, so this loop always ends.
        let mut due = std::mem::take(&mut self.due);
        while let Some((at, owner)) = self.timers.peek().filter(|(at, _)| *at <= now) {
            self.timers.pop();
            due.push((at, owner));
        }
        for (at, owner) in due.drain(..) {
            match owner {
                Owner::Server(id) => self.fire_server(now, at, id),
                Owner::Client(id) => self.fire_client(now, at, id),
            }
        }
        self.due = due;
        self.prune_timers();
    }

    fn fire_server(&mut self, now: Instant, at: Instant, id: ServerTxId) {
        let config = self.config;
        let Some(tx) = self
            .servers
            .get_mut(id.0)
            .filter(|tx| tx.queued == Some(at))
        else {
            return;
        };
        tx.queued = None;
        let fired = match &mut tx.machine {
            ServerMachine::Invite(m) => m.on_timer(now, &config),
            ServerMachine::NonInvite(m) => m.on_timer(now),
        };
        match fired {
            Fired::Retransmit => {
                let (dest, data) = (tx.source.clone(), tx.last_response.clone());
                self.transmit(dest, data);
            }
            Fired::Timeout if !tx.internal => {
                tracing::debug!(source = ?tx.source, "Timer H: no ACK for a final response");
                self.events.push_back(TxEvent::ServerTimeout { tx: id });
            }
            Fired::Timeout | Fired::Terminated | Fired::Idle => {}
        }
        self.after_server_step(id);
    }

    fn fire_client(&mut self, now: Instant, at: Instant, id: ClientTxId) {
        let config = self.config;
        let Some(tx) = self
            .clients
            .get_mut(id.0)
            .filter(|tx| tx.queued == Some(at))
        else {
            return;
        };
        tx.queued = None;
        let fired = match &mut tx.machine {
            ClientMachine::Invite(m) => m.fsm.on_timer(now),
            ClientMachine::NonInvite(m) => m.on_timer(now, &config),
        };
        match fired {
            Fired::Retransmit => {
                let (dest, data) = (tx.dest.clone(), tx.request.clone());
                self.transmit(dest, data);
            }
            Fired::Timeout => self.events.push_back(TxEvent::Timeout { tx: id }),
            Fired::Terminated | Fired::Idle => {}
        }
        self.after_client_step(id);
    }

    // ----- Outputs -------------------------------------------------------

    /// The next message to hand to the transport.
    pub fn poll_transmit(&mut self) -> Option<Transmit<D>> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TxEvent<D>> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|(at, _)| at)
    }

    // ----- Bookkeeping ---------------------------------------------------

    fn transmit(&mut self, dest: D, data: Bytes) {
        self.transmits.push_back(Transmit { dest, data });
    }

    fn insert_server(
        &mut self,
        key: ServerKey,
        merge_key: Option<String>,
        source: D,
        reliable: bool,
        invite: bool,
        internal: bool,
    ) -> ServerTxId {
        let machine = if invite {
            ServerMachine::Invite(ServerInvite::new(reliable))
        } else {
            ServerMachine::NonInvite(ServerNonInvite::new(reliable))
        };
        let key_text: Arc<str> = Arc::from(key.text);
        let merge_key: Option<Arc<str>> = merge_key.map(Arc::from);
        let id = ServerTxId(self.servers.insert(ServerTx {
            key: key_text.clone(),
            merge_key: merge_key.clone(),
            source,
            last_response: Bytes::new(),
            machine,
            queued: None,
            rfc2543: key.rfc2543,
            internal,
        }));
        self.server_keys.insert(key_text, id);
        if let Some(m) = merge_key {
            self.merge_keys.insert(m, id);
        }
        id
    }

    fn insert_client(
        &mut self,
        key: String,
        dest: D,
        request: Bytes,
        machine: ClientMachine,
    ) -> ClientTxId {
        let key: Arc<str> = Arc::from(key);
        let id = ClientTxId(self.clients.insert(ClientTx {
            key: key.clone(),
            dest,
            request,
            machine,
            queued: None,
        }));
        self.client_keys.insert(key, id);
        id
    }

    /// After a transition: a terminated transaction is destroyed at once
    /// (RFC 3261 §17.1.1.2, §17.2.1), a live one has its deadline queued.
    fn after_server_step(&mut self, id: ServerTxId) {
        let Some(tx) = self.servers.get_mut(id.0) else {
            return;
        };
        if tx.machine.is_terminated() {
            self.remove_server(id);
            return;
        }
        let deadline = tx.machine.deadline();
        if deadline != tx.queued {
            tx.queued = deadline;
            if let Some(at) = deadline {
                self.timers.push(at, Owner::Server(id));
            }
        }
    }

    fn after_client_step(&mut self, id: ClientTxId) {
        let Some(tx) = self.clients.get_mut(id.0) else {
            return;
        };
        if tx.machine.is_terminated() {
            self.remove_client(id);
            return;
        }
        let deadline = tx.machine.deadline();
        if deadline != tx.queued {
            tx.queued = deadline;
            if let Some(at) = deadline {
                self.timers.push(at, Owner::Client(id));
            }
        }
    }

    fn remove_server(&mut self, id: ServerTxId) {
        let Some(tx) = self.servers.remove(id.0) else {
            return;
        };
        if self.server_keys.get(&tx.key) == Some(&id) {
            self.server_keys.remove(&tx.key);
        }
        if let Some(m) = &tx.merge_key {
            if self.merge_keys.get(m) == Some(&id) {
                self.merge_keys.remove(m);
            }
        }
        if tx.rfc2543 {
            self.rfc2543_ack_tags.remove(&id);
        }
        if !tx.internal {
            self.events.push_back(TxEvent::Terminated {
                tx: TxId::Server(id),
            });
        }
    }

    fn remove_client(&mut self, id: ClientTxId) {
        let Some(tx) = self.clients.remove(id.0) else {
            return;
        };
        if self.client_keys.get(&tx.key) == Some(&id) {
            self.client_keys.remove(&tx.key);
        }
        self.events.push_back(TxEvent::Terminated {
            tx: TxId::Client(id),
        });
        // A CANCEL still held dies with its INVITE.
        if let ClientMachine::Invite(InviteClient {
            cancel: Some(c), ..
        }) = tx.machine
        {
            self.drop_held_cancel(c);
        }
    }

    /// Drops stale entries from the top of the timer queue, so that
    /// `poll_timeout` returns a deadline that will do something.
    fn prune_timers(&mut self) {
        while let Some((at, owner)) = self.timers.peek() {
            let live = match owner {
                Owner::Server(id) => self.servers.get(id.0).is_some_and(|t| t.queued == Some(at)),
                Owner::Client(id) => self.clients.get(id.0).is_some_and(|t| t.queued == Some(at)),
            };
            if live {
                break;
            }
            self.timers.pop();
        }
    }
}

#[cfg(test)]
impl<D> TransactionLayer<D> {
    /// Entries in the timer queue, stale ones included.
    pub(super) fn queued_timers(&self) -> usize {
        self.timers.len()
    }
}

#[cfg(test)]
pub(super) mod size {
    //! Sizes of the per-transaction records, for the memory report.
    pub(crate) fn server_tx<D>() -> usize {
        std::mem::size_of::<super::ServerTx<D>>()
    }

    pub(crate) fn client_tx<D>() -> usize {
        std::mem::size_of::<super::ClientTx<D>>()
    }
}
