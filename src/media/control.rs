//! The messages between the signalling core and the media workers. The
//! endpoint (sans-IO) emits commands as outputs; the runtime routes each to
//! the worker that owns its session and feeds the workers' events back to
//! the endpoint as inputs.

use std::path::PathBuf;
use std::time::Duration;

use crate::media::ports::PortPair;
use crate::media::record::RecordingMeta;
use crate::media::relay::LegId;
use crate::media::rtp::StatsSummary;
use crate::media::session::{Feed, LegSetup, SessionId};

/// Something for a media worker to do.
#[derive(Debug, Clone)]
pub enum MediaCommand {
    /// Binds `ports` and starts the leg (creating the session for its
    /// first leg).
    OpenLeg {
        session: SessionId,
        leg: LegId,
        ports: PortPair,
        setup: LegSetup,
        feed: Feed,
    },
    /// A re-INVITE changed the leg (hold, resume, new address or codec).
    UpdateLeg {
        session: SessionId,
        leg: LegId,
        setup: LegSetup,
    },
    SetFeed {
        session: SessionId,
        leg: LegId,
        feed: Feed,
    },
    /// A digit to play to the leg as RFC 4733 events.
    SendDigit {
        session: SessionId,
        leg: LegId,
        digit: char,
        duration: Duration,
    },
    /// Starts recording the session into `path` (relative to the
    /// recordings directory).
    StartRecording {
        session: SessionId,
        path: PathBuf,
        meta: RecordingMeta,
    },
    /// Pauses or resumes the recording (card numbers): silence is written
    /// meanwhile and the pause is listed in the metadata.
    PauseRecording { session: SessionId, paused: bool },
    /// The leg's dialog ended: its sockets close and its ports come back
    /// in [`MediaEvent::LegClosed`]. The session ends with its last leg.
    CloseLeg { session: SessionId, leg: LegId },
}

impl MediaCommand {
    pub fn session(&self) -> SessionId {
        match self {
            MediaCommand::OpenLeg { session, .. }
            | MediaCommand::UpdateLeg { session, .. }
            | MediaCommand::SetFeed { session, .. }
            | MediaCommand::SendDigit { session, .. }
            | MediaCommand::StartRecording { session, .. }
            | MediaCommand::PauseRecording { session, .. }
            | MediaCommand::CloseLeg { session, .. } => *session,
        }
    }
}

/// What a leg's media looked like, reported when it closes.
#[derive(Debug, Clone, PartialEq)]
pub struct LegReport {
    /// RTP statistics of the leg's latest source (RFC 3550 A.1/A.3/A.8).
    pub stats: StatsSummary,
    /// Packets accepted from the leg, whatever their source (a phone
    /// changes SSRC when it plays DTMF from another source, for example).
    pub packets_received: u64,
    /// Packets we sent to the leg.
    pub packets_sent: u64,
}

/// Something a media worker tells the signalling core.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    Digit {
        session: SessionId,
        leg: LegId,
        digit: char,
        duration_ms: u32,
    },
    /// The leg stopped sending RTP (a dead phone, a lost network).
    Dead {
        session: SessionId,
        leg: LegId,
    },
    PlaybackDone {
        session: SessionId,
        leg: LegId,
    },
    /// The leg's ports could not be bound (taken by another program).
    OpenFailed {
        session: SessionId,
        leg: LegId,
        ports: PortPair,
        reason: String,
    },
    /// The leg's sockets are closed and its ports free again.
    LegClosed {
        session: SessionId,
        leg: LegId,
        ports: PortPair,
        report: LegReport,
    },
}
