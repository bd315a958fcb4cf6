//! Where a caller goes: the dial plan's route (a queue, an IVR menu, a
//! message) is taken when the call is answered, and again whenever an IVR
//! choice or a queue's overflow sends the caller on. The caller's leg keeps
//! its media session throughout; only what it hears changes.

use std::time::{Instant, SystemTime};

use tracing::{info, warn};

use super::super::dialog::DialogId;
use super::super::flow::Flow;
use super::super::message::{Request, Response};
use super::calls::PendingStart;
use super::queue_calls::{once, Role};
use super::{Endpoint, Output};
use crate::call::ivr::{self, IvrSession};
use crate::call::record::{CallDirection, CallOutcome, CallRecordBuilder, HungUpBy};
use crate::config::{AgentId, DialPermission, IvrName, QueueName, Route, PERSONAL_QUEUE_PREFIX};
use crate::media::control::MediaCommand;
use crate::media::player::{PlayItem, Player};
use crate::media::relay::LegId;
use crate::media::sdp::Negotiated;
use crate::media::session::{Feed, SessionId};

/// A caller we answered, with what follows it from route to route.
#[derive(Debug)]
pub(super) struct Caller {
    pub(super) dialog: DialogId,
    /// The caller leg's SIP Call-ID.
    pub(super) call_id: String,
    pub(super) session: SessionId,
    pub(super) number: String,
    pub(super) dialled: String,
    pub(super) direction: CallDirection,
    pub(super) arrived: SystemTime,
    /// Keys pressed in menus, for the agent's screen pop.
    pub(super) ivr_choices: String,
    /// The call's number once it entered a queue: kept through transfers
    /// and overflows, so that the API and the events name one call.
    pub(super) number_in_acd: Option<crate::call::acd::CallId>,
    /// The call's recording once started (relative path).
    pub(super) recording: Option<std::path::PathBuf>,
    pub(super) recording_paused: bool,
    pub(super) record: CallRecordBuilder,
}

/// A caller in an IVR menu.
#[derive(Debug)]
pub(super) struct IvrCall {
    who: Caller,
    ivr: IvrSession,
    /// The menu's pending timer, as filed in `QueueCalls::ivr_at`.
    due: Option<Instant>,
}

/// What a routed caller starts with once its media is negotiated.
#[derive(Debug)]
pub(super) struct CallerStart {
    route: Route,
    caller: String,
    dialled: String,
    /// From a carrier's trunk (else an agent dialled the number).
    from_trunk: bool,
    arrived: SystemTime,
}

/// The agent's own queue (see [`crate::config::PERSONAL_QUEUE_PREFIX`]).
fn personal_queue(agent: &AgentId) -> Option<QueueName> {
    format!("{PERSONAL_QUEUE_PREFIX}{agent}").parse().ok()
}

impl Endpoint {
    /// Answers an INVITE whose dialled number the dial plan routes to a
    /// queue, an IVR menu or a message.
    /// `agent` is the authenticated agent calling, `None` for the carrier.
    pub(super) fn routed_call(
        &mut self,
        now: Instant,
        request: &Request,
        source: &Flow,
        agent: Option<&str>,
    ) -> Option<Response> {
        let dialled = Self::dialled(request);
        let route = self.queues.route(&dialled)?;
        if let Some(agent) = agent {
            if !self.may_dial(agent, DialPermission::Internal) {
                warn!(%agent, number = %dialled, "internal call refused: no dial permission");
                return Some(self.reply(request, 403));
            }
        }
        let from_trunk = agent.is_none();
        match &route {
            // RFC 3261 §21.4.18: nobody takes calls to this number now.
            Route::Hangup => return Some(self.reply(request, 480)),
            Route::Queue(_) | Route::Agent(_) if !self.queues.has_acd() => {
                return Some(self.reply(request, 480))
            }
            _ => {}
        }
        let start = PendingStart::Routed(CallerStart {
            route,
            caller: Self::caller_user(request),
            dialled: dialled.clone(),
            from_trunk,
            arrived: self.wall(now),
        });
        Some(self.answer_call(now, request, source, &dialled, start))
    }

    /// The caller's media is up: its session starts and it takes its route.
    pub(super) fn start_routed_media(
        &mut self,
        now: Instant,
        id: &DialogId,
        negotiated: Negotiated,
        start: CallerStart,
    ) {
        let Some(call_id) = self.calls.call_id_of(id) else {
            return;
        };
        let session = self.new_session();
        self.open_leg(id, session, LegId::Caller, negotiated, Feed::Silence);
        let direction = if start.from_trunk {
            CallDirection::Inbound
        } else {
            CallDirection::Internal
        };
        let record = CallRecordBuilder::new(
            call_id.clone(),
            direction,
            start.caller.clone(),
            start.dialled.clone(),
            start.arrived,
        );
        let who = Caller {
            dialog: id.clone(),
            call_id,
            session,
            number: start.caller,
            dialled: start.dialled,
            direction,
            arrived: start.arrived,
            ivr_choices: String::new(),
            number_in_acd: None,
            recording: None,
            recording_paused: false,
            record,
        };
        self.route_caller(now, who, start.route);
    }

    /// Sends a caller where `route` says.
    pub(super) fn route_caller(&mut self, now: Instant, mut who: Caller, route: Route) {
        info!(call = %who.call_id, %route, "caller routed");
        match route {
            Route::Queue(queue) => self.enqueue_caller(now, who, queue),
            Route::Ivr(menu) => self.enter_ivr(now, who, menu),
            Route::Message(prompt) => {
                let wall = self.wall(now);
                who.record.ended(
                    wall,
                    CallOutcome::Failed,
                    Some(HungUpBy::Gateway),
                    format!("message {prompt}"),
                );
                match self.queues.settings().prompt(&prompt) {
                    Some(p) => {
                        self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
                            session: who.session,
                            leg: LegId::Caller,
                            feed: once(&p),
                        }));
                        self.calls.set_role(&who.dialog, Role::Goodbye);
                        self.close_record(who.session, who.record, 1, None);
                    }
                    None => self.route_caller(now, who, Route::Hangup),
                }
            }
            Route::Agent(agent) => match personal_queue(&agent) {
                Some(queue) => self.enqueue_caller(now, who, queue),
                None => self.route_caller(now, who, Route::Hangup),
            },
            Route::Hangup => {
                let wall = self.wall(now);
                who.record.ended(
                    wall,
                    CallOutcome::Failed,
                    Some(HungUpBy::Gateway),
                    "routed to hang-up",
                );
                let dialog = who.dialog.clone();
                self.calls.set_role(&dialog, Role::Goodbye);
                self.close_record(who.session, who.record, 1, None);
                self.hang_up(now, &dialog, "routed to hang-up");
            }
        }
    }

    fn enter_ivr(&mut self, now: Instant, who: Caller, menu: IvrName) {
        let Some(menu) = self.queues.menus.get(&menu).cloned() else {
            warn!(%menu, "no such IVR menu");
            return self.route_caller(now, who, Route::Hangup);
        };
        let dialog = who.dialog.clone();
        self.calls.set_role(&dialog, Role::Ivr);
        let ivr = IvrSession::new(menu, now);
        self.queues.ivr_calls.insert(
            dialog.clone(),
            IvrCall {
                who,
                ivr,
                due: None,
            },
        );
        self.pump_ivr(now, &dialog);
    }

    /// Carries out what a caller's menu decided, and files its next timer.
    fn pump_ivr(&mut self, now: Instant, dialog: &DialogId) {
        loop {
            let Some(call) = self.queues.ivr_calls.get_mut(dialog) else {
                return;
            };
            let Some(output) = call.ivr.poll_output() else {
                break;
            };
            let session = call.who.session;
            match output {
                ivr::Output::Play(names) => {
                    let items: Vec<PlayItem> = names
                        .iter()
                        .filter_map(|n| self.queues.settings().prompt(n))
                        .map(PlayItem::Prompt)
                        .collect();
                    self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
                        session,
                        leg: LegId::Caller,
                        feed: Feed::Play(Player::new(items, false)),
                    }));
                }
                ivr::Output::StopPlayback => {
                    self.outputs.push_back(Output::Media(MediaCommand::SetFeed {
                        session,
                        leg: LegId::Caller,
                        feed: Feed::Silence,
                    }));
                }
                ivr::Output::Route(route) => {
                    if let Some(call) = self.queues.ivr_calls.remove(dialog) {
                        if let Some(due) = call.due {
                            self.queues.ivr_at.remove(&(due, dialog.clone()));
                        }
                        self.route_caller(now, call.who, route);
                    }
                    return;
                }
            }
        }
        if let Some(call) = self.queues.ivr_calls.get_mut(dialog) {
            let next = call.ivr.poll_timeout();
            if next != call.due {
                if let Some(old) = call.due {
                    self.queues.ivr_at.remove(&(old, dialog.clone()));
                }
                if let Some(at) = next {
                    self.queues.ivr_at.insert((at, dialog.clone()));
                }
                call.due = next;
            }
        }
    }

    /// A key pressed by a caller in a menu (RFC 4733 or SIP INFO).
    pub(super) fn ivr_digit(&mut self, now: Instant, dialog: &DialogId, digit: char) {
        if let Some(call) = self.queues.ivr_calls.get_mut(dialog) {
            call.who.record.ivr_digit(digit);
            call.who.ivr_choices.push(digit);
            call.ivr.digit(now, digit);
            self.pump_ivr(now, dialog);
        }
    }

    pub(super) fn ivr_playback_done(&mut self, now: Instant, dialog: &DialogId) {
        if let Some(call) = self.queues.ivr_calls.get_mut(dialog) {
            call.ivr.playback_done(now);
            self.pump_ivr(now, dialog);
        }
    }

    pub(super) fn ivr_handle_timeout(&mut self, now: Instant) {
        while let Some((at, dialog)) = self.queues.ivr_at.first().cloned() {
            if at > now {
                break;
            }
            self.queues.ivr_at.remove(&(at, dialog.clone()));
            if let Some(call) = self.queues.ivr_calls.get_mut(&dialog) {
                call.due = None;
                call.ivr.handle_timeout(now);
                self.pump_ivr(now, &dialog);
            }
        }
    }

    /// The caller in a menu hung up (or was hung up).
    pub(super) fn ivr_leg_ending(&mut self, now: Instant, dialog: &DialogId, why: &str) {
        let wall = self.wall(now);
        let Some(call) = self.queues.ivr_calls.remove(dialog) else {
            return;
        };
        if let Some(due) = call.due {
            self.queues.ivr_at.remove(&(due, dialog.clone()));
        }
        let mut record = call.who.record;
        if why == super::queue_calls::BYE_RECEIVED {
            record.ended(wall, CallOutcome::Abandoned, Some(HungUpBy::Caller), why);
        } else {
            record.ended(wall, CallOutcome::Failed, Some(HungUpBy::Gateway), why);
        }
        self.close_record(call.who.session, record, 1, None);
    }
}
