//! The event hub: numbers, dates and keeps the call core's [`Event`]s so
//! that WebSocket clients and webhooks can read them at their own pace.
//!
//! Publishing never blocks the signalling task: it takes a short lock,
//! appends to a bounded ring and bumps a watch channel. Readers pull from
//! the ring by sequence number, so a reader that falls behind loses
//! nothing until the events it has not read leave the retention window
//! (the newest [`RETAIN_EVENTS`] events, none older than [`RETAIN_FOR`]);
//! then it is told of the gap explicitly. A reconnecting client resumes
//! with the last sequence number it saw.
//!
//! Each event is also stamped with the agent it concerns, for agent
//! tokens' filtering: the agent the event names, or else the agent that
//! was last offered or answered its call (so a recording pause or a
//! transfer of an agent's call reaches that agent).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

use crate::control::{CallNumber, Event};

/// Events kept for readers that reconnect or fall behind.
pub const RETAIN_EVENTS: usize = 10_000;
/// Age beyond which events are no longer kept.
pub const RETAIN_FOR: Duration = Duration::from_secs(3600);

/// The `type` of every [`Event`] variant, as serialised: webhook filters
/// in the configuration are checked against this list.
pub const EVENT_TYPES: &[&str] = &[
    "call_offered",
    "call_ringing",
    "call_answered",
    "call_held",
    "call_resumed",
    "call_transferred",
    "call_ended",
    "agent_state_changed",
    "queue_caller_joined",
    "queue_caller_left",
    "queue_caller_abandoned",
    "recording_started",
    "recording_paused",
    "recording_completed",
];

/// An event as clients see it: `{"seq":..,"time":..,"type":..,...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StampedEvent {
    /// 1, 2, 3, ... since the gateway started.
    pub seq: u64,
    /// When the hub received it, RFC 3339 UTC with milliseconds.
    pub time: String,
    #[serde(flatten)]
    pub event: Event,
    /// `time` as a `SystemTime`, for the retention window; not sent.
    #[serde(skip)]
    pub at: SystemTime,
    /// The agent the event concerns (see the module docs); not sent.
    #[serde(skip)]
    pub agent: Option<String>,
}

impl StampedEvent {
    /// The `type` field.
    pub fn kind(&self) -> &'static str {
        event_type(&self.event)
    }
}

/// The serialised `type` of an event.
pub fn event_type(event: &Event) -> &'static str {
    match event {
        Event::CallOffered { .. } => "call_offered",
        Event::CallRinging { .. } => "call_ringing",
        Event::CallAnswered { .. } => "call_answered",
        Event::CallHeld { .. } => "call_held",
        Event::CallResumed { .. } => "call_resumed",
        Event::CallTransferred { .. } => "call_transferred",
        Event::CallEnded { .. } => "call_ended",
        Event::AgentStateChanged { .. } => "agent_state_changed",
        Event::QueueCallerJoined { .. } => "queue_caller_joined",
        Event::QueueCallerLeft { .. } => "queue_caller_left",
        Event::QueueCallerAbandoned { .. } => "queue_caller_abandoned",
        Event::RecordingStarted { .. } => "recording_started",
        Event::RecordingPaused { .. } => "recording_paused",
        Event::RecordingCompleted { .. } => "recording_completed",
    }
}

/// What a reader gets after sequence number `since`.
#[derive(Debug, Clone, PartialEq)]
pub enum Backlog {
    /// The events after `since`, oldest first (possibly none).
    Events(Vec<Arc<StampedEvent>>),
    /// Events after `since` are no longer kept (or `since` is from before
    /// a restart): `missed` is how many are gone, `events` what follows.
    Gap {
        first_available: u64,
        missed: u64,
        events: Vec<Arc<StampedEvent>>,
    },
}

/// Publishes events and serves them to readers. Cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    latest: watch::Sender<u64>,
    retain: usize,
    retain_for: Duration,
}

struct State {
    next_seq: u64,
    ring: VecDeque<Arc<StampedEvent>>,
    /// The agent last offered or answering each live call.
    owners: HashMap<CallNumber, String>,
    /// Events that left the ring by age or count.
    expired: u64,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new(RETAIN_EVENTS, RETAIN_FOR)
    }
}

impl EventHub {
    pub fn new(retain: usize, retain_for: Duration) -> Self {
        let (latest, _) = watch::channel(0);
        EventHub {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    next_seq: 1,
                    ring: VecDeque::new(),
                    owners: HashMap::new(),
                    expired: 0,
                }),
                latest,
                retain: retain.max(1),
                retain_for,
            }),
        }
    }

    /// Stamps `event` with the next sequence number and the current time.
    /// Called on the signalling thread: never blocks beyond a short lock.
    pub fn publish(&self, event: Event) -> u64 {
        self.publish_at(event, SystemTime::now())
    }

    /// As [`EventHub::publish`] at a given time (tests).
    pub fn publish_at(&self, event: Event, at: SystemTime) -> u64 {
        let seq = {
            let mut state = self.lock();
            let agent = attribute(&mut state.owners, &event);
            let seq = state.next_seq;
            state.next_seq += 1;
            state.ring.push_back(Arc::new(StampedEvent {
                seq,
                time: super::time::format_rfc3339(at),
                event,
                at,
                agent,
            }));
            let horizon = at.checked_sub(self.inner.retain_for);
            while state.ring.len() > self.inner.retain
                || state
                    .ring
                    .front()
                    .is_some_and(|e| horizon.is_some_and(|h| e.at < h))
            {
                state.ring.pop_front();
                state.expired += 1;
            }
            seq
        };
        self.inner.latest.send_replace(seq);
        seq
    }

    /// The newest sequence number (0 before the first event).
    pub fn latest(&self) -> u64 {
        *self.inner.latest.borrow()
    }

    /// Events that left the retention window.
    pub fn expired(&self) -> u64 {
        self.lock().expired
    }

    /// Wakes up when a new event is published.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.latest.subscribe()
    }

    /// Events after `since`, at most `max`. `since` is the last sequence
    /// number the reader has; 0 reads from the start.
    pub fn after(&self, since: u64, max: usize) -> Backlog {
        let state = self.lock();
        let latest = state.next_seq - 1;
        let first = state.ring.front().map_or(state.next_seq, |e| e.seq);
        let take = |from: u64| -> Vec<Arc<StampedEvent>> {
            let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
            state.ring.iter().skip(skip).take(max).cloned().collect()
        };
        if since > latest {
            // A number from before a restart: everything we have is new.
            return Backlog::Gap {
                first_available: first,
                missed: 0,
                events: take(first),
            };
        }
        if since + 1 < first {
            return Backlog::Gap {
                first_available: first,
                missed: first - since - 1,
                events: take(first),
            };
        }
        Backlog::Events(take(since + 1))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The agent `event` concerns, tracking which agent has each call.
fn attribute(owners: &mut HashMap<CallNumber, String>, event: &Event) -> Option<String> {
    match event {
        Event::CallOffered { call, agent, .. }
        | Event::CallRinging { call, agent }
        | Event::CallAnswered { call, agent } => {
            owners.insert(*call, agent.clone());
        }
        _ => {}
    }
    let named = event.agent().map(str::to_owned);
    let owner = event.call().and_then(|c| owners.get(&c).cloned());
    if let Event::CallEnded { call, .. } = event {
        owners.remove(call);
    }
    named.or(owner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn held(call: u64) -> Event {
        Event::CallHeld {
            call,
            agent: "1001".into(),
        }
    }

    fn seqs(events: &[Arc<StampedEvent>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn every_event_type_is_listed_and_named_as_serialised() {
        let samples = [
            Event::CallOffered {
                call: 1,
                agent: "a".into(),
                queue: "q".into(),
                caller: "c".into(),
                waited_secs: 1,
                ivr_choices: String::new(),
            },
            Event::CallRinging {
                call: 1,
                agent: "a".into(),
            },
            Event::CallAnswered {
                call: 1,
                agent: "a".into(),
            },
            held(1),
            Event::CallResumed {
                call: 1,
                agent: "a".into(),
            },
            Event::CallTransferred {
                call: 1,
                target: "t".into(),
            },
            Event::CallEnded {
                call: 1,
                agent: None,
                outcome: "answered".into(),
            },
            Event::AgentStateChanged {
                agent: "a".into(),
                from: "x".into(),
                to: "y".into(),
                why: "z".into(),
            },
            Event::QueueCallerJoined {
                call: 1,
                queue: "q".into(),
                caller: "c".into(),
                position: 1,
            },
            Event::QueueCallerLeft {
                call: 1,
                queue: "q".into(),
                reason: "answered".into(),
            },
            Event::QueueCallerAbandoned {
                call: 1,
                queue: "q".into(),
                waited_secs: 3,
            },
            Event::RecordingStarted {
                call: 1,
                path: "p".into(),
            },
            Event::RecordingPaused {
                call: 1,
                paused: true,
            },
            Event::RecordingCompleted {
                call: 1,
                path: "p".into(),
            },
        ];
        assert_eq!(samples.len(), EVENT_TYPES.len());
        for (event, name) in samples.iter().zip(EVENT_TYPES) {
            let json = serde_json::to_value(event).unwrap();
            assert_eq!(json["type"], *name);
            assert_eq!(event_type(event), *name);
        }
    }

    #[test]
    fn events_are_numbered_dated_and_serialised_flat() {
        let hub = EventHub::default();
        assert_eq!(hub.latest(), 0);
        assert_eq!(hub.publish_at(held(7), t(0)), 1);
        assert_eq!(hub.publish_at(held(8), t(1)), 2);
        assert_eq!(hub.latest(), 2);
        let Backlog::Events(events) = hub.after(0, 10) else {
            panic!("no gap expected")
        };
        let json = serde_json::to_string(&*events[0]).unwrap();
        assert_eq!(
            json,
            r#"{"seq":1,"time":"2023-11-14T22:13:20.000Z","type":"call_held","call":7,"agent":"1001"}"#
        );
        let Backlog::Events(rest) = hub.after(1, 10) else {
            panic!("no gap expected")
        };
        assert_eq!(seqs(&rest), vec![2]);
        assert_eq!(hub.after(2, 10), Backlog::Events(vec![]));
    }

    #[test]
    fn readers_past_the_window_are_told_of_the_gap() {
        let hub = EventHub::new(3, Duration::from_secs(60));
        for i in 0..5 {
            hub.publish_at(held(i), t(i));
        }
        // Count: 3 kept (3, 4, 5).
        match hub.after(0, 10) {
            Backlog::Gap {
                first_available,
                missed,
                events,
            } => {
                assert_eq!((first_available, missed), (3, 2));
                assert_eq!(seqs(&events), vec![3, 4, 5]);
            }
            other => panic!("expected a gap, got {other:?}"),
        }
        let Backlog::Events(e) = hub.after(2, 10) else {
            panic!("2 is just before the oldest kept")
        };
        assert_eq!(seqs(&e), vec![3, 4, 5]);
        // Age: an event 61 s later pushes out everything older than 60 s.
        hub.publish_at(held(9), t(4 + 61));
        assert_eq!(hub.expired(), 5);
        match hub.after(5, 10) {
            Backlog::Gap { events, .. } => panic!("5 was read: {events:?}"),
            Backlog::Events(e) => assert_eq!(seqs(&e), vec![6]),
        }
        // A sequence number from a previous run: all we have, flagged.
        match hub.after(99, 10) {
            Backlog::Gap {
                first_available,
                missed,
                events,
            } => {
                assert_eq!((first_available, missed), (6, 0));
                assert_eq!(seqs(&events), vec![6]);
            }
            other => panic!("expected a gap, got {other:?}"),
        }
        // `max` bounds one read.
        let hub = EventHub::default();
        for i in 0..5 {
            hub.publish_at(held(i), t(0));
        }
        let Backlog::Events(e) = hub.after(1, 2) else {
            panic!()
        };
        assert_eq!(seqs(&e), vec![2, 3]);
    }

    #[test]
    fn events_of_a_call_are_attributed_to_its_agent_until_it_ends() {
        let hub = EventHub::default();
        let publish = |e: Event| hub.publish_at(e, t(0));
        publish(Event::QueueCallerJoined {
            call: 5,
            queue: "sales".into(),
            caller: "+49".into(),
            position: 1,
        });
        publish(Event::CallOffered {
            call: 5,
            agent: "1001".into(),
            queue: "sales".into(),
            caller: "+49".into(),
            waited_secs: 3,
            ivr_choices: "1".into(),
        });
        publish(Event::CallOffered {
            call: 5,
            agent: "1002".into(),
            queue: "sales".into(),
            caller: "+49".into(),
            waited_secs: 20,
            ivr_choices: "1".into(),
        });
        publish(Event::RecordingPaused {
            call: 5,
            paused: true,
        });
        publish(Event::CallTransferred {
            call: 5,
            target: "queue:support".into(),
        });
        publish(Event::CallEnded {
            call: 5,
            agent: None,
            outcome: "answered".into(),
        });
        publish(Event::RecordingCompleted {
            call: 5,
            path: "x".into(),
        });
        let Backlog::Events(events) = hub.after(0, 100) else {
            panic!()
        };
        let agents: Vec<Option<&str>> = events.iter().map(|e| e.agent.as_deref()).collect();
        assert_eq!(
            agents,
            vec![
                None,
                Some("1001"),
                Some("1002"),
                Some("1002"),
                Some("1002"),
                Some("1002"),
                None
            ]
        );
    }
}
