//! The process: binds the sockets, restores state from the store, and runs
//! the SIP endpoint on one task that owns it. Tokio tasks here only own
//! sockets and timers and pump the sans-IO cores.

pub mod media;
mod persist;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::Config;
use crate::media::control::MediaEvent;
use crate::media::jitter::JitterConfig;
use crate::media::player::Prompt;
use crate::media::record::RecorderConfig;
use crate::media::session::SessionConfig;
use crate::net::{ListenSpec, NetError, NetEvent, NetLimits, Network, Outbound};
use crate::sip::endpoint::{Endpoint, EndpointConfig, Input, Output};
use crate::sip::flow::Flow;
use crate::storage::{BindingWriter, CallRecordWriter, StorageError, Store};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("network: {0}")]
    Net(#[from] NetError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("authentication settings: {0}")]
    Auth(#[from] crate::sip::auth::ConfigError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("media: {0}")]
    Media(#[from] media::MediaRuntimeError),
    #[error("recordings: {0}")]
    Recorder(#[from] crate::media::record::RecordError),
    #[error("prompt: {0}")]
    Prompt(#[from] crate::media::player::PromptError),
    #[error("control API: {0}")]
    Api(#[from] crate::api::ApiStartError),
}

/// Runs the gateway until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = shutdown_tx.send(true);
    });
    run_until(config, shutdown_rx).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the gateway until `shutdown` becomes true.
pub async fn run_until(
    config: Config,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServerError> {
    // This thread runs the signalling (a current-thread runtime).
    crate::os::urgent_thread("signalling");
    let store = Store::open(&config.storage.path)?;
    let stored = store.load_bindings(SystemTime::now())?;
    let (writer, writer_handle) = store.spawn_writer()?;
    let records = writer_handle.call_record_writer();
    // After the store exists: the API opens a read connection of its own.
    let (api, mut api_link) = crate::api::start(&config)?;

    let specs: Vec<ListenSpec> = config
        .sip
        .listen
        .iter()
        .map(|l| ListenSpec {
            transport: l.transport,
            address: l.address,
        })
        .collect();
    let limits = NetLimits {
        max_message_size: config.sip.max_message_size,
        tcp_idle_timeout: config.sip.tcp_idle_timeout,
        ..NetLimits::default()
    };
    let (network, events) = Network::bind(&specs, limits).await?;
    for (t, addr) in network.local_addrs() {
        info!(transport = %t, %addr, "listening");
    }

    let now = Instant::now();
    let mut endpoint_config = EndpointConfig::from_config(&config);
    // The real ports (a configured port 0 is chosen by the system).
    endpoint_config.listen = network.local_addrs();
    let prompts = load_prompts(&config)?;
    let capacity = crate::os::raise_open_file_limit();
    if let Some(media) = endpoint_config.media.as_mut() {
        media.prompts = prompts.clone();
        // Two legs per call.
        media.max_legs =
            capacity.map(|(_, calls)| usize::try_from(calls * 2).unwrap_or(usize::MAX));
    }
    endpoint_config.queues.prompts = prompts;
    let mut endpoint = Endpoint::new(endpoint_config, now)?;
    let restored = persist::restore(endpoint.registrar_mut(), now, SystemTime::now(), stored);
    info!(bindings = restored, "registrations restored");

    let (recorder, recorder_thread) = crate::media::record::spawn(RecorderConfig {
        dir: config.recording.dir.clone(),
        queue: RECORDER_QUEUE,
    })?;
    let (media_tx, media_rx) = mpsc::unbounded_channel();
    let workers = match config.media.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let media = media::MediaRuntime::start(
        workers,
        media::WorkerConfig {
            address: config.media.address,
            session: SessionConfig {
                // "Never" is a dead time no call lasts.
                dead_after: config
                    .media
                    .dead_after
                    .unwrap_or(Duration::from_secs(u64::from(u32::MAX))),
                jitter: JitterConfig::default(),
            },
            realtime: config.media.realtime,
        },
        media_tx,
        Some(recorder.clone()),
    )?;
    info!(
        workers,
        address = %config.media.address,
        rtp_ports = format!("{}-{}", config.media.rtp_ports.start(), config.media.rtp_ports.end()),
        "media workers started"
    );

    let io = Io {
        network: &network,
        writer: &writer,
        records: &records,
        media: &media,
        replies: &api_link.replies,
        events: &api_link.events,
    };
    let result = pump(
        &mut endpoint,
        &io,
        events,
        media_rx,
        &mut api_link.requests,
        &mut shutdown,
    )
    .await;

    info!("shutting down");
    api.shutdown();
    media.shutdown();
    let _ = recorder.shutdown();
    drop(recorder);
    if let Err(e) = recorder_thread.join() {
        warn!(error = %e, "finishing the recordings failed");
    }
    network.shutdown().await;
    if let Err(e) = writer_handle.close() {
        warn!(error = %e, "flushing the store at shutdown failed");
    }
    result
}

/// Recorder write batches (one per media worker tick) that may wait: 5 s of
/// ticks for two workers, so a slow disk for a moment loses nothing, and
/// at most ~320 MiB at 2,000 recorded calls (a batch holds one 640-byte
/// chunk per call of its worker).
const RECORDER_QUEUE: usize = 500;

/// Every prompt the configuration plays, loaded once; a missing or
/// unreadable file stops the start with an error naming it.
fn load_prompts(config: &Config) -> Result<HashMap<PathBuf, Prompt>, ServerError> {
    let mut prompts = HashMap::new();
    for path in config.prompt_paths() {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prompt = Prompt::load(&name, &path)?;
        prompts.insert(path, prompt);
    }
    Ok(prompts)
}

/// Where the endpoint's outputs go.
struct Io<'a> {
    network: &'a Network,
    writer: &'a BindingWriter,
    /// Finished calls' records: `persist::record_call(io.records, record)`.
    records: &'a CallRecordWriter,
    media: &'a media::MediaRuntime,
    /// Answers to the control API's commands, and the event hub.
    replies: &'a crate::api::ControlReplier,
    events: &'a crate::api::EventHub,
}

/// The endpoint's task: feeds it network events, media events and
/// timeouts, and carries out what it asks for.
async fn pump(
    endpoint: &mut Endpoint,
    io: &Io<'_>,
    mut events: mpsc::Receiver<NetEvent>,
    mut media_events: mpsc::UnboundedReceiver<MediaEvent>,
    control: &mut crate::api::ControlReceiver,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServerError> {
    loop {
        let deadline = endpoint.poll_timeout();
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return Ok(()) };
                let (now, wall) = (Instant::now(), SystemTime::now());
                handle_event(endpoint, now, wall, event);
                // Drain what else is queued before sleeping again: one wake-up
                // serves a burst.
                while let Ok(event) = events.try_recv() {
                    handle_event(endpoint, now, wall, event);
                    flush(endpoint, io);
                }
            }
            Some(event) = media_events.recv() => {
                let (now, wall) = (Instant::now(), SystemTime::now());
                endpoint.handle_input(now, wall, Input::Media(event));
                while let Ok(event) = media_events.try_recv() {
                    endpoint.handle_input(now, wall, Input::Media(event));
                }
            }
            Some((id, command)) = control.recv() => {
                let (now, wall) = (Instant::now(), SystemTime::now());
                endpoint.handle_input(now, wall, Input::Control { id, command });
                while let Some((id, command)) = control.try_recv() {
                    endpoint.handle_input(now, wall, Input::Control { id, command });
                }
            }
            () = sleep_until(deadline) => {
                endpoint.handle_timeout(Instant::now(), SystemTime::now());
            }
            _ = shutdown.changed() => break,
        }
        flush(endpoint, io);
    }
    // Un-register from trunks and let the last transactions finish, for a
    // bounded time: a carrier that does not answer must not hold the exit.
    endpoint.shutdown(Instant::now());
    flush(endpoint, io);
    let give_up = Instant::now() + SHUTDOWN_GRACE;
    while !endpoint.is_idle() && Instant::now() < give_up {
        let deadline = endpoint.poll_timeout().map_or(give_up, |d| d.min(give_up));
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                handle_event(endpoint, Instant::now(), SystemTime::now(), event);
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                endpoint.handle_timeout(Instant::now(), SystemTime::now());
            }
            Some(event) = media_events.recv() => {
                endpoint.handle_input(Instant::now(), SystemTime::now(), Input::Media(event));
            }
        }
        flush(endpoint, io);
    }
    Ok(())
}

/// How long shutdown waits for trunks to acknowledge un-registration.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

fn handle_event(endpoint: &mut Endpoint, now: Instant, wall: SystemTime, event: NetEvent) {
    let flow_of = |i: &crate::net::Inbound| Flow {
        transport: i.transport,
        local: i.local,
        remote: i.remote,
        connection: i.connection,
    };
    match event {
        NetEvent::Message(inbound) => {
            let flow = flow_of(&inbound);
            endpoint.handle_input(
                now,
                wall,
                Input::Message {
                    flow,
                    data: inbound.data,
                },
            );
        }
        NetEvent::Oversized { inbound } => {
            let flow = flow_of(&inbound);
            endpoint.handle_input(
                now,
                wall,
                Input::Oversized {
                    flow,
                    head: inbound.data,
                },
            );
        }
        NetEvent::SendFailed {
            destination, error, ..
        } => {
            warn!(%destination, %error, "send failed");
        }
        NetEvent::ConnectionClosed { .. } => {}
    }
}

fn flush(endpoint: &mut Endpoint, io: &Io<'_>) {
    while let Some(output) = endpoint.poll_output() {
        match output {
            Output::Media(command) => io.media.send(command),
            Output::Transmit { flow, data } => io.network.send(Outbound {
                transport: flow.transport,
                destination: flow.remote,
                connection: flow.connection,
                data,
            }),
            Output::Registrar(event) => persist::apply(io.writer, event),
            Output::CallRecord(record) => persist::record_call(io.records, record),
            Output::ControlReply { id, result } => io.replies.reply(id, result),
            Output::Event(event) => {
                io.events.publish(event);
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn loads_every_prompt_of_the_demo_configuration() -> TestResult {
        let config = Config::from_toml_str(
            include_str!("../../config/switchboard.toml"),
            std::path::Path::new("switchboard.toml"),
        )?;
        let prompts = load_prompts(&config)?;
        assert_eq!(prompts.len(), config.prompt_paths().len());
        let menu = config.media.prompt_path(&"main-menu".parse()?);
        assert_eq!(prompts.get(&menu).map(Prompt::name), Some("main-menu"));
        Ok(())
    }

    #[test]
    fn an_unreadable_prompt_stops_the_start_naming_the_file() -> TestResult {
        let dir = tempfile::tempdir()?;
        let bad = dir.path().join("hold-music.wav");
        std::fs::write(&bad, b"not a wav file")?;
        let config = Config::from_toml_str(
            &format!(
                "[media]\nsounds_dir = {:?}\n",
                dir.path().display().to_string()
            ),
            std::path::Path::new("test.toml"),
        )?;
        match load_prompts(&config) {
            Err(err @ ServerError::Prompt(_)) => {
                assert!(
                    err.to_string().contains(&bad.display().to_string()),
                    "{err}"
                );
            }
            other => return Err(format!("expected a prompt error, got {other:?}").into()),
        }
        Ok(())
    }
}
