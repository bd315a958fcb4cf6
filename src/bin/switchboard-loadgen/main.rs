//! Switchboard's own load generator, for benchmarks where SIPp is the
//! bottleneck: `register` (digest-authenticated registrations at a fixed
//! rate) and `media` (bridged G.711/Opus call pairs with timestamped RTP).
//!
//!   switchboard-loadgen register --target 127.0.0.1:5060 --rate 20000 --count 200000
//!   switchboard-loadgen media --target 127.0.0.1:5060 --pairs 2000 --setup-rate 200 --hold-secs 30
//!   switchboard-loadgen media --rtpengine 127.0.0.1:2223 --pairs 2000 (same, relayed by rtpengine)

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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Register(args) => register::run(args),
        Command::Media(args) => media::run(args),
    }
}
