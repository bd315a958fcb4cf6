//! The media engine's sans-IO cores (issue 3, landing in increments): SDP
//! offer/answer, RTP/RTCP, codecs, jitter buffer, DTMF. Like the SIP cores
//! they own no sockets and read no clock; the runtime's media workers will
//! pump them.
pub mod codec;
pub mod control;
pub mod dtmf;
pub mod jitter;
pub mod pacer;
pub mod player;
pub mod ports;
pub mod record;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod wav;
