//! Second layer: defaults, per-key rules and cross-key rules.
//!
//! Every check reports the key path it is about and stops at the first error,
//! in file order, so one run of `check-config` points at one line to fix.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::raw::{
    ApiRoleName, RawAgent, RawApi, RawAuth, RawConfig, RawIvr, RawLog, RawMedia, RawQueue,
    RawRecording, RawRegistrar, RawSip, RawStorage, RawTestExtension, RawTrunk, RawTrunkAuth,
    RawTrunkRegister, RawWebhook,
};
use super::{
    Agent, AgentId, ApiConfig, ApiRole, ApiToken, AuthConfig, Config, ConfigError, DialPermission,
    DialPlan, Did, DigestAlgorithm, Extension, FeatureCode, IvrMenu, IvrName, ListenAddr,
    LogConfig, LogFormat, MediaConfig, PromptName, Queue, QueueName, RecordingConfig,
    RegistrarConfig, Route, Secret, SipConfig, SipTimers, StorageConfig, TestAction,
    TestActionKind, TestExtension, Transport, Trunk, TrunkAuth, TrunkName, TrunkRegistration,
    Webhook, WebhookUrl,
};
use crate::call::announce::AnnouncementPrompts;

const DEFAULT_LOG_LEVEL: &str = "info";
const DEFAULT_DOMAIN: &str = "127.0.0.1";
const DEFAULT_SIP_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);
const DEFAULT_MAX_MESSAGE_SIZE: u64 = 65_536;
const MIN_MAX_MESSAGE_SIZE: u64 = 1024;
const MAX_MAX_MESSAGE_SIZE: u64 = 1_048_576;
const DEFAULT_TCP_IDLE_TIMEOUT_SECS: u64 = 300;
// RFC 3261 §17.1.1.1 and §17.1.2.2 recommended values.
const DEFAULT_T1_MS: u64 = 500;
const DEFAULT_T2_MS: u64 = 4000;
const DEFAULT_T4_MS: u64 = 5000;
const DEFAULT_MIN_EXPIRES: u32 = 60;
const DEFAULT_MAX_EXPIRES: u32 = 3600;
const DEFAULT_DEFAULT_EXPIRES: u32 = 3600;
const DEFAULT_MAX_CONTACTS: u32 = 10;
const DEFAULT_QUALIFY_INTERVAL_SECS: u64 = 30;
const DEFAULT_QUALIFY_FAILURES: u32 = 2;
/// MD5 first: SIPp and many phones read only the first challenge and know
/// only MD5 (RFC 8760 §2.4 lets the server order challenges by preference).
const DEFAULT_ALGORITHMS: [DigestAlgorithm; 1] = [DigestAlgorithm::Md5];
const DEFAULT_NONCE_TTL_SECS: u64 = 300;
const DEFAULT_MAX_FAILURES: u32 = 5;
const DEFAULT_FAILURE_WINDOW_SECS: u64 = 60;
const DEFAULT_BLOCK_SECS: u64 = 300;
const DEFAULT_STORAGE_PATH: &str = "var/switchboard.db";
const DEFAULT_RTP_PORT_MIN: u16 = 20_000;
const DEFAULT_RTP_PORT_MAX: u16 = 29_999;
const DEFAULT_CODECS: [&str; 3] = ["PCMU", "PCMA", "opus"];
const DEFAULT_DEAD_AFTER_SECS: u64 = 30;
const DEFAULT_SOUNDS_DIR: &str = "config/sounds";
const DEFAULT_HOLD_MUSIC: &str = "hold-music";
const DEFAULT_QUEUE_GREETING: &str = "welcome";
const DEFAULT_QUEUE_MUSIC: &str = "hold-music";
const DEFAULT_ANNOUNCE_EVERY_SECS: u64 = 30;
const DEFAULT_QUEUE_OVERFLOW: &str = "message:all-agents-busy";
const DEFAULT_IVR_TIMEOUT_SECS: u64 = 5;
const DEFAULT_IVR_MAX_ATTEMPTS: u32 = 3;
/// The keys of a telephone keypad that an IVR option may use (A-D, which
/// RFC 4733 can carry too, are on almost no phone).
const IVR_KEYS: &str = "0123456789*#";
const DEFAULT_RECORDING_DIR: &str = "var/recordings";
const DEFAULT_API_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
const DEFAULT_SERVICE_LEVEL_SECS: u64 = 20;
/// A day's worth of seconds times this stays far below `u64::MAX`.
const MAX_RETENTION_DAYS: u32 = 36_500;
const DEFAULT_REGISTER_EXPIRES_SECS: u32 = 3600;

fn invalid(key: impl Into<String>, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.to_string(),
    }
}

fn at_least_one_sec(key: &str, secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(invalid(key, "must be at least 1"));
    }
    Ok(Duration::from_secs(secs))
}

fn at_least_one_u32(key: &str, value: u32) -> Result<u32, ConfigError> {
    if value == 0 {
        return Err(invalid(key, "must be at least 1"));
    }
    Ok(value)
}

/// Values that end up inside SIP header fields must not carry control
/// characters: a CR or LF would let a config value inject header lines.
fn no_control_chars(key: &str, value: &str) -> Result<(), ConfigError> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(invalid(
            key,
            format!("must not contain control character {c:?}"),
        )),
        None => Ok(()),
    }
}

fn non_empty_text(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    no_control_chars(key, value)
}

fn parse<T>(key: &str, text: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|err| invalid(key, format!("{text:?}: {err}")))
}

pub(super) fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let log = log(raw.log)?;
    let sip = sip(raw.sip)?;
    let registrar = registrar(raw.registrar)?;
    let auth = auth(raw.auth, &sip.domain)?;
    let storage = storage(raw.storage)?;
    let agents = agents(raw.agents)?;
    let trunks = trunks(raw.trunks)?;
    let api = api(raw.api, &agents, &sip)?;
    // Before the queues and menus: their prompts are looked up in sounds_dir.
    let media = media(raw.media, &sip)?;
    let mut numbers = Numbers::new(&agents);
    let queues = queues(raw.queues, &agents, &media.sounds_dir, &mut numbers)?;
    let ivr = ivr(raw.ivr, &media.sounds_dir, &mut numbers)?;
    check_routes(&agents, &queues, &ivr, &media.sounds_dir)?;
    let recording = recording(raw.recording)?;
    let test_extensions = test_extensions(raw.test_extensions, &media, &numbers.plan)?;
    Ok(Config {
        media,
        recording,
        test_extensions,
        log,
        sip,
        registrar,
        auth,
        storage,
        agents,
        trunks,
        queues,
        ivr,
        dial_plan: numbers.plan,
        api,
    })
}

/// A prompt named at `key` whose file exists: a missing sound is found by
/// `check-config`, not by the first caller who should hear it.
fn existing_prompt(key: &str, text: &str, sounds_dir: &Path) -> Result<PromptName, ConfigError> {
    let prompt: PromptName = parse(key, text)?;
    let path = prompt.path(sounds_dir);
    if !path.is_file() {
        return Err(invalid(key, format!("{} is not a file", path.display())));
    }
    Ok(prompt)
}

/// Who claimed a dialled number first.
enum Owner {
    /// The agent at this index.
    Agent(usize),
    /// A queue or menu, as `queues[0] (support)`.
    Entry(String),
}

/// The numbers claimed so far (agent ids, extensions, DIDs by their digits
/// without `+`) and by whom, so that a number used twice is an error naming
/// both keys; builds the dial plan as it goes.
struct Numbers {
    owners: HashMap<String, Owner>,
    plan: DialPlan,
}

impl Numbers {
    fn new(agents: &[Agent]) -> Self {
        let mut numbers = Numbers {
            owners: HashMap::new(),
            plan: DialPlan::default(),
        };
        for (j, a) in agents.iter().enumerate() {
            numbers.owners.insert(a.id.to_string(), Owner::Agent(j));
            numbers
                .plan
                .insert_number(a.id.to_string(), Route::Agent(a.id.clone()));
        }
        numbers
    }

    fn claim(
        &mut self,
        key: &str,
        shown: &str,
        number: &str,
        owner: &str,
    ) -> Result<(), ConfigError> {
        match self.owners.get(number) {
            Some(Owner::Agent(j)) => Err(invalid(
                key,
                format!("{shown} collides with the id of agents[{j}]"),
            )),
            Some(Owner::Entry(first)) => Err(invalid(
                key,
                format!("{shown} is already assigned to {first}"),
            )),
            None => {
                self.owners
                    .insert(number.to_owned(), Owner::Entry(owner.to_owned()));
                Ok(())
            }
        }
    }

    /// Agents and extensions are dialled the same way, so one number must
    /// not mean two things.
    fn extension(
        &mut self,
        key: &str,
        ext: &Extension,
        owner: &str,
        route: Route,
    ) -> Result<(), ConfigError> {
        self.claim(key, ext.as_str(), ext.as_str(), owner)?;
        self.plan.insert_number(ext.to_string(), route);
        Ok(())
    }

    /// A DID is claimed by its digits: `+15550100` and `15550100` are the
    /// same number to the dial plan, and neither may equal an extension.
    fn did(&mut self, key: &str, did: &Did, owner: &str, route: Route) -> Result<(), ConfigError> {
        self.claim(key, did.as_str(), DialPlan::did_key(did.as_str()), owner)?;
        self.plan.insert_did(did.as_str(), route);
        Ok(())
    }
}

fn log(raw: RawLog) -> Result<LogConfig, ConfigError> {
    let level = raw.level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
    if level.trim().is_empty() {
        return Err(invalid("log.level", "must not be empty"));
    }
    if let Err(err) = tracing_subscriber::EnvFilter::try_new(&level) {
        return Err(invalid(
            "log.level",
            format!("{level:?} is not a valid tracing filter directive: {err}"),
        ));
    }
    Ok(LogConfig {
        level,
        format: raw.format.unwrap_or(LogFormat::Human),
    })
}

/// `sip.domain` is used as the host part of URIs, so it must be an IP address
/// or a DNS name (RFC 3261 §25.1 `host`).
fn check_host(key: &str, host: &str) -> Result<(), ConfigError> {
    if host.is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.len() <= 253 && host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{host:?} is neither an IP address nor a valid host name"),
        ))
    }
}

fn sip(raw: RawSip) -> Result<SipConfig, ConfigError> {
    let domain = raw.domain.unwrap_or_else(|| DEFAULT_DOMAIN.to_owned());
    check_host("sip.domain", &domain)?;

    let listen: Vec<ListenAddr> = match raw.listen {
        Some(entries) => entries
            .into_iter()
            .map(|l| ListenAddr {
                transport: l.transport,
                address: l.address,
            })
            .collect(),
        None => vec![
            ListenAddr {
                transport: Transport::Udp,
                address: DEFAULT_SIP_ADDR,
            },
            ListenAddr {
                transport: Transport::Tcp,
                address: DEFAULT_SIP_ADDR,
            },
        ],
    };
    if listen.is_empty() {
        return Err(invalid("sip.listen", "must list at least one address"));
    }
    for (i, entry) in listen.iter().enumerate() {
        if let Some(first) = listen[..i].iter().position(|other| other == entry) {
            return Err(invalid(
                format!("sip.listen[{i}]"),
                format!(
                    "duplicate of sip.listen[{first}] ({} {})",
                    entry.transport, entry.address
                ),
            ));
        }
    }

    let max_message_size = raw.max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE_SIZE);
    if !(MIN_MAX_MESSAGE_SIZE..=MAX_MAX_MESSAGE_SIZE).contains(&max_message_size) {
        return Err(invalid(
            "sip.max_message_size",
            format!(
                "must be between {MIN_MAX_MESSAGE_SIZE} and {MAX_MAX_MESSAGE_SIZE} bytes, got {max_message_size}"
            ),
        ));
    }
    let max_message_size = usize::try_from(max_message_size)
        .map_err(|_| invalid("sip.max_message_size", "does not fit this platform"))?;

    let tcp_idle_timeout = at_least_one_sec(
        "sip.tcp_idle_timeout_secs",
        raw.tcp_idle_timeout_secs
            .unwrap_or(DEFAULT_TCP_IDLE_TIMEOUT_SECS),
    )?;

    let user_agent = raw
        .user_agent
        .unwrap_or_else(|| format!("Switchboard/{}", env!("CARGO_PKG_VERSION")));
    non_empty_text("sip.user_agent", &user_agent)?;

    let t1_ms = raw.timers.t1_ms.unwrap_or(DEFAULT_T1_MS);
    let t2_ms = raw.timers.t2_ms.unwrap_or(DEFAULT_T2_MS);
    let t4_ms = raw.timers.t4_ms.unwrap_or(DEFAULT_T4_MS);
    if t1_ms == 0 {
        return Err(invalid("sip.timers.t1_ms", "must be at least 1"));
    }
    // RFC 3261 §17.1.2.2: retransmissions double from T1 up to T2, so T2 must
    // be above T1 for the back-off to mean anything.
    if t1_ms >= t2_ms {
        return Err(invalid(
            "sip.timers.t1_ms",
            format!("must be less than sip.timers.t2_ms ({t1_ms} >= {t2_ms})"),
        ));
    }
    if t4_ms == 0 {
        return Err(invalid("sip.timers.t4_ms", "must be at least 1"));
    }

    Ok(SipConfig {
        domain,
        listen,
        max_message_size,
        tcp_idle_timeout,
        user_agent,
        timers: SipTimers {
            t1: Duration::from_millis(t1_ms),
            t2: Duration::from_millis(t2_ms),
            t4: Duration::from_millis(t4_ms),
        },
    })
}

fn registrar(raw: RawRegistrar) -> Result<RegistrarConfig, ConfigError> {
    let min = at_least_one_u32(
        "registrar.min_expires",
        raw.min_expires.unwrap_or(DEFAULT_MIN_EXPIRES),
    )?;
    let max = raw.max_expires.unwrap_or(DEFAULT_MAX_EXPIRES);
    if min > max {
        return Err(invalid(
            "registrar.min_expires",
            format!("must not exceed registrar.max_expires ({min} > {max})"),
        ));
    }
    let default = raw.default_expires.unwrap_or(DEFAULT_DEFAULT_EXPIRES);
    if !(min..=max).contains(&default) {
        return Err(invalid(
            "registrar.default_expires",
            format!(
                "must be between registrar.min_expires ({min}) and registrar.max_expires ({max}), got {default}"
            ),
        ));
    }
    let max_contacts = at_least_one_u32(
        "registrar.max_contacts_per_agent",
        raw.max_contacts_per_agent.unwrap_or(DEFAULT_MAX_CONTACTS),
    )?;
    let qualify_secs = raw
        .qualify_interval_secs
        .unwrap_or(DEFAULT_QUALIFY_INTERVAL_SECS);
    let qualify_failures = at_least_one_u32(
        "registrar.qualify_failures",
        raw.qualify_failures.unwrap_or(DEFAULT_QUALIFY_FAILURES),
    )?;
    Ok(RegistrarConfig {
        min_expires: Duration::from_secs(min.into()),
        max_expires: Duration::from_secs(max.into()),
        default_expires: Duration::from_secs(default.into()),
        max_contacts_per_agent: usize::try_from(max_contacts).map_err(|_| {
            invalid(
                "registrar.max_contacts_per_agent",
                "does not fit this platform",
            )
        })?,
        qualify_interval: (qualify_secs > 0).then(|| Duration::from_secs(qualify_secs)),
        qualify_failures,
    })
}

fn auth(raw: RawAuth, domain: &str) -> Result<AuthConfig, ConfigError> {
    let realm = raw.realm.unwrap_or_else(|| domain.to_owned());
    non_empty_text("auth.realm", &realm)?;
    // The realm is sent as a quoted-string (RFC 3261 §25.1); refusing quotes
    // and backslashes means it never needs escaping and hashes identically on
    // both sides.
    if realm.contains(['"', '\\']) {
        return Err(invalid(
            "auth.realm",
            "must not contain '\"' or '\\' (it is sent as a quoted string)",
        ));
    }

    let algorithms = raw
        .algorithms
        .unwrap_or_else(|| DEFAULT_ALGORITHMS.to_vec());
    if algorithms.is_empty() {
        return Err(invalid(
            "auth.algorithms",
            "must list at least one algorithm",
        ));
    }
    for (i, alg) in algorithms.iter().enumerate() {
        if algorithms[..i].contains(alg) {
            return Err(invalid(
                format!("auth.algorithms[{i}]"),
                format!("{alg} is listed twice"),
            ));
        }
    }

    Ok(AuthConfig {
        realm,
        algorithms,
        nonce_ttl: at_least_one_sec(
            "auth.nonce_ttl_secs",
            raw.nonce_ttl_secs.unwrap_or(DEFAULT_NONCE_TTL_SECS),
        )?,
        max_failures: at_least_one_u32(
            "auth.max_failures",
            raw.max_failures.unwrap_or(DEFAULT_MAX_FAILURES),
        )?,
        failure_window: at_least_one_sec(
            "auth.failure_window_secs",
            raw.failure_window_secs
                .unwrap_or(DEFAULT_FAILURE_WINDOW_SECS),
        )?,
        block_duration: at_least_one_sec(
            "auth.block_secs",
            raw.block_secs.unwrap_or(DEFAULT_BLOCK_SECS),
        )?,
    })
}

fn storage(raw: RawStorage) -> Result<StorageConfig, ConfigError> {
    let path = raw.path.unwrap_or_else(|| DEFAULT_STORAGE_PATH.to_owned());
    if path.is_empty() {
        return Err(invalid("storage.path", "must not be empty"));
    }
    Ok(StorageConfig {
        path: PathBuf::from(path),
    })
}

fn agents(raw: Vec<RawAgent>) -> Result<Vec<Agent>, ConfigError> {
    let mut seen: HashMap<AgentId, usize> = HashMap::new();
    let mut agents = Vec::with_capacity(raw.len());
    for (i, a) in raw.into_iter().enumerate() {
        let id: AgentId = parse(&format!("agents[{i}].id"), &a.id)?;
        if let Some(first) = seen.insert(id.clone(), i) {
            return Err(invalid(
                format!("agents[{i}].id"),
                format!("{id} is already used by agents[{first}]"),
            ));
        }
        if a.password.is_empty() {
            return Err(invalid(
                format!("agents[{i}].password"),
                "must not be empty",
            ));
        }
        if let Some(name) = &a.display_name {
            no_control_chars(&format!("agents[{i}].display_name"), name)?;
        }
        let dial_permissions = a
            .dial_permissions
            .unwrap_or_else(|| vec![DialPermission::Internal]);
        for (j, p) in dial_permissions.iter().enumerate() {
            if dial_permissions[..j].contains(p) {
                return Err(invalid(
                    format!("agents[{i}].dial_permissions[{j}]"),
                    "listed twice",
                ));
            }
        }
        agents.push(Agent {
            id,
            password: Secret::new(a.password),
            display_name: a.display_name,
            dial_permissions,
            handoff: a.handoff.unwrap_or_default(),
        });
    }
    Ok(agents)
}

fn trunks(raw: Vec<RawTrunk>) -> Result<Vec<Trunk>, ConfigError> {
    let mut names: HashMap<TrunkName, usize> = HashMap::new();
    // A DID delivered by two trunks would make outbound caller-id and
    // inbound attribution ambiguous. Compared without the '+', as the dial
    // plan compares them.
    let mut dids: HashMap<String, String> = HashMap::new();
    let mut trunks = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let name: TrunkName = parse(&format!("trunks[{i}].name"), &t.name)?;
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(invalid(
                format!("trunks[{i}].name"),
                format!("{name} is already used by trunks[{first}]"),
            ));
        }
        let peer_key = format!("trunks[{i}].peer");
        if t.peer.ip().is_unspecified() {
            return Err(invalid(
                peer_key,
                "must be a concrete address, not 0.0.0.0 or ::",
            ));
        }
        if t.peer.port() == 0 {
            return Err(invalid(peer_key, "port must not be 0"));
        }
        let transport = t.transport.unwrap_or(Transport::Udp);

        let sources = match t.sources {
            None => Vec::new(),
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(j, s)| parse(&format!("trunks[{i}].sources[{j}]"), s))
                .collect::<Result<_, _>>()?,
        };

        let mut trunk_dids = Vec::new();
        for (j, text) in t.dids.unwrap_or_default().iter().enumerate() {
            let key = format!("trunks[{i}].dids[{j}]");
            let did: Did = parse(&key, text)?;
            let number = DialPlan::did_key(did.as_str()).to_owned();
            if let Some(owner) = dids.insert(number, format!("trunks[{i}] ({name})")) {
                return Err(invalid(
                    key,
                    format!("{did} is already assigned to {owner}"),
                ));
            }
            trunk_dids.push(did);
        }

        let caller_id = t
            .caller_id
            .as_deref()
            .map(|c| parse(&format!("trunks[{i}].caller_id"), c))
            .transpose()?;

        let register = t
            .register
            .map(|r| trunk_register(i, r, t.peer, transport))
            .transpose()?;
        let auth = match t.auth {
            Some(raw) => Some(trunk_auth(i, raw)?),
            None => register.as_ref().map(|r| TrunkAuth {
                username: r.auth_username.clone(),
                password: r.password.clone(),
            }),
        };

        trunks.push(Trunk {
            name,
            peer: t.peer,
            transport,
            sources,
            dids: trunk_dids,
            caller_id,
            register,
            auth,
        });
    }
    Ok(trunks)
}

fn trunk_auth(i: usize, raw: RawTrunkAuth) -> Result<TrunkAuth, ConfigError> {
    let prefix = format!("trunks[{i}].auth");
    non_empty_text(&format!("{prefix}.username"), &raw.username)?;
    if raw.password.is_empty() {
        return Err(invalid(format!("{prefix}.password"), "must not be empty"));
    }
    Ok(TrunkAuth {
        username: raw.username,
        password: Secret::new(raw.password),
    })
}

fn trunk_register(
    i: usize,
    raw: RawTrunkRegister,
    peer: SocketAddr,
    transport: Transport,
) -> Result<TrunkRegistration, ConfigError> {
    let prefix = format!("trunks[{i}].register");
    non_empty_text(&format!("{prefix}.username"), &raw.username)?;
    if raw.password.is_empty() {
        return Err(invalid(format!("{prefix}.password"), "must not be empty"));
    }
    let registrar = match raw.registrar {
        Some(uri) => {
            let key = format!("{prefix}.registrar");
            check_sip_uri(&key, &uri)?;
            uri
        }
        // SocketAddr's Display brackets IPv6 hosts, as RFC 3261 §19.1.1 wants.
        None => match transport {
            Transport::Udp => format!("sip:{peer}"),
            Transport::Tcp => format!("sip:{peer};transport=tcp"),
        },
    };
    let expires = raw.expires_secs.unwrap_or(DEFAULT_REGISTER_EXPIRES_SECS);
    if expires == 0 {
        return Err(invalid(
            format!("{prefix}.expires_secs"),
            "must be at least 1",
        ));
    }
    let auth_username = match raw.auth_username {
        Some(name) => {
            non_empty_text(&format!("{prefix}.auth_username"), &name)?;
            name
        }
        None => raw.username.clone(),
    };
    Ok(TrunkRegistration {
        username: raw.username,
        password: Secret::new(raw.password),
        registrar,
        expires: Duration::from_secs(expires.into()),
        auth_username,
    })
}

/// A light check of a SIP URI (RFC 3261 §19.1.1): scheme `sip` or `sips` and
/// a non-empty rest without whitespace. Full parsing belongs to the SIP core.
fn check_sip_uri(key: &str, uri: &str) -> Result<(), ConfigError> {
    let rest = uri
        .split_once(':')
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")
        })
        .map(|(_, rest)| rest);
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(())
        }
        _ => Err(invalid(
            key,
            format!("{uri:?} is not a SIP URI such as \"sip:192.0.2.10:5060\""),
        )),
    }
}

fn queues(
    raw: Vec<RawQueue>,
    agents: &[Agent],
    sounds_dir: &Path,
    numbers: &mut Numbers,
) -> Result<Vec<Queue>, ConfigError> {
    let mut names: HashMap<QueueName, usize> = HashMap::new();
    let mut queues = Vec::with_capacity(raw.len());
    for (i, q) in raw.into_iter().enumerate() {
        let name: QueueName = parse(&format!("queues[{i}].name"), &q.name)?;
        if name.as_str().starts_with(super::PERSONAL_QUEUE_PREFIX) {
            return Err(invalid(
                format!("queues[{i}].name"),
                format!(
                    "names starting with {:?} are the agents' own queues",
                    super::PERSONAL_QUEUE_PREFIX
                ),
            ));
        }
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(invalid(
                format!("queues[{i}].name"),
                format!("{name} is already used by queues[{first}]"),
            ));
        }

        let owner = format!("queues[{i}] ({name})");
        let route = Route::Queue(name.clone());
        let extension = match &q.extension {
            None => None,
            Some(text) => {
                let key = format!("queues[{i}].extension");
                let ext: Extension = parse(&key, text)?;
                numbers.extension(&key, &ext, &owner, route.clone())?;
                Some(ext)
            }
        };

        let mut queue_dids = Vec::new();
        for (j, text) in q.dids.unwrap_or_default().iter().enumerate() {
            let key = format!("queues[{i}].dids[{j}]");
            let did: Did = parse(&key, text)?;
            numbers.did(&key, &did, &owner, route.clone())?;
            queue_dids.push(did);
        }

        let mut members: Vec<AgentId> = Vec::new();
        for (j, text) in q.agents.unwrap_or_default().iter().enumerate() {
            let key = format!("queues[{i}].agents[{j}]");
            let id: AgentId = parse(&key, text)?;
            if !agents.iter().any(|a| a.id == id) {
                return Err(invalid(
                    key,
                    format!("unknown agent {id}: no [[agents]] entry has this id"),
                ));
            }
            if members.contains(&id) {
                return Err(invalid(key, format!("agent {id} is listed twice")));
            }
            members.push(id);
        }

        let mut penalties = HashMap::new();
        for (agent, penalty) in q.penalties.unwrap_or_default() {
            let key = format!("queues[{i}].penalties.{agent}");
            let id: AgentId = parse(&key, &agent)?;
            if !members.contains(&id) {
                return Err(invalid(key, format!("{id} is not in queues[{i}].agents")));
            }
            penalties.insert(id, penalty);
        }
        let ring_timeout = match q.ring_timeout_secs {
            Some(secs) => at_least_one_sec(&format!("queues[{i}].ring_timeout_secs"), secs)?,
            None => crate::call::acd::DEFAULT_RING_TIMEOUT,
        };
        let max_wait = q
            .max_wait_secs
            .map(|secs| at_least_one_sec(&format!("queues[{i}].max_wait_secs"), secs))
            .transpose()?;
        if q.max_callers == Some(0) {
            return Err(invalid(
                format!("queues[{i}].max_callers"),
                "must be at least 1",
            ));
        }

        let greeting = match q.greeting.as_deref().unwrap_or(DEFAULT_QUEUE_GREETING) {
            "" => None,
            text => Some(existing_prompt(
                &format!("queues[{i}].greeting"),
                text,
                sounds_dir,
            )?),
        };
        let music = existing_prompt(
            &format!("queues[{i}].music"),
            q.music.as_deref().unwrap_or(DEFAULT_QUEUE_MUSIC),
            sounds_dir,
        )?;
        let announce_key = format!("queues[{i}].announce_every_secs");
        let announce_every = match q.announce_every_secs.unwrap_or(DEFAULT_ANNOUNCE_EVERY_SECS) {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        };
        let announce_position = q.announce_position.unwrap_or(true);
        let announce_wait = q.announce_wait.unwrap_or(true);
        if announce_every.is_some() {
            if !announce_position && !announce_wait {
                return Err(invalid(
                    announce_key,
                    "announcements would say nothing: announce_position and announce_wait are both false (set 0 to turn announcements off)",
                ));
            }
            for sound in AnnouncementPrompts::names() {
                let path = sounds_dir.join(format!("{sound}.wav"));
                if !path.is_file() {
                    return Err(invalid(
                        announce_key,
                        format!(
                            "announcements need {}, which is not a file (set 0 to turn them off)",
                            path.display()
                        ),
                    ));
                }
            }
        }
        let overflow = parse(
            &format!("queues[{i}].overflow"),
            q.overflow.as_deref().unwrap_or(DEFAULT_QUEUE_OVERFLOW),
        )?;

        queues.push(Queue {
            name,
            extension,
            dids: queue_dids,
            agents: members,
            strategy: q.strategy.unwrap_or_default(),
            penalties,
            ring_timeout,
            wrap_up: q
                .wrap_up_secs
                .map_or(crate::call::acd::DEFAULT_WRAP_UP, Duration::from_secs),
            max_wait,
            max_callers: q.max_callers,
            join_empty: q.join_empty.unwrap_or(true),
            leave_when_empty: q.leave_when_empty.unwrap_or(false),
            greeting,
            music,
            announce_every,
            announce_position,
            announce_wait,
            record: q.record.unwrap_or(true),
            overflow,
        });
    }
    Ok(queues)
}

fn ivr(
    raw: Vec<RawIvr>,
    sounds_dir: &Path,
    numbers: &mut Numbers,
) -> Result<Vec<IvrMenu>, ConfigError> {
    let mut names: HashMap<IvrName, usize> = HashMap::new();
    let mut menus = Vec::with_capacity(raw.len());
    for (i, m) in raw.into_iter().enumerate() {
        let prefix = format!("ivr[{i}]");
        let name: IvrName = parse(&format!("{prefix}.name"), &m.name)?;
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(invalid(
                format!("{prefix}.name"),
                format!("{name} is already used by ivr[{first}]"),
            ));
        }
        let owner = format!("{prefix} ({name})");
        let route = Route::Ivr(name.clone());
        let extension = match &m.extension {
            None => None,
            Some(text) => {
                let key = format!("{prefix}.extension");
                let ext: Extension = parse(&key, text)?;
                numbers.extension(&key, &ext, &owner, route.clone())?;
                Some(ext)
            }
        };
        let mut dids = Vec::new();
        for (j, text) in m.dids.unwrap_or_default().iter().enumerate() {
            let key = format!("{prefix}.dids[{j}]");
            let did: Did = parse(&key, text)?;
            numbers.did(&key, &did, &owner, route.clone())?;
            dids.push(did);
        }
        let prompt = existing_prompt(&format!("{prefix}.prompt"), &m.prompt, sounds_dir)?;
        let timeout = at_least_one_sec(
            &format!("{prefix}.timeout_secs"),
            m.timeout_secs.unwrap_or(DEFAULT_IVR_TIMEOUT_SECS),
        )?;
        let max_attempts = at_least_one_u32(
            &format!("{prefix}.max_attempts"),
            m.max_attempts.unwrap_or(DEFAULT_IVR_MAX_ATTEMPTS),
        )?;
        let invalid_prompt = match m.invalid_prompt.as_deref() {
            None | Some("") => None,
            Some(text) => Some(existing_prompt(
                &format!("{prefix}.invalid_prompt"),
                text,
                sounds_dir,
            )?),
        };
        let raw_options = m.options.unwrap_or_default();
        if raw_options.is_empty() {
            return Err(invalid(
                format!("{prefix}.options"),
                "must offer at least one key (a plain announcement is a \"message:<prompt>\" route)",
            ));
        }
        let mut options = BTreeMap::new();
        for (digit, target) in raw_options {
            let key = format!("{prefix}.options.{digit}");
            let mut chars = digit.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(invalid(key, "must be one key: 0-9, * or #"));
            };
            if !IVR_KEYS.contains(c) {
                return Err(invalid(key, "must be one key: 0-9, * or #"));
            }
            options.insert(c, parse(&key, &target)?);
        }
        let default = match m.default.as_deref() {
            None => Route::Hangup,
            Some(text) => parse(&format!("{prefix}.default"), text)?,
        };
        menus.push(IvrMenu {
            name,
            extension,
            dids,
            prompt,
            timeout,
            max_attempts,
            invalid_prompt,
            options,
            default,
        });
    }
    Ok(menus)
}

/// Routes name queues and menus that may come later in the file, so they
/// are checked once everything is read.
fn check_routes(
    agents: &[Agent],
    queues: &[Queue],
    menus: &[IvrMenu],
    sounds_dir: &Path,
) -> Result<(), ConfigError> {
    let check = |key: String, route: &Route| -> Result<(), ConfigError> {
        match route {
            Route::Queue(name) if !queues.iter().any(|q| &q.name == name) => Err(invalid(
                key,
                format!("unknown queue {name}: no [[queues]] entry has this name"),
            )),
            Route::Ivr(name) if !menus.iter().any(|m| &m.name == name) => Err(invalid(
                key,
                format!("unknown IVR menu {name}: no [[ivr]] entry has this name"),
            )),
            Route::Agent(id) if !agents.iter().any(|a| &a.id == id) => Err(invalid(
                key,
                format!("unknown agent {id}: no [[agents]] entry has this id"),
            )),
            Route::Message(prompt) => existing_prompt(&key, prompt.as_str(), sounds_dir).map(drop),
            _ => Ok(()),
        }
    };
    for (i, q) in queues.iter().enumerate() {
        let key = format!("queues[{i}].overflow");
        if q.overflow == Route::Queue(q.name.clone()) {
            return Err(invalid(key, "must not be the queue itself"));
        }
        check(key, &q.overflow)?;
    }
    for (i, m) in menus.iter().enumerate() {
        for (digit, route) in &m.options {
            check(format!("ivr[{i}].options.{digit}"), route)?;
        }
        check(format!("ivr[{i}].default"), &m.default)?;
    }
    Ok(())
}

/// Whether binding both addresses would fail with "address in use": same
/// port (other than 0, which picks a free one) and the same IP or a wildcard
/// of the same family.
fn bind_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn api(raw: RawApi, agents: &[Agent], sip: &SipConfig) -> Result<ApiConfig, ConfigError> {
    let listen = raw.listen.unwrap_or(DEFAULT_API_ADDR);
    if let Some(i) = sip
        .listen
        .iter()
        .position(|l| l.transport == Transport::Tcp && bind_conflict(l.address, listen))
    {
        return Err(invalid(
            "api.listen",
            format!(
                "{listen} conflicts with sip.listen[{i}] (tcp {})",
                sip.listen[i].address
            ),
        ));
    }

    let mut tokens: Vec<ApiToken> = Vec::with_capacity(raw.tokens.len());
    for (i, t) in raw.tokens.into_iter().enumerate() {
        let prefix = format!("api.tokens[{i}]");
        non_empty_text(&format!("{prefix}.token"), &t.token)?;
        // The token itself is a secret: name the other entry, never the value.
        if let Some(first) = tokens.iter().position(|o| o.token.expose() == t.token) {
            return Err(invalid(
                format!("{prefix}.token"),
                format!("same token as api.tokens[{first}]"),
            ));
        }
        let role = match (t.role, t.agent) {
            (ApiRoleName::Agent, None) => {
                return Err(invalid(
                    format!("{prefix}.agent"),
                    "required when role = \"agent\"",
                ))
            }
            (ApiRoleName::Agent, Some(agent)) => {
                let key = format!("{prefix}.agent");
                let id: AgentId = parse(&key, &agent)?;
                if !agents.iter().any(|a| a.id == id) {
                    return Err(invalid(
                        key,
                        format!("unknown agent {id}: no [[agents]] entry has this id"),
                    ));
                }
                ApiRole::Agent(id)
            }
            (_, Some(_)) => {
                return Err(invalid(
                    format!("{prefix}.agent"),
                    "only allowed when role = \"agent\"",
                ))
            }
            (ApiRoleName::Admin, None) => ApiRole::Admin,
            (ApiRoleName::Supervisor, None) => ApiRole::Supervisor,
            (ApiRoleName::Qa, None) => ApiRole::Qa,
        };
        tokens.push(ApiToken {
            token: Secret::new(t.token),
            role,
        });
    }
    let service_level_secs = raw.service_level_secs.unwrap_or(DEFAULT_SERVICE_LEVEL_SECS);
    if service_level_secs == 0 || service_level_secs > 3600 {
        return Err(invalid(
            "api.service_level_secs",
            "must be 1 to 3600 seconds",
        ));
    }
    let webhooks = raw
        .webhooks
        .into_iter()
        .enumerate()
        .map(|(i, w)| webhook(i, w))
        .collect::<Result<_, _>>()?;
    Ok(ApiConfig {
        listen,
        tokens,
        service_level: Duration::from_secs(service_level_secs),
        webhooks,
    })
}

fn webhook(i: usize, raw: RawWebhook) -> Result<Webhook, ConfigError> {
    let prefix = format!("api.webhooks[{i}]");
    let url: WebhookUrl = parse(&format!("{prefix}.url"), &raw.url)?;
    non_empty_text(&format!("{prefix}.secret"), &raw.secret)?;
    let events = raw.events.unwrap_or_default();
    for (j, e) in events.iter().enumerate() {
        if !crate::api::EVENT_TYPES.contains(&e.as_str()) {
            return Err(invalid(
                format!("{prefix}.events[{j}]"),
                format!(
                    "unknown event type {e:?} (one of {})",
                    crate::api::EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    Ok(Webhook {
        url,
        secret: Secret::new(raw.secret),
        events,
    })
}

fn media(raw: RawMedia, sip: &SipConfig) -> Result<MediaConfig, ConfigError> {
    let address = match raw.address {
        Some(ip) if ip.is_unspecified() || ip.is_multicast() => {
            return Err(invalid(
                "media.address",
                "must be a unicast address that peers can send RTP to (it goes into SDP)",
            ))
        }
        Some(ip) => ip,
        None => sip
            .listen
            .iter()
            .map(|l| l.address.ip())
            .find(|ip| !ip.is_unspecified())
            .ok_or_else(|| {
                invalid(
                    "media.address",
                    "required when every sip.listen address is a wildcard (0.0.0.0 or ::)",
                )
            })?,
    };
    let min = raw.rtp_port_min.unwrap_or(DEFAULT_RTP_PORT_MIN);
    let max = raw.rtp_port_max.unwrap_or(DEFAULT_RTP_PORT_MAX);
    if min > max {
        return Err(invalid(
            "media.rtp_port_max",
            format!("{max} is below media.rtp_port_min ({min})"),
        ));
    }
    if let Err(e) = crate::media::ports::PortAllocator::new(min..=max) {
        return Err(invalid("media.rtp_port_min", e));
    }
    let names: Vec<String> = raw
        .codecs
        .unwrap_or_else(|| DEFAULT_CODECS.iter().map(|c| (*c).to_owned()).collect());
    if names.is_empty() {
        return Err(invalid("media.codecs", "must name at least one codec"));
    }
    let mut codecs = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let codec = match name.to_ascii_lowercase().as_str() {
            "pcmu" => crate::media::sdp::Codec::Pcmu,
            "pcma" => crate::media::sdp::Codec::Pcma,
            "opus" => crate::media::sdp::Codec::Opus,
            _ => {
                return Err(invalid(
                    format!("media.codecs[{i}]"),
                    format!("{name:?} is not one of \"PCMU\", \"PCMA\", \"opus\""),
                ))
            }
        };
        if codecs.contains(&codec) {
            return Err(invalid(
                format!("media.codecs[{i}]"),
                format!("{name} is listed twice"),
            ));
        }
        codecs.push(codec);
    }
    let dead = raw.dead_after_secs.unwrap_or(DEFAULT_DEAD_AFTER_SECS);
    let sounds_dir = raw
        .sounds_dir
        .unwrap_or_else(|| DEFAULT_SOUNDS_DIR.to_owned());
    if sounds_dir.is_empty() {
        return Err(invalid("media.sounds_dir", "must not be empty"));
    }
    let sounds_dir = PathBuf::from(sounds_dir);
    let hold_music = existing_prompt(
        "media.hold_music",
        raw.hold_music.as_deref().unwrap_or(DEFAULT_HOLD_MUSIC),
        &sounds_dir,
    )?;
    Ok(MediaConfig {
        address,
        rtp_ports: min..=max,
        codecs,
        dead_after: (dead > 0).then(|| Duration::from_secs(dead)),
        workers: raw.workers.unwrap_or(0),
        realtime: raw.realtime.unwrap_or(true),
        sounds_dir,
        hold_music,
    })
}

fn recording(raw: RawRecording) -> Result<RecordingConfig, ConfigError> {
    let dir = raw.dir.unwrap_or_else(|| DEFAULT_RECORDING_DIR.to_owned());
    if dir.is_empty() {
        return Err(invalid("recording.dir", "must not be empty"));
    }
    let retention = match raw.retention_days {
        None => None,
        Some(days) if days == 0 || days > MAX_RETENTION_DAYS => {
            return Err(invalid(
                "recording.retention_days",
                format!("must be 1 to {MAX_RETENTION_DAYS} (leave it out to keep recordings)"),
            ))
        }
        Some(days) => Some(Duration::from_secs(u64::from(days) * 86_400)),
    };
    Ok(RecordingConfig {
        dir: PathBuf::from(dir),
        retention,
    })
}

fn test_extensions(
    raw: Vec<RawTestExtension>,
    media: &MediaConfig,
    plan: &DialPlan,
) -> Result<Vec<TestExtension>, ConfigError> {
    let mut out: Vec<TestExtension> = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let key = format!("test_extensions[{i}].extension");
        let extension: FeatureCode = parse(&key, &t.extension)?;
        if let Some(route) = plan.route(extension.as_str()) {
            return Err(invalid(
                key,
                format!("{extension} is already an agent, queue, IVR or DID ({route})"),
            ));
        }
        if let Some(j) = out.iter().position(|o| {
            o.extension.as_str().starts_with(extension.as_str())
                || extension.as_str().starts_with(o.extension.as_str())
        }) {
            return Err(invalid(
                key,
                format!(
                    "{extension} overlaps test_extensions[{j}] ({}): one would hide the other",
                    out[j].extension
                ),
            ));
        }
        let prompt_key = format!("test_extensions[{i}].prompt");
        let action = match (t.action, t.prompt) {
            (TestActionKind::Prompt, Some(p)) => {
                if p.is_empty() {
                    return Err(invalid(prompt_key, "must not be empty"));
                }
                let path = if p.ends_with(".wav") {
                    PathBuf::from(&p)
                } else {
                    media.sounds_dir.join(format!("{p}.wav"))
                };
                if !path.is_file() {
                    return Err(invalid(
                        prompt_key,
                        format!("{} is not a file", path.display()),
                    ));
                }
                TestAction::Prompt(path)
            }
            (TestActionKind::Prompt, None) => {
                return Err(invalid(prompt_key, "required when action = \"prompt\""))
            }
            (_, Some(_)) => return Err(invalid(prompt_key, "only for action = \"prompt\"")),
            (TestActionKind::Echo, None) => TestAction::Echo,
            (TestActionKind::Pair, None) => TestAction::Pair,
        };
        out.push(TestExtension {
            extension,
            action,
            record: t.record,
        });
    }
    Ok(out)
}
