//! Queue configuration and the per-queue runtime: the ordered list of waiting
//! callers, the round-robin cursor, answered-call counts and recent waits.

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::config::{self, AgentId, QueueName};

use super::CallId;

/// How a queue picks among the free members of its best tier (in the
/// configuration file: `"longest-idle"`, `"round-robin"`, `"fewest-calls"`,
/// `"ring-all"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The member available for the longest time.
    #[default]
    LongestIdle,
    /// Members in turn, in the order they are listed, resuming after the
    /// last one offered a call.
    RoundRobin,
    /// The member who answered the fewest calls from this queue (ties: the
    /// longest idle).
    FewestCalls,
    /// Every free member of the tier at once; the first to answer wins.
    RingAll,
}

/// A queue member and its penalty (skill level): members with a lower
/// penalty are offered calls first; a higher tier is used only when nobody
/// of a lower one is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub agent: AgentId,
    pub penalty: u32,
}

/// One queue's routing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: QueueName,
    pub strategy: Strategy,
    pub members: Vec<Member>,
    /// How long an agent's phone rings before the call moves on.
    pub ring_timeout: Duration,
    /// After-call work time before the agent is offered the next call.
    pub wrap_up: Duration,
    /// A caller waiting longer overflows (`None`: no limit).
    pub max_wait: Option<Duration>,
    /// A caller arriving when this many are waiting overflows (`None`: no
    /// limit).
    pub max_len: Option<usize>,
    /// Accept callers when no member is logged in.
    pub join_empty: bool,
    /// Overflow the waiting callers when the last member logs out.
    pub leave_when_empty: bool,
}

/// How long an agent's phone rings unless the queue says otherwise.
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(15);
/// After-call work time unless the queue says otherwise.
pub const DEFAULT_WRAP_UP: Duration = Duration::from_secs(10);

impl QueueConfig {
    /// A queue with the defaults a call centre usually starts from:
    /// longest-idle, 15 s ring, 10 s wrap-up, no limits, callers may wait for
    /// agents to log in.
    pub fn new(name: QueueName) -> Self {
        Self {
            name,
            strategy: Strategy::default(),
            members: Vec::new(),
            ring_timeout: DEFAULT_RING_TIMEOUT,
            wrap_up: DEFAULT_WRAP_UP,
            max_wait: None,
            max_len: None,
            join_empty: true,
            leave_when_empty: false,
        }
    }
}

impl From<&config::Queue> for QueueConfig {
    /// A `[[queues]]` table as validated (its defaults are this module's).
    fn from(queue: &config::Queue) -> Self {
        QueueConfig {
            name: queue.name.clone(),
            strategy: queue.strategy,
            members: queue
                .agents
                .iter()
                .map(|agent| Member {
                    agent: agent.clone(),
                    penalty: queue.penalties.get(agent).copied().unwrap_or(0),
                })
                .collect(),
            ring_timeout: queue.ring_timeout,
            wrap_up: queue.wrap_up,
            max_wait: queue.max_wait,
            max_len: queue.max_callers,
            join_empty: queue.join_empty,
            leave_when_empty: queue.leave_when_empty,
        }
    }
}

/// Ordering key of a waiting caller: higher priority first, then arrival.
pub(super) type WaitKey = (Reverse<i32>, u64);

#[derive(Debug)]
pub(super) struct Queue {
    pub(super) config: QueueConfig,
    /// `(index into the ACD's agents, penalty)`, in configuration order.
    pub(super) members: Vec<(usize, u32)>,
    /// Waiting callers, sorted by [`WaitKey`].
    pub(super) waiting: Vec<(WaitKey, CallId)>,
    /// Position in `members` of the last member offered a call.
    pub(super) rr_last: Option<usize>,
    /// Calls answered from this queue, per agent index.
    pub(super) answered: HashMap<usize, u64>,
    /// The most recent waits of answered callers.
    waits: VecDeque<Duration>,
    wait_samples: usize,
}

impl Queue {
    pub(super) fn new(config: QueueConfig, members: Vec<(usize, u32)>, samples: usize) -> Self {
        Self {
            config,
            members,
            waiting: Vec::new(),
            rr_last: None,
            answered: HashMap::new(),
            waits: VecDeque::with_capacity(samples),
            wait_samples: samples.max(1),
        }
    }

    pub(super) fn insert(&mut self, key: WaitKey, call: CallId) {
        let at = self.waiting.partition_point(|(k, _)| *k < key);
        self.waiting.insert(at, (key, call));
    }

    pub(super) fn remove(&mut self, call: CallId) {
        self.waiting.retain(|(_, c)| *c != call);
    }

    /// 1-based position of a waiting caller.
    pub(super) fn position(&self, call: CallId) -> Option<usize> {
        self.waiting
            .iter()
            .position(|(_, c)| *c == call)
            .map(|i| i + 1)
    }

    pub(super) fn record_wait(&mut self, waited: Duration) {
        if self.waits.len() == self.wait_samples {
            self.waits.pop_front();
        }
        self.waits.push_back(waited);
    }

    /// Moving average of the recent waits; `None` before the first answer.
    pub(super) fn average_wait(&self) -> Option<Duration> {
        let n = u32::try_from(self.waits.len()).ok().filter(|n| *n > 0)?;
        Some(self.waits.iter().sum::<Duration>() / n)
    }
}
