use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const DEMO: &str = include_str!("../../config/switchboard.toml");
const DOCS: &str = include_str!("../../docs/configuration.md");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Path::new("test.toml"))
}

/// Asserts that `text` fails to load and that the message names `key`;
/// returns the message for further checks.
#[track_caller]
fn error_naming(text: &str, key: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("expected an error naming {key}, got {config:?}"),
        Err(err) => {
            let shown = err.to_string();
            assert!(
                shown.contains(&format!("{key}: ")),
                "error {shown:?} does not name key {key}"
            );
            shown
        }
    }
}

const AGENTS: &str = r#"
[[agents]]
id = "1001"
password = "a"

[[agents]]
id = "1002"
password = "b"
"#;

fn addr(text: &str) -> Result<SocketAddr, std::net::AddrParseError> {
    text.parse()
}

#[test]
fn shipped_demo_config_parses_with_documented_values() -> TestResult {
    let c = parse(DEMO)?;
    let loopback_5060 = addr("127.0.0.1:5060")?;
    assert_eq!(c.sip.domain, "127.0.0.1");
    assert_eq!(
        c.sip.listen,
        vec![
            ListenAddr {
                transport: Transport::Udp,
                address: loopback_5060
            },
            ListenAddr {
                transport: Transport::Tcp,
                address: loopback_5060
            },
        ]
    );
    let agents: Vec<(&str, &str)> = c
        .agents
        .iter()
        .map(|a| (a.id.as_str(), a.password.expose()))
        .collect();
    assert_eq!(
        agents,
        [
            ("1001", "pass1001"),
            ("1002", "pass1002"),
            ("1003", "pass1003")
        ]
    );

    assert_eq!(c.trunks.len(), 1);
    let carrier = &c.trunks[0];
    assert_eq!(carrier.name.as_str(), "carrier");
    assert_eq!(carrier.peer, addr("127.0.0.1:5080")?);
    assert_eq!(carrier.transport, Transport::Udp);
    assert_eq!(
        carrier.dids,
        vec!["+15550100".parse::<Did>()?, "+15550101".parse()?]
    );
    assert_eq!(carrier.register, None);
    assert!(carrier.sources.is_empty());

    assert_eq!(c.queues.len(), 2);
    let support = &c.queues[0];
    assert_eq!(support.name.as_str(), "support");
    assert_eq!(support.extension, Some("500".parse()?));
    assert_eq!(support.dids, vec!["+15550100".parse::<Did>()?]);
    assert_eq!(
        support.agents,
        vec!["1001".parse::<AgentId>()?, "1002".parse()?]
    );
    let sales = &c.queues[1];
    assert_eq!(sales.name.as_str(), "sales");
    assert_eq!(sales.extension, Some("501".parse()?));
    assert_eq!(sales.agents, vec!["1003".parse::<AgentId>()?]);
    assert_eq!(sales.overflow, "queue:support".parse()?);

    assert_eq!(c.ivr.len(), 1);
    let main = &c.ivr[0];
    assert_eq!(main.name.as_str(), "main");
    assert_eq!(main.dids, vec!["+15550101".parse::<Did>()?]);
    assert_eq!(main.options.get(&'1'), Some(&"queue:sales".parse()?));
    assert_eq!(main.options.get(&'2'), Some(&"queue:support".parse()?));
    assert_eq!(main.default, "queue:support".parse()?);

    let queue = |name: &str| name.parse().map(Route::Queue);
    assert_eq!(c.route_for("+15550100"), Some(queue("support")?));
    assert_eq!(c.route_for("15550100"), Some(queue("support")?));
    assert_eq!(c.route_for("500"), Some(queue("support")?));
    assert_eq!(c.route_for("501"), Some(queue("sales")?));
    assert_eq!(c.route_for("+15550101"), Some(Route::Ivr("main".parse()?)));
    assert_eq!(c.route_for("1003"), Some(Route::Agent("1003".parse()?)));
    assert_eq!(c.route_for("+15550199"), None);

    assert_eq!(c.api.listen, addr("127.0.0.1:8080")?);
    let tokens: Vec<(&str, ApiRole)> = c
        .api
        .tokens
        .iter()
        .map(|t| (t.token.expose(), t.role.clone()))
        .collect();
    assert_eq!(
        tokens,
        vec![
            ("admin-demo", ApiRole::Admin),
            ("supervisor-demo", ApiRole::Supervisor),
            ("qa-demo", ApiRole::Qa),
            ("agent-1001-demo", ApiRole::Agent("1001".parse()?)),
            ("agent-1002-demo", ApiRole::Agent("1002".parse()?)),
        ]
    );
    Ok(())
}

#[test]
fn empty_file_gives_defaults() -> TestResult {
    let c = parse("")?;
    let loopback_5060 = addr("127.0.0.1:5060")?;
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Human);
    assert_eq!(c.sip.domain, "127.0.0.1");
    assert_eq!(
        c.sip.listen,
        vec![
            ListenAddr {
                transport: Transport::Udp,
                address: loopback_5060
            },
            ListenAddr {
                transport: Transport::Tcp,
                address: loopback_5060
            },
        ]
    );
    assert_eq!(c.sip.max_message_size, 65_536);
    assert_eq!(c.sip.tcp_idle_timeout, Duration::from_secs(300));
    assert_eq!(
        c.sip.user_agent,
        format!("Switchboard/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        c.sip.timers,
        SipTimers {
            t1: Duration::from_millis(500),
            t2: Duration::from_millis(4000),
            t4: Duration::from_millis(5000),
        }
    );
    assert_eq!(
        c.registrar,
        RegistrarConfig {
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
            default_expires: Duration::from_secs(3600),
            max_contacts_per_agent: 10,
            qualify_interval: Some(Duration::from_secs(30)),
            qualify_failures: 2,
        }
    );
    assert_eq!(c.auth.realm, "127.0.0.1");
    assert_eq!(c.auth.algorithms, vec![DigestAlgorithm::Md5]);
    assert_eq!(c.auth.nonce_ttl, Duration::from_secs(300));
    assert_eq!(c.auth.max_failures, 5);
    assert_eq!(c.auth.failure_window, Duration::from_secs(60));
    assert_eq!(c.auth.block_duration, Duration::from_secs(300));
    assert_eq!(c.storage.path, Path::new("var/switchboard.db"));
    assert!(c.agents.is_empty() && c.trunks.is_empty() && c.queues.is_empty());
    assert!(c.ivr.is_empty());
    assert_eq!(c.media.hold_music.as_str(), "hold-music");
    assert_eq!(c.route_for("1001"), None);
    assert_eq!(c.api.listen, addr("127.0.0.1:8080")?);
    assert!(c.api.tokens.is_empty());
    Ok(())
}

#[test]
fn realm_defaults_to_domain_and_can_be_set() -> TestResult {
    let c = parse("[sip]\ndomain = \"pbx.example.com\"\n")?;
    assert_eq!(c.auth.realm, "pbx.example.com");
    let c = parse("[sip]\ndomain = \"pbx.example.com\"\n[auth]\nrealm = \"callcentre\"\n")?;
    assert_eq!(c.auth.realm, "callcentre");
    Ok(())
}

#[test]
fn ipv6_listen_and_qualify_disabled() -> TestResult {
    let c = parse(
        "[sip]\nlisten = [{ transport = \"udp\", address = \"[::1]:5070\" }]\n\
         [registrar]\nqualify_interval_secs = 0\n",
    )?;
    assert_eq!(c.sip.listen.len(), 1);
    assert_eq!(c.sip.listen[0].address, addr("[::1]:5070")?);
    assert_eq!(c.registrar.qualify_interval, None);
    Ok(())
}

// --- Errors required by the brief: each names its key path. ---

#[test]
fn unknown_key_is_named() {
    let shown = error_naming("[sip]\nlisen = []\n", "sip.lisen");
    assert!(shown.contains("unknown field"), "{shown}");
    assert!(shown.contains("test.toml"), "{shown}");
    error_naming(
        "[[agents]]\nid = \"1\"\npassword = \"x\"\nlevel = 3\n",
        "agents[0].level",
    );
    error_naming("colour = \"blue\"\n", "colour");
}

#[test]
fn bad_address_is_named() {
    let shown = error_naming(
        "[sip]\nlisten = [\n  { transport = \"udp\", address = \"127.0.0.1:5060\" },\n  { transport = \"tcp\", address = \"localhost:5060\" },\n]\n",
        "sip.listen[1].address",
    );
    assert!(shown.contains("invalid socket address syntax"), "{shown}");
    assert!(shown.contains("line 4"), "{shown}");
    error_naming("[api]\nlisten = \"127.0.0.1\"\n", "api.listen");
    error_naming(
        "[[trunks]]\nname = \"t\"\npeer = \"10.0.0.1:99999\"\n",
        "trunks[0].peer",
    );
}

#[test]
fn bad_durations_are_named() {
    let shown = error_naming(
        "[registrar]\nqualify_interval_secs = \"30s\"\n",
        "registrar.qualify_interval_secs",
    );
    assert!(shown.contains("invalid type"), "{shown}");
    error_naming("[auth]\nnonce_ttl_secs = -5\n", "auth.nonce_ttl_secs");
    error_naming("[auth]\nblock_secs = 1.5\n", "auth.block_secs");
    let shown = error_naming(
        "[sip]\ntcp_idle_timeout_secs = 0\n",
        "sip.tcp_idle_timeout_secs",
    );
    assert!(shown.contains("at least 1"), "{shown}");
    error_naming("[sip.timers]\nt4_ms = 0\n", "sip.timers.t4_ms");
}

#[test]
fn missing_file_is_a_read_error_naming_the_path() {
    let path = Path::new("/nonexistent/switchboard-test.toml");
    match Config::load(path) {
        Err(err @ ConfigError::Read { .. }) => {
            assert!(err
                .to_string()
                .contains("/nonexistent/switchboard-test.toml"));
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn load_reads_a_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sb.toml");
    std::fs::write(&path, "[sip]\ndomain = \"example.org\"\n")?;
    assert_eq!(Config::load(&path)?.sip.domain, "example.org");
    std::fs::write(&path, "[sip]\ndomain = 5\n")?;
    match Config::load(&path) {
        Err(ConfigError::Syntax {
            path: reported,
            key,
            ..
        }) => {
            assert_eq!(reported, path);
            assert_eq!(key, "sip.domain");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn queue_with_unknown_agent_is_named() {
    let text = format!("{AGENTS}\n[[queues]]\nname = \"q\"\nagents = [\"1001\", \"1009\"]\n");
    let shown = error_naming(&text, "queues[0].agents[1]");
    assert!(shown.contains("unknown agent 1009"), "{shown}");
}

#[test]
fn queue_routing_rules_and_their_errors() -> TestResult {
    let text = format!(
        "{AGENTS}\n[[queues]]\nname = \"q\"\nagents = [\"1001\", \"1002\"]\n\
strategy = \"ring-all\"\npenalties = {{ \"1002\" = 2 }}\nring_timeout_secs = 20\nwrap_up_secs = 0\n\
max_wait_secs = 300\nmax_callers = 50\njoin_empty = false\nleave_when_empty = true\n"
    );
    let config = parse(&text)?;
    let acd = crate::call::acd::QueueConfig::from(&config.queues[0]);
    assert_eq!(acd.strategy, crate::call::acd::Strategy::RingAll);
    assert_eq!(acd.members[0].penalty, 0);
    assert_eq!(acd.members[1].penalty, 2);
    assert_eq!(acd.ring_timeout, Duration::from_secs(20));
    assert_eq!(acd.wrap_up, Duration::ZERO);
    assert_eq!(acd.max_wait, Some(Duration::from_secs(300)));
    assert_eq!(acd.max_len, Some(50));
    assert!(!acd.join_empty && acd.leave_when_empty);
    let defaults = crate::call::acd::QueueConfig::from(
        &parse(&format!("{AGENTS}\n[[queues]]\nname = \"q\"\n"))?.queues[0],
    );
    assert_eq!(
        defaults.ring_timeout,
        crate::call::acd::DEFAULT_RING_TIMEOUT
    );
    assert!(defaults.join_empty && !defaults.leave_when_empty);

    let not_member = format!(
        "{AGENTS}\n[[queues]]\nname = \"q\"\nagents = [\"1001\"]\npenalties = {{ \"1002\" = 1 }}\n"
    );
    assert!(
        error_naming(&not_member, "queues[0].penalties.1002").contains("not in queues[0].agents")
    );
    let zero = format!("{AGENTS}\n[[queues]]\nname = \"q\"\nring_timeout_secs = 0\n");
    error_naming(&zero, "queues[0].ring_timeout_secs");
    let bad = format!("{AGENTS}\n[[queues]]\nname = \"q\"\nstrategy = \"random\"\n");
    error_naming(&bad, "queues[0].strategy");
    Ok(())
}

#[test]
fn duplicate_listen_is_named() {
    let shown = error_naming(
        "[sip]\nlisten = [\n  { transport = \"udp\", address = \"127.0.0.1:5060\" },\n  { transport = \"udp\", address = \"127.0.0.1:5060\" },\n]\n",
        "sip.listen[1]",
    );
    assert!(shown.contains("duplicate of sip.listen[0]"), "{shown}");
}

// --- Other syntax-layer behaviour. ---

#[test]
fn missing_required_key_points_at_the_key() {
    let shown = error_naming("[[agents]]\nid = \"1001\"\n", "agents[0].password");
    assert!(shown.contains("missing field"), "{shown}");
    error_naming(
        "[sip]\nlisten = [{ address = \"127.0.0.1:5060\" }]\n",
        "sip.listen[0].transport",
    );
}

#[test]
fn toml_syntax_error_is_reported_on_one_line_with_position() {
    match parse("[sip\ndomain = \"x\"\n") {
        Err(ConfigError::Syntax { key, message, .. }) => {
            assert_eq!(key, "");
            assert!(!message.contains('\n'), "{message}");
            assert!(message.contains("line 1"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn unknown_enum_values_are_named() {
    error_naming("[log]\nformat = \"xml\"\n", "log.format");
    error_naming(
        "[sip]\nlisten = [{ transport = \"sctp\", address = \"127.0.0.1:5060\" }]\n",
        "sip.listen[0].transport",
    );
    error_naming("[auth]\nalgorithms = [\"md5\"]\n", "auth.algorithms[0]");
    error_naming(
        "[[agents]]\nid = \"1\"\npassword = \"x\"\ndial_permissions = [\"mars\"]\n",
        "agents[0].dial_permissions[0]",
    );
    error_naming(
        "[[api.tokens]]\ntoken = \"t\"\nrole = \"root\"\n",
        "api.tokens[0].role",
    );
}

// --- Validation rules. ---

#[test]
fn log_level_must_be_a_filter_directive() {
    error_naming("[log]\nlevel = \"switchboard=loud\"\n", "log.level");
    error_naming("[log]\nlevel = \"\"\n", "log.level");
    assert!(parse("[log]\nlevel = \"switchboard=debug,warn\"\n").is_ok());
}

#[test]
fn sip_value_rules() {
    error_naming("[sip]\ndomain = \"\"\n", "sip.domain");
    error_naming("[sip]\ndomain = \"bad domain\"\n", "sip.domain");
    assert!(parse("[sip]\ndomain = \"[::1]\"\n").is_ok());
    error_naming("[sip]\nlisten = []\n", "sip.listen");
    error_naming("[sip]\nmax_message_size = 1023\n", "sip.max_message_size");
    error_naming(
        "[sip]\nmax_message_size = 1048577\n",
        "sip.max_message_size",
    );
    assert!(parse("[sip]\nmax_message_size = 1024\n").is_ok());
    assert!(parse("[sip]\nmax_message_size = 1048576\n").is_ok());
    error_naming("[sip]\nuser_agent = \"\"\n", "sip.user_agent");
    error_naming(
        "[sip]\nuser_agent = \"a\\r\\nX-Evil: 1\"\n",
        "sip.user_agent",
    );
    // UDP and TCP on one address is not a duplicate.
    assert!(parse(
        "[sip]\nlisten = [{ transport = \"udp\", address = \"127.0.0.1:5060\" }, { transport = \"tcp\", address = \"127.0.0.1:5060\" }]\n"
    )
    .is_ok());
}

#[test]
fn t1_must_be_below_t2() {
    let shown = error_naming("[sip.timers]\nt1_ms = 4000\n", "sip.timers.t1_ms");
    assert!(
        shown.contains("must be less than sip.timers.t2_ms"),
        "{shown}"
    );
    error_naming("[sip.timers]\nt1_ms = 0\n", "sip.timers.t1_ms");
}

#[test]
fn registrar_expiry_ordering() {
    let shown = error_naming("[registrar]\nmin_expires = 7200\n", "registrar.min_expires");
    assert!(
        shown.contains("must not exceed registrar.max_expires"),
        "{shown}"
    );
    error_naming(
        "[registrar]\ndefault_expires = 30\n",
        "registrar.default_expires",
    );
    error_naming("[registrar]\nmin_expires = 0\n", "registrar.min_expires");
    error_naming(
        "[registrar]\nmax_expires = 4294967296\n",
        "registrar.max_expires",
    );
    error_naming(
        "[registrar]\nmax_contacts_per_agent = 0\n",
        "registrar.max_contacts_per_agent",
    );
    error_naming(
        "[registrar]\nqualify_failures = 0\n",
        "registrar.qualify_failures",
    );
}

#[test]
fn auth_rules() {
    error_naming("[auth]\nalgorithms = []\n", "auth.algorithms");
    error_naming(
        "[auth]\nalgorithms = [\"SHA-256\", \"SHA-256\"]\n",
        "auth.algorithms[1]",
    );
    error_naming("[auth]\nrealm = \"a\\\"b\"\n", "auth.realm");
    error_naming("[auth]\nmax_failures = 0\n", "auth.max_failures");
    error_naming(
        "[auth]\nfailure_window_secs = 0\n",
        "auth.failure_window_secs",
    );
}

#[test]
fn agent_rules() {
    error_naming(
        &format!("{AGENTS}\n[[agents]]\nid = \"1001\"\npassword = \"c\"\n"),
        "agents[2].id",
    );
    error_naming(
        "[[agents]]\nid = \"10-01\"\npassword = \"x\"\n",
        "agents[0].id",
    );
    error_naming(
        "[[agents]]\nid = \"1\"\npassword = \"\"\n",
        "agents[0].password",
    );
    error_naming(
        "[[agents]]\nid = \"1\"\npassword = \"x\"\ndial_permissions = [\"national\", \"national\"]\n",
        "agents[0].dial_permissions[1]",
    );
}

#[test]
fn agent_dial_permissions_default_to_internal() -> TestResult {
    let c = parse(AGENTS)?;
    assert!(c.agents[0].may_dial(DialPermission::Internal));
    assert!(!c.agents[0].may_dial(DialPermission::National));
    let id: AgentId = "1002".parse()?;
    assert_eq!(c.agent(&id).map(|a| a.password.expose()), Some("b"));
    Ok(())
}

#[test]
fn trunk_defaults_and_registration() -> TestResult {
    let c = parse(
        r#"
[[trunks]]
name = "udp-carrier"
peer = "192.0.2.10:5060"
caller_id = "+15550199"
[trunks.register]
username = "acct"
password = "secret"

[[trunks]]
name = "tcp-carrier"
peer = "[2001:db8::1]:5061"
transport = "tcp"
sources = ["2001:db8::/32", "198.51.100.7"]
[trunks.register]
username = "acct2"
password = "secret2"
registrar = "sip:registrar.example.net"
expires_secs = 600
auth_username = "auth2"
"#,
    )?;
    let udp = &c.trunks[0];
    assert_eq!(udp.transport, Transport::Udp);
    assert!(udp.sources.is_empty());
    assert_eq!(udp.caller_id, Some("+15550199".parse()?));
    let reg = udp.register.as_ref().ok_or("no registration")?;
    assert_eq!(reg.registrar, "sip:192.0.2.10:5060");
    assert_eq!(reg.expires, Duration::from_secs(3600));
    assert_eq!(reg.auth_username, "acct");

    let tcp = &c.trunks[1];
    assert_eq!(tcp.sources.len(), 2);
    let reg = tcp.register.as_ref().ok_or("no registration")?;
    assert_eq!(reg.registrar, "sip:registrar.example.net");
    assert_eq!(reg.expires, Duration::from_secs(600));
    assert_eq!(reg.auth_username, "auth2");

    assert_eq!(
        c.trunk_for_source("[2001:db8:5::9]:40000".parse()?)
            .map(|t| t.name.as_str()),
        Some("tcp-carrier")
    );
    assert_eq!(
        c.trunk_for_source("192.0.2.10:5060".parse()?)
            .map(|t| t.name.as_str()),
        Some("udp-carrier")
    );
    // The peer's IP from another port is not the trunk (agents may share it).
    assert!(c.trunk_for_source("192.0.2.10:5070".parse()?).is_none());
    assert!(c.trunk_for_source("192.0.2.11:5060".parse()?).is_none());

    // The default registrar URI of a TCP trunk says so.
    let c = parse(
        "[[trunks]]\nname = \"t\"\npeer = \"[::1]:5080\"\ntransport = \"tcp\"\n[trunks.register]\nusername = \"u\"\npassword = \"p\"\n",
    )?;
    let reg = c.trunks[0].register.as_ref().ok_or("no registration")?;
    assert_eq!(reg.registrar, "sip:[::1]:5080;transport=tcp");

    // Call credentials: the registration's unless [trunks.auth] says
    // otherwise; none without either.
    let auth = c.trunks[0].auth.as_ref().ok_or("no call credentials")?;
    assert_eq!((auth.username.as_str(), auth.password.expose()), ("u", "p"));
    let c = parse(
        "[[trunks]]\nname = \"t\"\npeer = \"192.0.2.1:5060\"\nauth = { username = \"calls\", password = \"s\" }\n[trunks.register]\nusername = \"u\"\npassword = \"p\"\nauth_username = \"reg\"\n",
    )?;
    let auth = c.trunks[0].auth.as_ref().ok_or("no call credentials")?;
    assert_eq!(
        (auth.username.as_str(), auth.password.expose()),
        ("calls", "s")
    );
    let c = parse("[[trunks]]\nname = \"t\"\npeer = \"192.0.2.1:5060\"\n")?;
    assert!(c.trunks[0].auth.is_none());
    Ok(())
}

#[test]
fn trunk_rules() {
    let base = "[[trunks]]\nname = \"a\"\npeer = \"192.0.2.1:5060\"\n";
    error_naming(&format!("{base}{base}"), "trunks[1].name");
    error_naming(
        "[[trunks]]\nname = \"a\"\npeer = \"0.0.0.0:5060\"\n",
        "trunks[0].peer",
    );
    error_naming(
        "[[trunks]]\nname = \"a\"\npeer = \"192.0.2.1:0\"\n",
        "trunks[0].peer",
    );
    error_naming(
        &format!("{base}sources = [\"192.0.2.0/24\", \"192.0.2.1/8\"]\n"),
        "trunks[0].sources[1]",
    );
    error_naming(
        &format!("{base}dids = [\"+1 555 0100\"]\n"),
        "trunks[0].dids[0]",
    );
    error_naming(
        &format!("{base}caller_id = \"anonymous\"\n"),
        "trunks[0].caller_id",
    );
    let shown = error_naming(
        &format!(
            "{base}dids = [\"+15550100\"]\n[[trunks]]\nname = \"b\"\npeer = \"192.0.2.2:5060\"\ndids = [\"+15550100\"]\n"
        ),
        "trunks[1].dids[0]",
    );
    assert!(shown.contains("already assigned to trunks[0]"), "{shown}");
    error_naming(
        &format!("{base}[trunks.register]\nusername = \"u\"\npassword = \"p\"\nregistrar = \"http://x\"\n"),
        "trunks[0].register.registrar",
    );
    error_naming(
        &format!("{base}[trunks.register]\nusername = \"u\"\npassword = \"\"\n"),
        "trunks[0].register.password",
    );
    error_naming(
        &format!("{base}[trunks.register]\nusername = \"u\"\npassword = \"p\"\nexpires_secs = 0\n"),
        "trunks[0].register.expires_secs",
    );
    error_naming(
        &format!("{base}[trunks.register]\nusername = \"u\"\npassword = \"p\"\nrealm = \"x\"\n"),
        "trunks[0].register.realm",
    );
    error_naming(
        &format!("{base}[trunks.auth]\nusername = \"\"\npassword = \"p\"\n"),
        "trunks[0].auth.username",
    );
    error_naming(
        &format!("{base}[trunks.auth]\nusername = \"u\"\npassword = \"\"\n"),
        "trunks[0].auth.password",
    );
}

#[test]
fn queue_rules() {
    let shown = error_naming(
        &format!("{AGENTS}\n[[queues]]\nname = \"q\"\nextension = \"1001\"\n"),
        "queues[0].extension",
    );
    assert!(
        shown.contains("collides with the id of agents[0]"),
        "{shown}"
    );
    error_naming(
        "[[queues]]\nname = \"a\"\nextension = \"500\"\n[[queues]]\nname = \"b\"\nextension = \"500\"\n",
        "queues[1].extension",
    );
    let shown = error_naming(
        "[[queues]]\nname = \"a\"\ndids = [\"+15550100\"]\n[[queues]]\nname = \"b\"\ndids = [\"+15550101\", \"15550100\"]\n",
        "queues[1].dids[1]",
    );
    assert!(
        shown.contains("already assigned to queues[0] (a)"),
        "{shown}"
    );
    error_naming(
        "[[queues]]\nname = \"a\"\ndids = [\"+15550100\", \"+15550100\"]\n",
        "queues[0].dids[1]",
    );
    error_naming(
        "[[queues]]\nname = \"a\"\n[[queues]]\nname = \"a\"\n",
        "queues[1].name",
    );
    error_naming(
        &format!("{AGENTS}\n[[queues]]\nname = \"q\"\nagents = [\"1001\", \"1001\"]\n"),
        "queues[0].agents[1]",
    );
    // A trunk and a queue naming the same DID is the normal inbound setup.
    assert!(parse(
        "[[trunks]]\nname = \"t\"\npeer = \"192.0.2.1:5060\"\ndids = [\"+15550100\"]\n[[queues]]\nname = \"q\"\ndids = [\"+15550100\"]\n"
    )
    .is_ok());
}

#[test]
fn api_token_rules() {
    let shown = error_naming(
        &format!("{AGENTS}\n[[api.tokens]]\ntoken = \"t\"\nrole = \"agent\"\n"),
        "api.tokens[0].agent",
    );
    assert!(shown.contains("required"), "{shown}");
    let shown = error_naming(
        &format!("{AGENTS}\n[[api.tokens]]\ntoken = \"t\"\nrole = \"qa\"\nagent = \"1001\"\n"),
        "api.tokens[0].agent",
    );
    assert!(shown.contains("only allowed"), "{shown}");
    error_naming(
        &format!("{AGENTS}\n[[api.tokens]]\ntoken = \"t\"\nrole = \"agent\"\nagent = \"1003\"\n"),
        "api.tokens[0].agent",
    );
    let shown = error_naming(
        "[[api.tokens]]\ntoken = \"same\"\nrole = \"qa\"\n[[api.tokens]]\ntoken = \"same\"\nrole = \"admin\"\n",
        "api.tokens[1].token",
    );
    assert!(!shown.contains("same\""), "token value leaked: {shown}");
    error_naming(
        "[[api.tokens]]\ntoken = \"\"\nrole = \"qa\"\n",
        "api.tokens[0].token",
    );
}

#[test]
fn api_webhooks_service_level_and_retention() -> TestResult {
    let c = parse(
        "[api]\nservice_level_secs = 30\n[[api.webhooks]]\nurl = \"http://crm.example:8081/hooks/sb?x=1#frag\"\nsecret = \"k\"\nevents = [\"call_offered\"]\n[[api.webhooks]]\nurl = \"HTTP://[::1]/\"\nsecret = \"k2\"\n[recording]\nretention_days = 90\n",
    )?;
    assert_eq!(c.api.service_level, Duration::from_secs(30));
    assert_eq!(
        c.recording.retention,
        Some(Duration::from_secs(90 * 86_400))
    );
    let hook = &c.api.webhooks[0];
    assert_eq!(
        (
            hook.url.host.as_str(),
            hook.url.port,
            hook.url.path.as_str()
        ),
        ("crm.example", 8081, "/hooks/sb?x=1")
    );
    assert_eq!(hook.events, vec!["call_offered".to_owned()]);
    assert_eq!(hook.url.to_string(), "http://crm.example:8081/hooks/sb?x=1");
    let v6 = &c.api.webhooks[1];
    assert_eq!(
        (v6.url.host.as_str(), v6.url.port, v6.url.path.as_str()),
        ("::1", 80, "/")
    );
    assert!(v6.events.is_empty());
    assert!(!format!("{c:?}").contains("k2"), "secrets are not printed");
    let defaults = parse("")?;
    assert_eq!(defaults.recording.retention, None);
    assert_eq!(defaults.api.service_level, Duration::from_secs(20));

    for (url, why) in [
        ("https://crm.example/", "only http://"),
        ("http:///x", "no host"),
        ("http://user:pw@crm.example/", "user information"),
        ("http://crm.example:0/", "port"),
        ("http://crm.example:99999/", "port"),
        ("http://crm example/", "spaces"),
    ] {
        let shown = error_naming(
            &format!("[[api.webhooks]]\nurl = {url:?}\nsecret = \"k\"\n"),
            "api.webhooks[0].url",
        );
        assert!(shown.contains(why), "{url}: {shown}");
    }
    error_naming(
        "[[api.webhooks]]\nurl = \"http://h/\"\nsecret = \"\"\n",
        "api.webhooks[0].secret",
    );
    let shown = error_naming(
        "[[api.webhooks]]\nurl = \"http://h/\"\nsecret = \"k\"\nevents = [\"call_answered\", \"call_exploded\"]\n",
        "api.webhooks[0].events[1]",
    );
    assert!(
        shown.contains("agent_state_changed"),
        "lists the types: {shown}"
    );
    error_naming("[api]\nservice_level_secs = 0\n", "api.service_level_secs");
    error_naming(
        "[recording]\nretention_days = 0\n",
        "recording.retention_days",
    );
    error_naming(
        "[recording]\nretention_days = 36501\n",
        "recording.retention_days",
    );
    Ok(())
}

#[test]
fn api_listen_must_not_collide_with_sip_tcp() {
    error_naming("[api]\nlisten = \"127.0.0.1:5060\"\n", "api.listen");
    error_naming(
        "[sip]\nlisten = [{ transport = \"tcp\", address = \"0.0.0.0:5060\" }]\n[api]\nlisten = \"127.0.0.1:5060\"\n",
        "api.listen",
    );
    // A UDP socket on the same port does not conflict with a TCP listener.
    assert!(
        parse("[sip]\nlisten = [{ transport = \"udp\", address = \"127.0.0.1:8080\" }]\n").is_ok()
    );
}

#[test]
fn secrets_are_not_in_debug_output() -> TestResult {
    let c = parse(DEMO)?;
    let dump = format!("{c:?}");
    assert!(!dump.contains("pass1001"));
    assert!(!dump.contains("admin-demo"));
    Ok(())
}

#[test]
fn summary_mentions_counts_and_addresses() -> TestResult {
    let s = parse(DEMO)?.summary();
    assert!(s.contains("3 agent(s)"), "{s}");
    assert!(s.contains("2 queue(s), 1 IVR menu(s)"), "{s}");
    assert!(s.contains("UDP 127.0.0.1:5060"), "{s}");
    assert!(s.contains("127.0.0.1:8080"), "{s}");
    Ok(())
}

// --- docs/configuration.md stays in step with the code. ---

/// The text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`, without
/// the surrounding ```toml fence.
fn docs_block(name: &str) -> Result<&'static str, String> {
    let begin = format!("<!-- {name}:begin -->\n```toml\n");
    let end = format!("```\n<!-- {name}:end -->");
    let start = DOCS
        .find(&begin)
        .ok_or_else(|| format!("docs lack {begin:?}"))?
        + begin.len();
    let len = DOCS[start..]
        .find(&end)
        .ok_or_else(|| format!("docs lack {end:?}"))?;
    Ok(&DOCS[start..start + len])
}

#[test]
fn docs_show_the_shipped_demo_file_verbatim() -> TestResult {
    assert_eq!(docs_block("demo")?, DEMO);
    Ok(())
}

#[test]
fn documented_defaults_are_the_real_defaults() -> TestResult {
    assert_eq!(parse(docs_block("defaults")?)?, parse("")?);
    Ok(())
}

/// The field names serde knows for the table at `probe`, read from the
/// unknown-field error it produces (serde lists every expected field), so
/// this test follows the structs without a hand-kept list.
fn fields_of(probe: &str) -> Result<Vec<String>, String> {
    let text = format!("{probe}\n__probe__ = 1\n");
    let message = match parse(&text) {
        Err(ConfigError::Syntax { message, .. }) => message,
        other => return Err(format!("probe {probe:?} gave {other:?}")),
    };
    let expected = message
        .split_once("expected ")
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("no field list in {message:?}"))?;
    let expected = expected.split(" (line").next().unwrap_or(expected);
    Ok(expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect())
}

#[test]
fn docs_document_every_key() -> TestResult {
    for top in fields_of("")? {
        assert!(
            DOCS.contains(&format!("## `[{top}]`")) || DOCS.contains(&format!("## `[[{top}]]`")),
            "docs/configuration.md has no section for [{top}]"
        );
    }
    let tables = [
        ("[log]", "log"),
        ("[sip]", "sip"),
        ("[[sip.listen]]", "sip.listen[]"),
        ("[sip.timers]", "sip.timers"),
        ("[registrar]", "registrar"),
        ("[auth]", "auth"),
        ("[storage]", "storage"),
        ("[media]", "media"),
        ("[recording]", "recording"),
        ("[[test_extensions]]", "test_extensions[]"),
        ("[[agents]]", "agents[]"),
        ("[[trunks]]", "trunks[]"),
        ("[[trunks]]\n[trunks.register]", "trunks[].register"),
        ("[[queues]]", "queues[]"),
        ("[[ivr]]", "ivr[]"),
        ("[api]", "api"),
        ("[[api.tokens]]", "api.tokens[]"),
        ("[[api.webhooks]]", "api.webhooks[]"),
    ];
    let mut checked = 0;
    for (probe, prefix) in tables {
        let fields = fields_of(probe)?;
        assert!(!fields.is_empty(), "no fields found for {probe}");
        for field in fields {
            let row = format!("| `{prefix}.{field}` |");
            assert!(
                DOCS.contains(&row),
                "docs/configuration.md has no row {row}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} keys checked");
    Ok(())
}

/// The Default column of each table row agrees with the defaults block, for
/// every row whose default is written as a TOML literal in backticks.
#[test]
fn documented_default_column_matches_defaults_block() -> TestResult {
    let defaults: toml::Table = toml::from_str(docs_block("defaults")?)?;
    let mut checked = 0;
    for line in DOCS.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let (Some(key), Some(default)) = (cells.first(), cells.get(2)) else {
            continue;
        };
        let key = key.trim_start_matches("| ").trim_matches('`');
        if key.contains("[]") {
            continue;
        }
        let Some(literal) = default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) else {
            continue;
        };
        // A placeholder such as "Switchboard/<version>" is prose, not a value.
        if literal.contains('<') {
            continue;
        }
        let documented: toml::Table = toml::from_str(&format!("v = {literal}"))?;
        let mut actual: Option<&toml::Value> = None;
        let mut table = &defaults;
        for part in key.split('.') {
            actual = table.get(part);
            if let Some(toml::Value::Table(inner)) = actual {
                table = inner;
            }
        }
        assert_eq!(
            Some(&documented["v"]),
            actual,
            "docs/configuration.md: default of {key} differs from the defaults block"
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} defaults checked");
    Ok(())
}

// --- Queue call flow, IVR menus, routes and the dial plan. ---

const MENU: &str =
    "[[ivr]]\nname = \"main\"\nprompt = \"main-menu\"\noptions = { \"1\" = \"queue:q\" }\n";

#[test]
fn queue_call_flow_defaults_and_settings() -> TestResult {
    let c = parse(&format!("{AGENTS}\n[[queues]]\nname = \"q\"\n"))?;
    let q = &c.queues[0];
    assert_eq!(q.greeting, Some("welcome".parse()?));
    assert_eq!(q.music.as_str(), "hold-music");
    assert_eq!(q.announce_every, Some(Duration::from_secs(30)));
    assert!(q.announce_position && q.announce_wait && q.record);
    assert_eq!(q.overflow, "message:all-agents-busy".parse()?);

    let c = parse(&format!(
        "{AGENTS}\n[[queues]]\nname = \"q\"\ngreeting = \"\"\nmusic = \"hold\"\nannounce_every_secs = 0\n\
announce_position = false\nannounce_wait = false\nrecord = false\noverflow = \"agent:1002\"\n"
    ))?;
    let q = &c.queues[0];
    assert_eq!(q.greeting, None);
    assert_eq!(q.music.as_str(), "hold");
    assert_eq!(q.announce_every, None);
    assert!(!q.announce_position && !q.announce_wait && !q.record);
    assert_eq!(q.overflow, Route::Agent("1002".parse()?));
    Ok(())
}

#[test]
fn queue_call_flow_errors_are_named() {
    let q = |extra: &str| format!("{AGENTS}\n[[queues]]\nname = \"q\"\n{extra}\n");
    let shown = error_naming(&q("greeting = \"nope\""), "queues[0].greeting");
    assert!(
        shown.contains("config/sounds/nope.wav is not a file"),
        "{shown}"
    );
    error_naming(&q("music = \"\""), "queues[0].music");
    error_naming(&q("music = \"/no/such.wav\""), "queues[0].music");
    let shown = error_naming(
        &q("announce_position = false\nannounce_wait = false"),
        "queues[0].announce_every_secs",
    );
    assert!(shown.contains("would say nothing"), "{shown}");
    error_naming(&q("overflow = \"voicemail\""), "queues[0].overflow");
    let shown = error_naming(&q("overflow = \"queue:q\""), "queues[0].overflow");
    assert!(shown.contains("itself"), "{shown}");
    let shown = error_naming(&q("overflow = \"queue:other\""), "queues[0].overflow");
    assert!(shown.contains("unknown queue other"), "{shown}");
    let shown = error_naming(&q("overflow = \"ivr:menu\""), "queues[0].overflow");
    assert!(shown.contains("unknown IVR menu menu"), "{shown}");
    error_naming(&q("overflow = \"agent:1009\""), "queues[0].overflow");
    error_naming(&q("overflow = \"message:closed\""), "queues[0].overflow");
    error_naming(
        &q("announce_every_secs = -1"),
        "queues[0].announce_every_secs",
    );
}

#[test]
fn announcements_need_their_sounds() -> TestResult {
    let dir = tempfile::tempdir()?;
    for name in ["hold-music", "welcome", "all-agents-busy"] {
        std::fs::copy(
            Path::new("config/sounds").join(format!("{name}.wav")),
            dir.path().join(format!("{name}.wav")),
        )?;
    }
    let media = format!(
        "[media]\nsounds_dir = {:?}\n",
        dir.path().display().to_string()
    );
    let shown = error_naming(
        &format!("{media}[[queues]]\nname = \"q\"\n"),
        "queues[0].announce_every_secs",
    );
    assert!(shown.contains("position.wav"), "{shown}");
    // Without announcements the queue's own sounds are enough.
    let c = parse(&format!(
        "{media}[[queues]]\nname = \"q\"\nannounce_every_secs = 0\n"
    ))?;
    assert_eq!(c.prompt_paths().len(), 3, "{:?}", c.prompt_paths());
    Ok(())
}

#[test]
fn ivr_menu_defaults_and_settings() -> TestResult {
    let c = parse(&format!("[[queues]]\nname = \"q\"\n{MENU}"))?;
    let m = &c.ivr[0];
    assert_eq!(m.name.as_str(), "main");
    assert_eq!(m.extension, None);
    assert!(m.dids.is_empty());
    assert_eq!(m.prompt.as_str(), "main-menu");
    assert_eq!(m.timeout, Duration::from_secs(5));
    assert_eq!(m.max_attempts, 3);
    assert_eq!(m.invalid_prompt, None);
    assert_eq!(m.default, Route::Hangup);
    assert_eq!(c.ivr_menu(&"main".parse()?), Some(m));
    assert_eq!(c.queue(&"q".parse()?).map(|q| q.name.as_str()), Some("q"));

    let c = parse(&format!(
        "{AGENTS}\n[[queues]]\nname = \"q\"\n\
[[ivr]]\nname = \"main\"\nextension = \"600\"\ndids = [\"15550101\"]\nprompt = \"main-menu\"\n\
timeout_secs = 8\nmax_attempts = 1\ninvalid_prompt = \"invalid-choice\"\ndefault = \"ivr:sub\"\n\
[ivr.options]\n\"1\" = \"queue:q\"\n\"0\" = \"agent:1001\"\n\"*\" = \"ivr:main\"\n\"#\" = \"message:all-agents-busy\"\n\
[[ivr]]\nname = \"sub\"\nprompt = \"hold\"\noptions = {{ \"9\" = \"hangup\" }}\n"
    ))?;
    let m = &c.ivr[0];
    assert_eq!(m.timeout, Duration::from_secs(8));
    assert_eq!(m.max_attempts, 1);
    assert_eq!(m.invalid_prompt, Some("invalid-choice".parse()?));
    assert_eq!(m.default, Route::Ivr("sub".parse()?));
    assert_eq!(m.options.keys().collect::<String>(), "#*01");
    assert_eq!(m.options[&'0'], Route::Agent("1001".parse()?));
    assert_eq!(m.options[&'*'], Route::Ivr("main".parse()?));
    let main = Route::Ivr("main".parse()?);
    assert_eq!(c.route_for("600"), Some(main.clone()));
    // Configured without '+': reached with and without it.
    assert_eq!(c.route_for("+15550101"), Some(main.clone()));
    assert_eq!(c.route_for("15550101"), Some(main));
    Ok(())
}

#[test]
fn ivr_menu_errors_are_named() {
    let m = |extra: &str| {
        format!("{AGENTS}\n[[queues]]\nname = \"q\"\n[[ivr]]\nname = \"main\"\nprompt = \"main-menu\"\n{extra}\n")
    };
    let one = "options = { \"1\" = \"queue:q\" }";
    error_naming(
        "[[ivr]]\nname = \"main\"\noptions = { \"1\" = \"hangup\" }\n",
        "ivr[0].prompt",
    );
    error_naming(&m(&format!("{one}\nprompt2 = 1")), "ivr[0].prompt2");
    error_naming(
        &format!("{MENU}{MENU}").replace("queue:q", "hangup"),
        "ivr[1].name",
    );
    error_naming(
        &m(one).replace("main-menu", "missing-menu"),
        "ivr[0].prompt",
    );
    error_naming(
        &m(&format!("{one}\ntimeout_secs = 0")),
        "ivr[0].timeout_secs",
    );
    error_naming(
        &m(&format!("{one}\nmax_attempts = 0")),
        "ivr[0].max_attempts",
    );
    error_naming(
        &m(&format!("{one}\ninvalid_prompt = \"nope\"")),
        "ivr[0].invalid_prompt",
    );
    let shown = error_naming(&m(""), "ivr[0].options");
    assert!(shown.contains("at least one key"), "{shown}");
    error_naming(&m("options = { \"12\" = \"hangup\" }"), "ivr[0].options.12");
    error_naming(&m("options = { \"A\" = \"hangup\" }"), "ivr[0].options.A");
    error_naming(&m("options = { \"1\" = \"queue\" }"), "ivr[0].options.1");
    let shown = error_naming(
        &m("options = { \"#\" = \"queue:nope\" }"),
        "ivr[0].options.#",
    );
    assert!(shown.contains("unknown queue nope"), "{shown}");
    error_naming(&m("options = { \"2\" = \"ivr:nope\" }"), "ivr[0].options.2");
    error_naming(
        &m("options = { \"3\" = \"agent:1003\" }"),
        "ivr[0].options.3",
    );
    error_naming(
        &m("options = { \"4\" = \"message:nope\" }"),
        "ivr[0].options.4",
    );
    error_naming(
        &m(&format!("{one}\ndefault = \"queue:nope\"")),
        "ivr[0].default",
    );
    error_naming(
        &m(&format!("{one}\ndefault = \"nowhere\"")),
        "ivr[0].default",
    );
}

#[test]
fn a_number_used_twice_is_named() {
    let q = "[[queues]]\nname = \"q\"\nextension = \"500\"\ndids = [\"+15550100\"]\n";
    let ivr = |keys: &str| {
        format!("{AGENTS}\n{q}[[ivr]]\nname = \"m\"\nprompt = \"main-menu\"\noptions = {{ \"1\" = \"queue:q\" }}\n{keys}\n")
    };
    let shown = error_naming(&ivr("extension = \"500\""), "ivr[0].extension");
    assert!(
        shown.contains("already assigned to queues[0] (q)"),
        "{shown}"
    );
    let shown = error_naming(&ivr("extension = \"1002\""), "ivr[0].extension");
    assert!(
        shown.contains("collides with the id of agents[1]"),
        "{shown}"
    );
    let shown = error_naming(&ivr("dids = [\"+15550100\"]"), "ivr[0].dids[0]");
    assert!(
        shown.contains("already assigned to queues[0] (q)"),
        "{shown}"
    );
    // The same DID without its '+'.
    error_naming(&ivr("dids = [\"15550100\"]"), "ivr[0].dids[0]");
    // A DID whose digits are an extension or an agent id.
    error_naming(&ivr("dids = [\"+500\"]"), "ivr[0].dids[0]");
    error_naming(&ivr("dids = [\"1001\"]"), "ivr[0].dids[0]");
    // An extension equal to the digits of a DID.
    error_naming(&ivr("extension = \"15550100\""), "ivr[0].extension");
    error_naming(
        &format!("{AGENTS}\n[[queues]]\nname = \"q\"\ndids = [\"+1001\"]\n"),
        "queues[0].dids[0]",
    );
    // Trunks compare DIDs the same way.
    error_naming(
        "[[trunks]]\nname = \"a\"\npeer = \"192.0.2.1:5060\"\ndids = [\"+15550100\"]\n\
[[trunks]]\nname = \"b\"\npeer = \"192.0.2.2:5060\"\ndids = [\"15550100\"]\n",
        "trunks[1].dids[0]",
    );
    // Test extensions must not hide a routed number either.
    let shown = error_naming(
        &format!(
            "{}[[test_extensions]]\nextension = \"15550100\"\naction = \"echo\"\n",
            ivr("")
        ),
        "test_extensions[0].extension",
    );
    assert!(shown.contains("queue:q"), "{shown}");
}

#[test]
fn hold_music_must_exist() -> TestResult {
    let shown = error_naming("[media]\nhold_music = \"nope\"\n", "media.hold_music");
    assert!(shown.contains("nope.wav"), "{shown}");
    let c = parse("[media]\nhold_music = \"hold\"\n")?;
    assert_eq!(
        c.media.prompt_path(&c.media.hold_music),
        Path::new("config/sounds/hold.wav")
    );
    Ok(())
}

#[test]
fn prompt_paths_lists_every_sound_once() -> TestResult {
    let c = parse(DEMO)?;
    let paths = c.prompt_paths();
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    for expected in [
        "prompt-test",
        "hold-music",
        "welcome",
        "all-agents-busy",
        "position",
        "wait",
        "minute",
        "minutes",
        "digit-0",
        "digit-9",
        "number-13",
        "number-90",
        "main-menu",
        "invalid-choice",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), paths.len(), "{paths:?}");
    // Every one of them is there to load.
    for p in &paths {
        assert!(p.is_file(), "{}", p.display());
    }

    // Without queues, menus or test prompts: only the hold music.
    assert_eq!(
        parse("")?.prompt_paths(),
        vec![Path::new("config/sounds/hold-music.wav").to_path_buf()]
    );
    // Routes to messages are included; quiet queues bring no announcements.
    let c = parse(
        "[[queues]]\nname = \"q\"\ngreeting = \"\"\nannounce_every_secs = 0\noverflow = \"message:hold\"\n\
[[ivr]]\nname = \"m\"\nprompt = \"main-menu\"\noptions = { \"1\" = \"message:recorded\" }\ndefault = \"message:echo-test\"\n",
    )?;
    let names: Vec<_> = c
        .prompt_paths()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "config/sounds/hold-music.wav",
            "config/sounds/hold.wav",
            "config/sounds/main-menu.wav",
            "config/sounds/recorded.wav",
            "config/sounds/echo-test.wav",
        ]
    );
    Ok(())
}
