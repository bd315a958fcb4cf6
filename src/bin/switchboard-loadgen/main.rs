//! Switchboard's own load generator, for benchmarks where SIPp is the
//! bottleneck: `register` (digest-authenticated registrations at a fixed
//! rate), `media` (bridged G.711/Opus call pairs with timestamped RTP) and
//! `calls` (carrier calls queued and bridged to auto-answering agents).
//!
//!   switchboard-loadgen register --target 127.0.0.1:5060 --rate 20000 --count 200000
//!   switchboard-loadgen media --target 127.0.0.1:5060 --pairs 2000 --setup-rate 200 --hold-secs 30
//!   switchboard-loadgen media --rtpengine 127.0.0.1:2223 --pairs 2000 (same, relayed by rtpengine)
//!   switchboard-loadgen calls --target 127.0.0.1:5060 --carrier 127.0.0.2:5080 --agents 1200 --rate 500

mod calls;
mod media;
mod register;
mod rtpengine;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "SIP load generator for Switchboard benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Digest-authenticated registrations at a fixed rate.
    Register(register::RegisterArgs),
    /// Call pairs bridged by the gateway's "pair" test extension, with RTP
    /// both ways; reports loss and one-way latency.
    Media(media::MediaArgs),
    /// Carrier calls through a queue to logged-in, auto-answering agents;
    /// reports calls per second, failures by kind and setup latency.
    Calls(calls::CallsArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Register(args) => register::run(args),
        Command::Media(args) => media::run(args),
        Command::Calls(args) => calls::run(args),
    }
}
