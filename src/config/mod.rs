//! Configuration: a TOML file loaded and validated once at start.
//!
//! Loading happens in two layers. The `raw` layer deserialises the file as
//! written, with unknown keys denied and every serde error tagged with the key
//! path (via `serde_path_to_error`). The validation pass then applies defaults,
//! checks the rules of each key and the rules between keys, and produces the
//! typed [`Config`] below (socket addresses, [`Duration`]s, enums, newtypes).
//! Every error names the key it is about, as `sip.listen[1].address` (array
//! indexes count from 0), so an operator can find it in the file.
//!
//! Every key and its default is documented in `docs/configuration.md`.

mod raw;
mod routing;
mod types;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use routing::{DialPlan, PromptName, PromptNameError, Route, RouteError};
pub use types::{
    AgentId, Did, DidError, Extension, FeatureCode, IpNetwork, IpNetworkError, IvrName, NameError,
    QueueName, Secret, TrunkName, MAX_DID_DIGITS, MAX_NAME_LEN,
};

/// Default path of the configuration file, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/switchboard.toml";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, a value has the wrong type or form, or a
    /// key is unknown. `key` is the dotted key path, empty when the error is
    /// about the document itself (broken TOML syntax).
    #[error("{}: {}", path.display(), key_message(key, message))]
    Syntax {
        /// The file (or origin given to [`Config::from_toml_str`]).
        path: PathBuf,
        /// Dotted key path such as `sip.listen[1].address`.
        key: String,
        /// What is wrong, with the line and column when known.
        message: String,
    },
    /// The file parsed but a value breaks a rule.
    #[error("{key}: {reason}")]
    Invalid {
        /// Dotted key path such as `registrar.min_expires`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

fn key_message(key: &str, message: &str) -> String {
    if key.is_empty() {
        message.to_owned()
    } else {
        format!("{key}: {message}")
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[log]`: logging.
    pub log: LogConfig,
    /// `[sip]`: SIP transport and protocol settings.
    pub sip: SipConfig,
    /// `[registrar]`: registration policy.
    pub registrar: RegistrarConfig,
    /// `[auth]`: digest authentication and brute-force protection.
    pub auth: AuthConfig,
    /// `[storage]`: the embedded database.
    pub storage: StorageConfig,
    /// `[[agents]]`: the call-centre agents, in file order.
    pub agents: Vec<Agent>,
    /// `[[trunks]]`: carrier connections, in file order.
    pub trunks: Vec<Trunk>,
    /// `[[queues]]`: call queues, in file order.
    pub queues: Vec<Queue>,
    /// `[[ivr]]`: IVR menus, in file order.
    pub ivr: Vec<IvrMenu>,
    /// Where each agent id, extension and DID goes; derived from `agents`,
    /// `queues` and `ivr` (see [`Config::route_for`]).
    pub dial_plan: DialPlan,
    /// `[media]`: RTP ports, codecs, media threads, sounds.
    pub media: MediaConfig,
    /// `[recording]`: where call recordings go.
    pub recording: RecordingConfig,
    /// `[[test_extensions]]`: echo, prompt and pair numbers for checking audio.
    pub test_extensions: Vec<TestExtension>,
    /// `[api]`: the HTTP management API.
    pub api: ApiConfig,
}

impl Config {
    /// Reads, parses and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates configuration text. `origin` names where the text
    /// came from in syntax errors; it is not read.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        let raw: raw::RawConfig = serde_path_to_error::deserialize(deserializer)
            .map_err(|err| syntax_error(err, text, origin))?;
        validate::validate(raw)
    }

    /// The agent with this id, if configured.
    pub fn agent(&self, id: &AgentId) -> Option<&Agent> {
        self.agents.iter().find(|a| &a.id == id)
    }

    /// The trunk a request from `source` comes from, if any: its exact
    /// `peer` address, or an IP in its `sources`; the first in file order
    /// wins when several overlap.
    pub fn trunk_for_source(&self, source: std::net::SocketAddr) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.is_source(source))
    }

    /// The queue with this name, if configured.
    pub fn queue(&self, name: &QueueName) -> Option<&Queue> {
        self.queues.iter().find(|q| &q.name == name)
    }

    /// The IVR menu with this name, if configured.
    pub fn ivr_menu(&self, name: &IvrName) -> Option<&IvrMenu> {
        self.ivr.iter().find(|m| &m.name == name)
    }

    /// Where a call to `dialled` (the Request-URI user part) goes: an agent
    /// id, a queue or IVR extension, or a queue or IVR DID (with or without
    /// its leading `+`). `None`: nothing here answers that number.
    pub fn route_for(&self, dialled: &str) -> Option<Route> {
        self.dial_plan.route(dialled)
    }

    /// Every prompt file the configuration can play, each once: test
    /// extension prompts, `media.hold_music`, each queue's
    /// greeting, music and overflow message, the announcement sounds (when
    /// a queue announces), and each IVR's prompts and messages. The server
    /// loads them all at start, so a call never waits on the disk and a
    /// missing file stops the start instead of a call.
    pub fn prompt_paths(&self) -> Vec<PathBuf> {
        let dir = &self.media.sounds_dir;
        let mut paths: Vec<PathBuf> = Vec::new();
        let mut add = |path: PathBuf| {
            if !paths.contains(&path) {
                paths.push(path);
            }
        };
        for t in &self.test_extensions {
            if let TestAction::Prompt(path) = &t.action {
                add(path.clone());
            }
        }
        add(self.media.hold_music.path(dir));
        let message = |route: &Route| match route {
            Route::Message(prompt) => Some(prompt.path(dir)),
            _ => None,
        };
        for q in &self.queues {
            if let Some(greeting) = &q.greeting {
                add(greeting.path(dir));
            }
            add(q.music.path(dir));
            message(&q.overflow).into_iter().for_each(&mut add);
        }
        if self.queues.iter().any(|q| q.announce_every.is_some()) {
            for name in crate::call::announce::AnnouncementPrompts::names() {
                add(dir.join(format!("{name}.wav")));
            }
        }
        for m in &self.ivr {
            add(m.prompt.path(dir));
            if let Some(invalid) = &m.invalid_prompt {
                add(invalid.path(dir));
            }
            for route in m.options.values().chain([&m.default]) {
                message(route).into_iter().for_each(&mut add);
            }
        }
        paths
    }

    /// A one-line human summary, as printed by `switchboard check-config`.
    pub fn summary(&self) -> String {
        let listen: Vec<String> = self
            .sip
            .listen
            .iter()
            .map(|l| format!("{} {}", l.transport, l.address))
            .collect();
        format!(
            "SIP domain {} on {}; {} agent(s), {} trunk(s), {} queue(s), {} IVR menu(s); API on {} with {} token(s)",
            self.sip.domain,
            listen.join(", "),
            self.agents.len(),
            self.trunks.len(),
            self.queues.len(),
            self.ivr.len(),
            self.api.listen,
            self.api.tokens.len(),
        )
    }
}

/// Turns a path-tagged serde error into [`ConfigError::Syntax`], adding the
/// line and column toml reports so the operator can find keys that appear in
/// several places (array elements).
fn syntax_error(
    err: serde_path_to_error::Error<toml::de::Error>,
    text: &str,
    origin: &Path,
) -> ConfigError {
    // serde_path_to_error renders the empty path as ".".
    let mut key = err.path().to_string();
    if key == "." {
        key.clear();
    }
    let inner = err.inner();
    // toml's parser messages span lines ("invalid table header\nexpected ...");
    // keep the error on one line for logs.
    let mut message = inner
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    // serde reports a missing field against the table holding it; point at
    // the field itself, as for every other error.
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field.to_owned())
    {
        key = if key.is_empty() {
            field
        } else {
            format!("{key}.{field}")
        };
    }
    if let Some(span) = inner.span() {
        let (line, column) = line_column(text, span.start);
        message.push_str(&format!(" (line {line}, column {column})"));
    }
    ConfigError::Syntax {
        path: origin.to_owned(),
        key,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `log.level`: a tracing `EnvFilter` directive such as `info` or
    /// `switchboard=debug,warn`; already checked to parse. Overridden by the
    /// `RUST_LOG` environment variable when that is set.
    pub level: String,
    /// `log.format`: how log lines are written.
    pub format: LogFormat,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[sip]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// `sip.domain`: the domain this server is authoritative for; agents
    /// register as `sip:<id>@<domain>`.
    pub domain: String,
    /// `sip.listen`: the sockets to listen on; never empty, no duplicates.
    pub listen: Vec<ListenAddr>,
    /// `sip.max_message_size`: largest SIP message accepted, in bytes.
    pub max_message_size: usize,
    /// `sip.tcp_idle_timeout_secs`: a TCP connection with no traffic for this
    /// long is closed.
    pub tcp_idle_timeout: Duration,
    /// `sip.user_agent`: sent in User-Agent and Server headers.
    pub user_agent: String,
    /// `[sip.timers]`: transaction timers.
    pub timers: SipTimers,
}

/// One entry of `sip.listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    /// `transport`.
    pub transport: Transport,
    /// `address`: IP and port; port 0 asks the OS for a free port.
    pub address: SocketAddr,
}

/// A SIP transport protocol: the transport layer's own type, named in
/// lower case in the file (`"udp"`, `"tcp"`).
pub use crate::sip::transport::Transport;

/// `[sip.timers]`: the RFC 3261 §17 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipTimers {
    /// `t1_ms`: RTT estimate; retransmission base (RFC 3261 §17.1.1.1).
    pub t1: Duration,
    /// `t2_ms`: maximum retransmission interval for non-INVITE requests and
    /// INVITE responses; always greater than `t1`.
    pub t2: Duration,
    /// `t4_ms`: maximum time a message stays in the network.
    pub t4: Duration,
}

/// `[registrar]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// `registrar.min_expires`: shorter requested expirations get
    /// 423 Interval Too Brief (RFC 3261 §10.3 step 7).
    pub min_expires: Duration,
    /// `registrar.max_expires`: longer requested expirations are shortened.
    pub max_expires: Duration,
    /// `registrar.default_expires`: used when the REGISTER names no
    /// expiration; between `min_expires` and `max_expires`.
    pub default_expires: Duration,
    /// `registrar.max_contacts_per_agent`: bindings one agent may hold.
    pub max_contacts_per_agent: usize,
    /// `registrar.qualify_interval_secs`: how often each contact is probed
    /// with OPTIONS; `None` when qualify is disabled (configured as 0).
    pub qualify_interval: Option<Duration>,
    /// `registrar.qualify_failures`: consecutive unanswered OPTIONS after
    /// which a contact is marked unreachable.
    pub qualify_failures: u32,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `auth.realm`: the digest realm (RFC 3261 §22.1).
    pub realm: String,
    /// `auth.algorithms`: challenge algorithms in the order offered; never
    /// empty, no duplicates.
    pub algorithms: Vec<DigestAlgorithm>,
    /// `auth.nonce_ttl_secs`: how long a nonce is accepted.
    pub nonce_ttl: Duration,
    /// `auth.max_failures`: failed attempts from one source within
    /// `failure_window` before it is blocked.
    pub max_failures: u32,
    /// `auth.failure_window_secs`.
    pub failure_window: Duration,
    /// `auth.block_secs`: how long a blocked source stays blocked.
    pub block_duration: Duration,
}

/// A digest algorithm (RFC 8760): the authentication module's own type,
/// spelt in the file exactly as in headers (`"MD5"`, `"SHA-256"`).
pub use crate::sip::auth::Algorithm as DigestAlgorithm;

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// `storage.path`: the SQLite database file; a relative path is relative
    /// to the process's working directory.
    pub path: PathBuf,
}

/// One `[[agents]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// `id`: SIP user name and extension; unique.
    pub id: AgentId,
    /// `password`: digest password; never empty.
    pub password: Secret,
    /// `display_name`.
    pub display_name: Option<String>,
    /// `dial_permissions`: which kinds of numbers the agent may call; no
    /// duplicates.
    pub dial_permissions: Vec<DialPermission>,
    pub handoff: Handoff,
}

/// How the ACD's offers reach an agent (`agents[].handoff`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Handoff {
    /// The agent's registered phone rings.
    #[default]
    Phone,
    /// The offer is published on the agent's event stream; the agent's
    /// desktop accepts (then the phone rings) or rejects it over the API.
    Api,
}

impl Agent {
    /// Whether the agent may place calls of this kind.
    pub fn may_dial(&self, permission: DialPermission) -> bool {
        self.dial_permissions.contains(&permission)
    }
}

/// A class of destination an agent may dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DialPermission {
    /// Agents and queue extensions of this server.
    Internal,
    /// Numbers in the national numbering plan, through a trunk.
    National,
    /// International numbers, through a trunk.
    International,
}

/// One `[[trunks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    /// `name`; unique.
    pub name: TrunkName,
    /// `peer`: where requests to the carrier are sent.
    pub peer: SocketAddr,
    /// `transport` used towards `peer`.
    pub transport: Transport,
    /// `sources`: requests from these networks (besides the exact `peer`
    /// address) are trusted as coming from
    /// this trunk (no digest challenge). Defaults to the peer's address.
    pub sources: Vec<IpNetwork>,
    /// `dids`: numbers the carrier delivers on this trunk.
    pub dids: Vec<Did>,
    /// `caller_id`: number presented on outgoing calls, if set.
    pub caller_id: Option<Did>,
    /// `[trunks.register]`: registration towards the carrier, if any.
    pub register: Option<TrunkRegistration>,
    /// `[trunks.auth]`: credentials for the carrier's challenges (401/407)
    /// to our calls; the registration's when only `[trunks.register]` is
    /// configured; none (a challenged call fails) when neither is.
    pub auth: Option<TrunkAuth>,
}

/// Digest credentials the carrier asks for on our calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkAuth {
    /// `username`: digest user name.
    pub username: String,
    /// `password`: digest password.
    pub password: Secret,
}

impl Trunk {
    /// Requests from the peer's exact address (IP and port) are the
    /// carrier's; `sources` widens that to whole networks. The port matters:
    /// on a shared host (the loopback demo) agents send from the same IP.
    pub fn is_source(&self, source: std::net::SocketAddr) -> bool {
        self.peer == source || self.sources.iter().any(|net| net.contains(source.ip()))
    }
}

/// `[trunks.register]`: this server registers with the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkRegistration {
    /// `username`: user part of the registered address-of-record.
    pub username: String,
    /// `password`: digest password.
    pub password: Secret,
    /// `registrar`: Request-URI of the REGISTER, a `sip:` or `sips:` URI.
    pub registrar: String,
    /// `expires_secs`: requested registration lifetime.
    pub expires: Duration,
    /// `auth_username`: digest user name; `username` when not configured.
    pub auth_username: String,
}

/// One `[[queues]]` entry.
/// Calls routed to one agent (`agent:<id>` in the dial plan, a menu or an
/// overflow) wait in that agent's own queue, `agent.<id>`, so that the ACD
/// stays the one owner of agent state: such a call rings the agent only when
/// available, and follows the same ring, wrap-up and record rules.
pub const PERSONAL_QUEUE_PREFIX: &str = "agent.";

impl Queue {
    /// The own queue of `agent`: ring-all over that agent alone, no one
    /// joins it while the agent is logged out, and callers waiting longer
    /// than a minute hear `overflow_message` (then our BYE). `None` for an
    /// id too long to name a queue.
    pub fn personal(
        agent: &AgentId,
        music: PromptName,
        overflow_message: PromptName,
    ) -> Option<Queue> {
        let name = format!("{PERSONAL_QUEUE_PREFIX}{agent}").parse().ok()?;
        Some(Queue {
            name,
            extension: None,
            dids: Vec::new(),
            agents: vec![agent.clone()],
            strategy: crate::call::acd::Strategy::RingAll,
            penalties: std::collections::HashMap::new(),
            ring_timeout: crate::call::acd::DEFAULT_RING_TIMEOUT,
            wrap_up: crate::call::acd::DEFAULT_WRAP_UP,
            max_wait: Some(Duration::from_secs(60)),
            max_callers: None,
            join_empty: false,
            leave_when_empty: true,
            greeting: None,
            music,
            announce_every: None,
            announce_position: false,
            announce_wait: false,
            record: true,
            overflow: Route::Message(overflow_message),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// `name`; unique.
    pub name: QueueName,
    /// `extension`: internal number agents dial to reach the queue.
    pub extension: Option<Extension>,
    /// `dids`: inbound numbers routed to this queue.
    pub dids: Vec<Did>,
    /// `agents`: members, each a configured agent; no duplicates.
    pub agents: Vec<AgentId>,
    /// `strategy`: how a free member is picked.
    pub strategy: crate::call::acd::Strategy,
    /// `penalties`: members' skill tiers (absent: 0, the first tier).
    pub penalties: std::collections::HashMap<AgentId, u32>,
    /// `ring_timeout_secs`.
    pub ring_timeout: Duration,
    /// `wrap_up_secs`.
    pub wrap_up: Duration,
    /// `max_wait_secs` (`None`: no limit).
    pub max_wait: Option<Duration>,
    /// `max_callers` (`None`: no limit).
    pub max_callers: Option<usize>,
    /// `join_empty`.
    pub join_empty: bool,
    /// `leave_when_empty`.
    pub leave_when_empty: bool,
    /// `greeting`: played once when the caller enters (`None`: configured
    /// as `""`).
    pub greeting: Option<PromptName>,
    /// `music`: looped while the caller waits.
    pub music: PromptName,
    /// `announce_every_secs`: how often the music is interrupted to tell
    /// the caller's position and wait (`None`: configured as 0, never).
    pub announce_every: Option<Duration>,
    /// `announce_position`: announcements say the position.
    pub announce_position: bool,
    /// `announce_wait`: announcements say the estimated wait (once the
    /// queue has one).
    pub announce_wait: bool,
    /// `record`: calls answered from this queue are recorded.
    pub record: bool,
    /// `overflow`: where a caller goes when the ACD overflows it (queue
    /// full, waited too long, no agents); never the queue itself.
    pub overflow: Route,
}

/// One `[[ivr]]` entry: a menu of single-key choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrMenu {
    /// `name`; unique among menus.
    pub name: IvrName,
    /// `extension`: internal number that reaches the menu.
    pub extension: Option<Extension>,
    /// `dids`: inbound numbers that reach the menu.
    pub dids: Vec<Did>,
    /// `prompt`: the menu, played on entry and after each failed attempt.
    pub prompt: PromptName,
    /// `timeout_secs`: how long to wait for a key after the prompt ends.
    pub timeout: Duration,
    /// `max_attempts`: failed attempts (timeout or invalid key) before
    /// `default` is taken; at least 1.
    pub max_attempts: u32,
    /// `invalid_prompt`: played after a key that is not an option, before
    /// the menu again.
    pub invalid_prompt: Option<PromptName>,
    /// `options`: key (`0`-`9`, `*`, `#`) to route; never empty.
    pub options: std::collections::BTreeMap<char, Route>,
    /// `default`: taken after `max_attempts` failed attempts.
    pub default: Route,
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// `api.listen`: address of the HTTP API.
    pub listen: SocketAddr,
    /// `[[api.tokens]]`: bearer tokens and their roles; tokens are unique.
    pub tokens: Vec<ApiToken>,
    /// `api.service_level_secs`: calls answered within this long of
    /// queueing count towards the reports' service level.
    pub service_level: Duration,
    /// `[[api.webhooks]]`: where events are POSTed.
    pub webhooks: Vec<Webhook>,
}

/// One `[[api.webhooks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `url`: an `http://` URL.
    pub url: WebhookUrl,
    /// `secret`: the HMAC-SHA256 key of the signature header.
    pub secret: Secret,
    /// `events`: the event types to send; empty for all.
    pub events: Vec<String>,
}

/// An `http://host[:port][/path]` URL, split for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// A name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The path and query, at least `/`.
    pub path: String,
}

/// Why a webhook URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    #[error("only http:// URLs are supported (put a TLS-terminating proxy in front of an https receiver)")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("user information in the URL is not supported")]
    UserInfo,
    #[error("invalid port {0:?}")]
    Port(String),
    #[error("the URL contains spaces or control characters")]
    Characters,
}

impl std::str::FromStr for WebhookUrl {
    type Err = WebhookUrlError;

    /// RFC 3986 §3: `http://` authority path-abempty [ "?" query ]; a
    /// fragment is dropped (it is never sent).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(WebhookUrlError::Characters);
        }
        let rest = text
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("http://"))
            .map(|_| &text[7..])
            .ok_or(WebhookUrlError::Scheme)?;
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(WebhookUrlError::UserInfo);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(WebhookUrlError::NoHost)?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(WebhookUrlError::NoHost);
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| WebhookUrlError::Port(p.to_owned()))?,
        };
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(WebhookUrl {
            host: host.to_owned(),
            port,
            path,
        })
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "http://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// One `[[api.tokens]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// `token`: the bearer token; never empty.
    pub token: Secret,
    /// `role` (and `agent` for the agent role).
    pub role: ApiRole,
}

/// What an API token may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiRole {
    /// Everything.
    Admin,
    /// Watch and steer queues and calls.
    Supervisor,
    /// Read call records and recordings for quality assurance.
    Qa,
    /// Act as this one agent.
    Agent(AgentId),
}

impl ApiRole {
    /// The role name as written in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            ApiRole::Admin => "admin",
            ApiRole::Supervisor => "supervisor",
            ApiRole::Qa => "qa",
            ApiRole::Agent(_) => "agent",
        }
    }
}

#[cfg(test)]
mod tests;

/// `[media]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaConfig {
    /// `media.address`: where RTP sockets bind, and the address in our SDP.
    pub address: std::net::IpAddr,
    /// `media.rtp_port_min` ..= `media.rtp_port_max`: RTP/RTCP port pairs.
    pub rtp_ports: std::ops::RangeInclusive<u16>,
    /// `media.codecs`: what we answer with, in preference order.
    pub codecs: Vec<crate::media::sdp::Codec>,
    /// `media.dead_after_secs`: RTP silence before a call is hung up
    /// (`None`: never).
    pub dead_after: Option<Duration>,
    /// `media.workers`: media threads (0: one per core).
    pub workers: usize,
    /// `media.realtime`: media threads under SCHED_FIFO when allowed.
    pub realtime: bool,
    /// `media.sounds_dir`: where prompt names are looked up.
    pub sounds_dir: PathBuf,
    /// `media.hold_music`: what a caller hears while the agent holds.
    pub hold_music: PromptName,
}

impl MediaConfig {
    /// The file a prompt name stands for (a key of the loaded prompts).
    pub fn prompt_path(&self, prompt: &PromptName) -> PathBuf {
        prompt.path(&self.sounds_dir)
    }
}

/// `[recording]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingConfig {
    /// `recording.dir`: one stereo WAV and one JSON sidecar per call.
    pub dir: PathBuf,
    /// `recording.retention_days`: recordings older than this are deleted
    /// with their call records (`None`: kept for ever).
    pub retention: Option<Duration>,
}

/// What a test extension does (`test_extensions[].action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestActionKind {
    Echo,
    Prompt,
    Pair,
}

/// A number agents dial to check their audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestExtension {
    pub extension: FeatureCode,
    pub action: TestAction,
    /// Record the call (caller left, what the gateway sends or the paired
    /// caller right).
    pub record: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestAction {
    /// The caller hears itself.
    Echo,
    /// The caller hears this WAV in a loop.
    Prompt(PathBuf),
    /// `<extension><room digits>`: two callers of one room hear each other.
    Pair,
}
