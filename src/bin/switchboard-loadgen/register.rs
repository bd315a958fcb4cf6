//! A lightweight SIP load generator for benchmarking the gateway when SIPp
//! itself is the bottleneck (SIPp spends ~85 % of a core at 15,000
//! registrations/s). Open loop: registrations start at a fixed rate whatever
//! the answers, each one REGISTER → 401 → REGISTER with digest credentials →
//! 200, from several UDP sockets; lost messages are retransmitted like
//! SIPp's `retrans="500"`. Prints one summary line.
//!
//!   switchboard-loadgen register --target 127.0.0.1:5060 --rate 20000 --count 200000

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use switchboard::sip::auth::{respond, Challenge};
use switchboard::sip::message::{parse, HeaderName, Message};

/// Digest-authenticated registrations at a fixed rate.
#[derive(Args)]
pub struct RegisterArgs {
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    /// Registrations started per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u32,
    /// Registrations in all.
    #[arg(long, default_value_t = 100_000)]
    count: u32,
    /// `user:password` pairs, used in turn.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1001:pass1001,1002:pass1002,1003:pass1003"
    )]
    users: Vec<String>,
    /// Local UDP sockets to spread the load over.
    #[arg(long, default_value_t = 4)]
    sockets: usize,
}

/// One registration in flight.
struct Pending {
    started: Instant,
    last_sent: Instant,
    /// The last request sent, resent on loss.
    request: Vec<u8>,
    socket: usize,
    user: usize,
    retransmissions: u32,
}

const RETRANSMIT_AFTER: Duration = Duration::from_millis(500);
const GIVE_UP_AFTER: Duration = Duration::from_secs(32);

/// `run` keeps ids unique across runs against the same gateway: its
/// transactions outlive a run by 32 s, and a reused From tag, Call-ID and
/// CSeq would rightly be answered 482 (merged request, RFC 3261 §8.2.2.2).
fn register_text(
    target: SocketAddr,
    local: SocketAddr,
    user: &str,
    (run, n): (u32, u32),
    cseq: u32,
    auth: &str,
) -> Vec<u8> {
    format!(
        "REGISTER sip:{target} SIP/2.0\r\n\
Via: SIP/2.0/UDP {local};branch=z9hG4bK-lg-{run:x}-{n}-{cseq};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:{user}@{ip}>;tag=lg{run:x}-{n}\r\nTo: <sip:{user}@{ip}>\r\n\
Call-ID: lg-{n}-{run:x}@{ip}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{local}>\r\n\
Expires: 3600\r\n{auth}User-Agent: switchboard-loadgen\r\nContent-Length: 0\r\n\r\n",
        ip = target.ip(),
    )
    .into_bytes()
}

pub fn run(args: RegisterArgs) -> ExitCode {
    let RegisterArgs {
        target,
        rate,
        count,
        users,
        sockets,
    } = args;
    let users: Vec<(String, String)> = users
        .iter()
        .filter_map(|u| u.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect();
    if users.is_empty() || rate == 0 || sockets == 0 {
        eprintln!("need at least one user:password, a rate and a socket");
        return ExitCode::from(2);
    }
    let mut socks = Vec::new();
    for _ in 0..sockets {
        let bound = UdpSocket::bind(SocketAddr::new(target.ip(), 0)).and_then(|s| {
            s.set_nonblocking(true)?;
            Ok(s)
        });
        match bound {
            Ok(s) => socks.push(s),
            Err(e) => {
                eprintln!("cannot bind a UDP socket: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let locals: Vec<SocketAddr> = socks.iter().filter_map(|s| s.local_addr().ok()).collect();
    let interval = Duration::from_secs(1) / rate;
    let run: u32 = rand::random();
    let start = Instant::now();
    let mut pending: HashMap<u32, Pending> = HashMap::new();
    let (mut started, mut ok, mut failed, mut timed_out, mut retrans) =
        (0u32, 0u32, 0u32, 0u32, 0u64);
    let mut latencies: Vec<Duration> = Vec::with_capacity(count as usize);
    let mut buf = vec![0u8; 65_536];
    let mut last_sweep = start;
    let mut failures: std::collections::BTreeMap<u16, u32> = std::collections::BTreeMap::new();
    while ok + failed + timed_out < count {
        let now = Instant::now();
        // Open loop: start every registration that is due by now.
        while started < count && start + interval * started <= now {
            let n = started;
            let (s, u) = (n as usize % socks.len(), n as usize % users.len());
            let request = register_text(target, locals[s], &users[u].0, (run, n), 1, "");
            let _ = socks[s].send_to(&request, target);
            pending.insert(
                n,
                Pending {
                    started: now,
                    last_sent: now,
                    request,
                    socket: s,
                    user: u,
                    retransmissions: 0,
                },
            );
            started += 1;
        }
        let mut idle = true;
        for s in 0..socks.len() {
            loop {
                let len = match socks[s].recv_from(&mut buf) {
                    Ok((len, _)) => len,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                };
                idle = false;
                let Ok(Message::Response(resp)) = parse(&buf[..len]) else {
                    continue;
                };
                let Some(n) = resp
                    .headers
                    .call_id
                    .as_str()
                    .strip_prefix("lg-")
                    .and_then(|r| r.split('-').next())
                    .and_then(|r| r.parse::<u32>().ok())
                else {
                    continue;
                };
                if resp.status < 200 {
                    continue;
                }
                let Some(p) = pending.get_mut(&n) else {
                    continue;
                };
                match (resp.status, resp.headers.cseq.seq) {
                    (401, 1) => {
                        let challenge = resp
                            .headers
                            .get(&HeaderName::WwwAuthenticate)
                            .and_then(|v| Challenge::parse(v).ok());
                        let (user, password) = &users[p.user];
                        let uri = format!("sip:{target}");
                        let creds = challenge.and_then(|c| {
                            respond(&c, "REGISTER", &uri, user, password, "lgcnonce", 1).ok()
                        });
                        let Some(creds) = creds else {
                            pending.remove(&n);
                            failed += 1;
                            continue;
                        };
                        let auth = format!("Authorization: {}\r\n", creds.to_header_value());
                        p.request =
                            register_text(target, locals[p.socket], user, (run, n), 2, &auth);
                        p.last_sent = Instant::now();
                        let _ = socks[p.socket].send_to(&p.request, target);
                    }
                    (200, 2) => {
                        latencies.push(p.started.elapsed());
                        pending.remove(&n);
                        ok += 1;
                    }
                    // A retransmitted 401 or 200 of an earlier step.
                    (401, _) | (200, _) => {}
                    (status, _) => {
                        pending.remove(&n);
                        failed += 1;
                        *failures.entry(status).or_insert(0u32) += 1;
                    }
                }
            }
        }
        if now.duration_since(last_sweep) > Duration::from_millis(50) {
            last_sweep = now;
            pending.retain(|_, p| {
                if now.duration_since(p.started) > GIVE_UP_AFTER {
                    timed_out += 1;
                    return false;
                }
                if now.duration_since(p.last_sent)
                    > RETRANSMIT_AFTER * (1 << p.retransmissions.min(3))
                {
                    let _ = socks[p.socket].send_to(&p.request, target);
                    p.last_sent = now;
                    p.retransmissions += 1;
                    retrans += 1;
                }
                true
            });
        }
        if idle && started >= count {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "rate={rate} count={count} ok={ok} failed={failed} timed_out={timed_out} retransmissions={retrans} \
elapsed_s={elapsed:.2} achieved_per_s={:.0} latency_ms_p50={:.2} p99={:.2} failures_by_status={failures:?}",
        f64::from(ok) / elapsed,
        pct(0.5),
        pct(0.99)
    );
    if failed + timed_out == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
