//! First layer: the file as written.
//!
//! These structs mirror the TOML one to one. Every field is optional here so
//! that defaults live in one place (the validation pass), and every table
//! denies unknown keys so that a misspelt key is an error instead of a silently
//! ignored setting. Only TOML-level types, enums and socket addresses are
//! checked by serde; everything that needs a rule or another key is left to
//! `validate`.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{DialPermission, DigestAlgorithm, LogFormat, Transport};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub sip: RawSip,
    #[serde(default)]
    pub registrar: RawRegistrar,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub agents: Vec<RawAgent>,
    #[serde(default)]
    pub trunks: Vec<RawTrunk>,
    #[serde(default)]
    pub queues: Vec<RawQueue>,
    #[serde(default)]
    pub ivr: Vec<RawIvr>,
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub media: RawMedia,
    #[serde(default)]
    pub recording: RawRecording,
    #[serde(default)]
    pub test_extensions: Vec<RawTestExtension>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMedia {
    pub address: Option<std::net::IpAddr>,
    pub rtp_port_min: Option<u16>,
    pub rtp_port_max: Option<u16>,
    pub codecs: Option<Vec<String>>,
    pub dead_after_secs: Option<u64>,
    pub workers: Option<usize>,
    pub realtime: Option<bool>,
    pub sounds_dir: Option<String>,
    pub hold_music: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecording {
    pub dir: Option<String>,
    pub retention_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTestExtension {
    pub extension: String,
    pub action: super::TestActionKind,
    pub prompt: Option<String>,
    #[serde(default)]
    pub record: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub level: Option<String>,
    pub format: Option<LogFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSip {
    pub domain: Option<String>,
    pub listen: Option<Vec<RawListen>>,
    pub max_message_size: Option<u64>,
    pub tcp_idle_timeout_secs: Option<u64>,
    pub user_agent: Option<String>,
    #[serde(default)]
    pub timers: RawTimers,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListen {
    pub transport: Transport,
    pub address: SocketAddr,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimers {
    pub t1_ms: Option<u64>,
    pub t2_ms: Option<u64>,
    pub t4_ms: Option<u64>,
}

/// Expires values are `u32` because RFC 3261 §20.19 bounds the Expires header
/// to 2**32-1 seconds; a larger value is rejected with its key path by serde.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistrar {
    pub min_expires: Option<u32>,
    pub max_expires: Option<u32>,
    pub default_expires: Option<u32>,
    pub max_contacts_per_agent: Option<u32>,
    pub qualify_interval_secs: Option<u64>,
    pub qualify_failures: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub realm: Option<String>,
    pub algorithms: Option<Vec<DigestAlgorithm>>,
    pub nonce_ttl_secs: Option<u64>,
    pub max_failures: Option<u32>,
    pub failure_window_secs: Option<u64>,
    pub block_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub id: String,
    pub password: String,
    pub display_name: Option<String>,
    pub dial_permissions: Option<Vec<DialPermission>>,
    pub handoff: Option<super::Handoff>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrunk {
    pub name: String,
    pub peer: SocketAddr,
    pub transport: Option<Transport>,
    pub sources: Option<Vec<String>>,
    pub dids: Option<Vec<String>>,
    pub caller_id: Option<String>,
    pub register: Option<RawTrunkRegister>,
    pub auth: Option<RawTrunkAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrunkAuth {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrunkRegister {
    pub username: String,
    pub password: String,
    pub registrar: Option<String>,
    pub expires_secs: Option<u32>,
    pub auth_username: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    pub name: String,
    pub extension: Option<String>,
    pub dids: Option<Vec<String>>,
    pub agents: Option<Vec<String>>,
    pub strategy: Option<crate::call::acd::Strategy>,
    pub penalties: Option<std::collections::BTreeMap<String, u32>>,
    pub ring_timeout_secs: Option<u64>,
    pub wrap_up_secs: Option<u64>,
    pub max_wait_secs: Option<u64>,
    pub max_callers: Option<usize>,
    pub join_empty: Option<bool>,
    pub leave_when_empty: Option<bool>,
    pub greeting: Option<String>,
    pub music: Option<String>,
    pub announce_every_secs: Option<u64>,
    pub announce_position: Option<bool>,
    pub announce_wait: Option<bool>,
    pub record: Option<bool>,
    pub overflow: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIvr {
    pub name: String,
    pub extension: Option<String>,
    pub dids: Option<Vec<String>>,
    pub prompt: String,
    pub timeout_secs: Option<u64>,
    pub max_attempts: Option<u32>,
    pub invalid_prompt: Option<String>,
    pub options: Option<std::collections::BTreeMap<String, String>>,
    pub default: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub tokens: Vec<RawApiToken>,
    pub service_level_secs: Option<u64>,
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub url: String,
    pub secret: String,
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiToken {
    pub token: String,
    pub role: ApiRoleName,
    pub agent: Option<String>,
}

/// The role names accepted in `api.tokens[].role`. The typed `ApiRole` carries
/// the agent id inside its `Agent` variant, so the bare name lives only here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ApiRoleName {
    Admin,
    Supervisor,
    Qa,
    Agent,
}
