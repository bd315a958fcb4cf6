//! Webhooks (`[[api.webhooks]]`): every event (or those whose type the
//! webhook lists) is POSTed as the same JSON the event stream sends,
//! signed with HMAC-SHA256 (RFC 2104) over the body:
//!
//! ```text
//! POST /hook HTTP/1.1
//! Content-Type: application/json
//! X-Switchboard-Event: call_answered
//! X-Switchboard-Delivery: 42
//! X-Switchboard-Signature: sha256=<hex of HMAC-SHA256(secret, body)>
//! ```
//!
//! Each webhook has its own task reading the event hub in order, so the
//! call core never waits for a receiver: a slow or unreachable receiver
//! only falls behind, and events that leave the hub's retention window
//! before it catches up are counted as dropped. A failed delivery (no
//! connection, a timeout, 5xx, 408, 429) is retried with exponential
//! backoff, [`MAX_ATTEMPTS`] attempts in all; other 4xx answers are final.
//!
//! Plain `http://` only: put a TLS-terminating proxy in front of an https
//! receiver (docs/api.md).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::events::{Backlog, EventHub, StampedEvent};
use super::metrics::ApiCounters;
use crate::config::{Webhook, WebhookUrl};

/// Attempts per event, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Wait before the first retry; doubled each time (1, 2, 4, 8 s).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Connect, send and read the status line within this.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response head read (only the status line is used).
const MAX_RESPONSE_HEAD: usize = 8192;
/// Events read from the hub at a time.
const BATCH: usize = 64;

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),
    #[error("no answer within {ATTEMPT_TIMEOUT:?}")]
    Timeout,
    #[error("the answer is not HTTP/1.x")]
    BadResponse,
}

/// `sha256=<hex>` of HMAC-SHA256 of `body` with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length (RFC 2104 §2), so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// One POST over a fresh connection (`Connection: close`); returns the
/// status code.
pub async fn post(
    url: &WebhookUrl,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<u16, DeliveryError> {
    tokio::time::timeout(ATTEMPT_TIMEOUT, async {
        let mut stream = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(DeliveryError::Connect)?;
        let host = if url.host.contains(':') {
            format!("[{}]:{}", url.host, url.port)
        } else {
            format!("{}:{}", url.host, url.port)
        };
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Switchboard\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            url.path,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.map_err(DeliveryError::Io)?;
        stream.write_all(body).await.map_err(DeliveryError::Io)?;
        stream.flush().await.map_err(DeliveryError::Io)?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 512];
        // RFC 9112 §4: status-line = HTTP-version SP status-code SP [reason]
        while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < MAX_RESPONSE_HEAD {
            let n = stream.read(&mut chunk).await.map_err(DeliveryError::Io)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let line = buf.split(|b| *b == b'\r').next().unwrap_or_default();
        let line = std::str::from_utf8(line).map_err(|_| DeliveryError::BadResponse)?;
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next()) {
            (Some(version), Some(code))
                if version.starts_with("HTTP/1.") && code.len() == 3 =>
            {
                code.parse().map_err(|_| DeliveryError::BadResponse)
            }
            _ => Err(DeliveryError::BadResponse),
        }
    })
    .await
    .unwrap_or(Err(DeliveryError::Timeout))
}

/// Whether an answer is worth retrying.
fn retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// How delivering one event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Delivered,
    Failed,
    Stopped,
}

async fn deliver(
    hook: &Webhook,
    event: &StampedEvent,
    counters: &ApiCounters,
    shutdown: &mut watch::Receiver<bool>,
    first_backoff: Duration,
) -> Delivery {
    let body = match serde_json::to_vec(event) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "webhook: event not serialisable");
            return Delivery::Failed;
        }
    };
    let headers = [
        ("X-Switchboard-Event", event.kind().to_owned()),
        ("X-Switchboard-Delivery", event.seq.to_string()),
        (
            "X-Switchboard-Signature",
            signature(hook.secret.expose().as_bytes(), &body),
        ),
    ];
    let mut backoff = first_backoff;
    for attempt in 1..=MAX_ATTEMPTS {
        let outcome = post(&hook.url, &headers, &body).await;
        match outcome {
            Ok(status) if (200..300).contains(&status) => return Delivery::Delivered,
            Ok(status) if !retryable(status) => {
                tracing::warn!(url = %hook.url, status, seq = event.seq, "webhook refused the event");
                return Delivery::Failed;
            }
            Ok(status) => {
                tracing::debug!(url = %hook.url, status, attempt, "webhook delivery failed");
            }
            Err(e) => {
                tracing::debug!(url = %hook.url, error = %e, attempt, "webhook delivery failed");
            }
        }
        if attempt == MAX_ATTEMPTS {
            break;
        }
        counters.webhook_retries.inc();
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return Delivery::Stopped,
        }
        backoff *= 2;
    }
    tracing::warn!(url = %hook.url, seq = event.seq, "webhook did not take the event after {MAX_ATTEMPTS} attempts");
    Delivery::Failed
}

/// Delivers the events published from now on (from the moment this is
/// called, not when the future first runs) to `hook`, until `shutdown`.
pub fn run(
    hook: Webhook,
    hub: EventHub,
    counters: Arc<ApiCounters>,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> {
    let start = hub.latest();
    run_from(hook, hub, counters, shutdown, FIRST_BACKOFF, start)
}

async fn run_from(
    hook: Webhook,
    hub: EventHub,
    counters: Arc<ApiCounters>,
    mut shutdown: watch::Receiver<bool>,
    first_backoff: Duration,
    start: u64,
) {
    let mut wake = hub.watch();
    let mut cursor = start;
    loop {
        let events = match hub.after(cursor, BATCH) {
            Backlog::Events(events) => events,
            Backlog::Gap { missed, events, .. } => {
                counters.webhook_dropped.add(missed);
                tracing::warn!(url = %hook.url, missed, "webhook fell behind the event retention window");
                events
            }
        };
        if events.is_empty() {
            tokio::select! {
                changed = wake.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        for event in events {
            cursor = event.seq;
            if !hook.events.is_empty() && !hook.events.iter().any(|t| t == event.kind()) {
                continue;
            }
            match deliver(&hook, &event, &counters, &mut shutdown, first_backoff).await {
                Delivery::Delivered => counters.webhook_delivered.inc(),
                Delivery::Failed => counters.webhook_failed.inc(),
                Delivery::Stopped => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::config::Secret;
    use crate::control::Event;
    use tokio::net::TcpListener;

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// A receiver on loopback answering each request with the next status
    /// of `statuses`, reporting each request it read.
    async fn receiver(
        statuses: Vec<u16>,
    ) -> (WebhookUrl, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for status in statuses {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then the body by Content-Length.
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if req.len() >= end + 4 + len {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                tx.send(String::from_utf8_lossy(&req).into_owned()).unwrap();
                let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (
            WebhookUrl {
                host: "127.0.0.1".into(),
                port,
                path: "/hooks/sb?x=1".into(),
            },
            rx,
        )
    }

    fn hook(url: WebhookUrl, events: &[&str]) -> Webhook {
        Webhook {
            url,
            secret: Secret::new("s3cret"),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[tokio::test]
    async fn events_are_posted_signed_filtered_and_retried() {
        // 503 then 200 for the first event; 200 for the second.
        let (url, mut requests) = receiver(vec![503, 200, 200]).await;
        let hub = EventHub::default();
        let counters = Arc::new(ApiCounters::default());
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run_from(
            hook(url, &["call_answered", "call_ended"]),
            hub.clone(),
            counters.clone(),
            stop,
            Duration::from_millis(10),
            hub.latest(),
        ));
        hub.publish(Event::CallAnswered {
            call: 1,
            agent: "1001".into(),
        });
        // Not in the webhook's list: skipped.
        hub.publish(Event::CallHeld {
            call: 1,
            agent: "1001".into(),
        });
        hub.publish(Event::CallEnded {
            call: 1,
            agent: Some("1001".into()),
            outcome: "answered".into(),
        });
        let first = requests.recv().await.unwrap();
        let retried = requests.recv().await.unwrap();
        let second = requests.recv().await.unwrap();
        assert_eq!(first, retried, "the same event again");
        assert!(
            first.starts_with("POST /hooks/sb?x=1 HTTP/1.1\r\n"),
            "{first}"
        );
        assert!(first.contains("X-Switchboard-Event: call_answered\r\n"));
        assert!(first.contains("X-Switchboard-Delivery: 1\r\n"));
        let body = first.split("\r\n\r\n").nth(1).unwrap();
        let sig = format!(
            "X-Switchboard-Signature: {}\r\n",
            signature(b"s3cret", body.as_bytes())
        );
        assert!(first.contains(&sig), "{first}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["type"], "call_answered");
        assert_eq!(json["seq"], 1);
        assert!(second.contains("X-Switchboard-Delivery: 3\r\n"), "{second}");
        // Wait for the last delivery to be counted.
        for _ in 0..100 {
            if counters.webhook_delivered.get() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counters.webhook_delivered.get(), 2);
        assert_eq!(counters.webhook_retries.get(), 1);
        assert_eq!(counters.webhook_failed.get(), 0);
        stop_tx.send_replace(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_webhook_behind_the_retention_window_counts_the_drops() {
        let (url, mut requests) = receiver(vec![200, 200]).await;
        let hub = EventHub::new(2, Duration::from_secs(3600));
        let counters = Arc::new(ApiCounters::default());
        // Five events before the task reads any: the hub kept the last two.
        for call in 1..=5 {
            hub.publish(Event::CallHeld {
                call,
                agent: "1001".into(),
            });
        }
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run_from(
            hook(url, &[]),
            hub.clone(),
            counters.clone(),
            stop,
            Duration::from_millis(10),
            0,
        ));
        for seq in [4, 5] {
            let request = requests.recv().await.unwrap();
            assert!(request.contains(&format!("X-Switchboard-Delivery: {seq}\r\n")));
        }
        for _ in 0..100 {
            if counters.webhook_delivered.get() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counters.webhook_dropped.get(), 3);
        assert_eq!(counters.webhook_delivered.get(), 2);
        stop_tx.send_replace(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_refusing_receiver_fails_the_event_without_retries() {
        let (url, mut requests) = receiver(vec![400]).await;
        let hub = EventHub::default();
        let counters = Arc::new(ApiCounters::default());
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run_from(
            hook(url, &[]),
            hub.clone(),
            counters.clone(),
            stop,
            Duration::from_millis(10),
            hub.latest(),
        ));
        hub.publish(Event::CallHeld {
            call: 1,
            agent: "1001".into(),
        });
        requests.recv().await.unwrap();
        for _ in 0..100 {
            if counters.webhook_failed.get() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counters.webhook_failed.get(), 1);
        assert_eq!(counters.webhook_retries.get(), 0);
        stop_tx.send_replace(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_receiver_is_retried_then_given_up() {
        // A port nobody listens on: bind, note the port, close.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let url = WebhookUrl {
            host: "127.0.0.1".into(),
            port,
            path: "/".into(),
        };
        let hub = EventHub::default();
        let counters = Arc::new(ApiCounters::default());
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run_from(
            hook(url, &[]),
            hub.clone(),
            counters.clone(),
            stop,
            Duration::from_millis(1),
            hub.latest(),
        ));
        hub.publish(Event::CallHeld {
            call: 1,
            agent: "1001".into(),
        });
        for _ in 0..500 {
            if counters.webhook_failed.get() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counters.webhook_failed.get(), 1);
        assert_eq!(counters.webhook_retries.get(), u64::from(MAX_ATTEMPTS - 1));
        stop_tx.send_replace(true);
        task.await.unwrap();
    }
}
