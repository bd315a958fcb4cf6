//! Scheduling hints for the threads the gateway owns.
//!
//! The media workers must wake on time every 20 ms even when the machine is
//! busy (a late tick is a late prompt frame and a late recording frame) and
//! relay each packet as it arrives: they run under SCHED_FIFO
//! ([`media_thread`]; `media.realtime`). The signalling thread is urgent
//! too, in milliseconds rather than microseconds (a caller retransmits an
//! INVITE that waits half a second for its answer): nice −11. Both need
//! CAP_SYS_NICE, as root has. The store writer only
//! needs to keep up on average (its queue absorbs seconds): SCHED_BATCH at
//! nice 9. The recording writer stays at the default: its work is as large
//! as the relay's (every call's audio) and a starved recorder would drop
//! audio. Without the privilege the threads keep the default priority;
//! that is logged, not an error.

use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
    RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
};
use tracing::{debug, info};

/// The crate maps 0..=99 onto nice 19..=-20: 75 is nice -11, 25 is nice 9.
const URGENT: u8 = 75;
const BACKGROUND: u8 = 25;

fn set(value: u8, policy: ThreadSchedulePolicy) -> Result<(), String> {
    let priority = ThreadPriorityValue::try_from(value).map_err(|e| e.to_string())?;
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(priority),
        policy,
    )
    .map_err(|e| format!("{e:?}"))
}

/// For a media worker or the signalling thread, called from the thread
/// itself.
pub fn urgent_thread(role: &str) {
    match set(
        URGENT,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
    ) {
        Ok(()) => debug!(role, "thread at raised priority"),
        Err(e) => info!(role, error = %e, "thread keeps the default priority (no CAP_SYS_NICE)"),
    }
}

/// SCHED_FIFO priority of the media workers: above every normal thread,
/// low among real-time ones (kernel threads and audio servers sit higher).
const MEDIA_FIFO_PRIORITY: u8 = 10;

/// For a media worker, called from the thread itself: SCHED_FIFO when
/// `realtime` and the process may, else as [`urgent_thread`]. Why: under
/// the normal policy a runnable recording writer or API thread can hold
/// the core for a scheduler slice (milliseconds) while packets wait; a
/// real-time thread runs the moment a packet arrives or the 20 ms clock
/// fires. The workers sleep in `epoll_wait` whenever there is nothing to
/// do, and the kernel's real-time throttling leaves the other threads their
/// share if the media ever saturates a core.
pub fn media_thread(realtime: bool) {
    if realtime {
        let fifo = set(
            MEDIA_FIFO_PRIORITY,
            ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
        );
        match fifo {
            Ok(()) => {
                debug!("media worker under SCHED_FIFO");
                return;
            }
            Err(e) => info!(error = %e, "media worker not real-time (no CAP_SYS_NICE)"),
        }
    }
    urgent_thread("media worker");
}

/// For a thread that writes a little behind a queue (the store).
pub fn background_thread() {
    if let Err(e) = set(
        BACKGROUND,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    ) {
        debug!(error = %e, "background thread keeps its priority");
    }
}

/// Sockets a call holds: RTP and RTCP on each of its two legs.
const SOCKETS_PER_CALL: u64 = 4;
/// Descriptors kept for everything else (SIP sockets, TCP connections,
/// the store, recordings being written).
const RESERVED_FILES: u64 = 256;

/// Raises the open-file limit to the most the system allows: each call
/// holds four sockets, and the common default of 1024 would cap the
/// gateway at about 200 calls, failing the next ones after their answer.
/// Returns the limit and the calls it allows, which are logged.
pub fn raise_open_file_limit() -> Option<(u64, u64)> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let calls = limit.saturating_sub(RESERVED_FILES) / SOCKETS_PER_CALL;
            info!(
                open_files = limit,
                calls, "open-file limit (calls it allows)"
            );
            Some((limit, calls))
        }
        Err(e) => {
            info!(error = %e, "open-file limit unchanged");
            None
        }
    }
}
