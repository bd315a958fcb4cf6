//! Command line: `switchboard serve` and `switchboard check-config`.
//!
//! Exit codes: 0 on success, 2 for a bad command line or configuration
//! (including an invalid `RUST_LOG`), 1 when the server fails while running.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, ConfigError, LogFormat, DEFAULT_CONFIG_PATH};

/// Exit code for configuration and usage errors (clap uses 2 for usage too).
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure of the running server.
const EXIT_RUNTIME: u8 = 1;

/// Switchboard: a SIP gateway for call centres.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway until interrupted (Ctrl-C).
    Serve {
        /// Configuration file.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Log line format; overrides `log.format` from the configuration.
        #[arg(long, value_name = "FORMAT")]
        log_format: Option<LogFormat>,
    },
    /// Load and validate the configuration, print a summary and exit.
    CheckConfig {
        /// Configuration file.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    /// `RUST_LOG` is set but is not a valid filter.
    #[error("RUST_LOG={value:?} is not a valid tracing filter directive: {source}")]
    RustLog {
        /// The variable's value.
        value: String,
        /// The parse error.
        source: tracing_subscriber::filter::ParseError,
    },
    /// The configured `log.level` did not parse (validation normally catches
    /// this before we get here).
    #[error("log.level={value:?} is not a valid tracing filter directive: {source}")]
    ConfigLevel {
        /// The configured value.
        value: String,
        /// The parse error.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("cannot install the log subscriber: {0}")]
    Install(String),
}

/// Entry point of the `switchboard` binary: parses the command line, runs the
/// command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout and usage errors to stderr,
            // and picks the matching exit code (0 or 2).
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(EXIT_CONFIG));
        }
    };
    match cli.command {
        Command::CheckConfig { config } => check_config(&config),
        Command::Serve { config, log_format } => serve(&config, log_format),
    }
}

fn report_config_error(path: &std::path::Path, err: &ConfigError) {
    match err {
        // Read and Syntax errors already name the file.
        ConfigError::Read { .. } | ConfigError::Syntax { .. } => eprintln!("error: {err}"),
        ConfigError::Invalid { .. } => eprintln!("error: {}: {err}", path.display()),
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            println!("configuration OK: {}", path.display());
            println!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Err(err) => {
            report_config_error(path, &err);
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn serve(path: &std::path::Path, log_format: Option<LogFormat>) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(err) => {
            report_config_error(path, &err);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let rust_log = std::env::var("RUST_LOG").ok();
    if let Err(err) = init_logging(rust_log.as_deref(), &config, log_format) {
        eprintln!("error: {err}");
        return ExitCode::from(EXIT_CONFIG);
    }
    tracing::info!(
        config = %path.display(),
        summary = %config.summary(),
        "configuration loaded"
    );

    // The signalling runs on one thread: the socket tasks and the endpoint
    // then hand messages to each other without cross-thread wake-ups, which
    // cost more than the SIP work itself (docs/performance.md). Blocking
    // work (the store) has its own thread; media will have its own workers.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(crate::server::run(config)) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Chooses the log filter: `RUST_LOG` when set and non-empty, else the
/// configured `log.level`.
pub fn log_filter(rust_log: Option<&str>, config_level: &str) -> Result<EnvFilter, LogInitError> {
    match rust_log.filter(|v| !v.trim().is_empty()) {
        Some(value) => EnvFilter::try_new(value).map_err(|source| LogInitError::RustLog {
            value: value.to_owned(),
            source,
        }),
        None => EnvFilter::try_new(config_level).map_err(|source| LogInitError::ConfigLevel {
            value: config_level.to_owned(),
            source,
        }),
    }
}

/// Chooses the log format: the command-line flag wins over the configuration.
pub fn log_format(flag: Option<LogFormat>, configured: LogFormat) -> LogFormat {
    flag.unwrap_or(configured)
}

/// Installs the global tracing subscriber. Logs go to stderr so stdout stays
/// free for command output.
pub fn init_logging(
    rust_log: Option<&str>,
    config: &Config,
    flag: Option<LogFormat>,
) -> Result<(), LogInitError> {
    let filter = log_filter(rust_log, &config.log.level)?;
    // Colour codes only for a terminal: in a file or a journal they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match log_format(flag, config.log.format) {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|err| LogInitError::Install(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_configured_format() {
        assert_eq!(
            log_format(Some(LogFormat::Json), LogFormat::Human),
            LogFormat::Json
        );
        assert_eq!(
            log_format(Some(LogFormat::Human), LogFormat::Json),
            LogFormat::Human
        );
        assert_eq!(log_format(None, LogFormat::Json), LogFormat::Json);
    }

    #[test]
    fn rust_log_wins_over_configured_level() -> Result<(), LogInitError> {
        let filter = log_filter(Some("switchboard=trace"), "warn")?;
        assert_eq!(filter.to_string(), "switchboard=trace");
        let filter = log_filter(None, "warn")?;
        assert_eq!(filter.to_string(), "warn");
        // An empty RUST_LOG counts as unset.
        let filter = log_filter(Some("  "), "debug")?;
        assert_eq!(filter.to_string(), "debug");
        Ok(())
    }

    #[test]
    fn invalid_rust_log_is_reported_as_such() {
        let err = log_filter(Some("switchboard=loud"), "info");
        assert!(matches!(err, Err(LogInitError::RustLog { .. })), "{err:?}");
    }

    #[test]
    fn command_line_parses() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["switchboard", "serve", "--log-format", "json"])?;
        match cli.command {
            Command::Serve { config, log_format } => {
                assert_eq!(config, PathBuf::from(DEFAULT_CONFIG_PATH));
                assert_eq!(log_format, Some(LogFormat::Json));
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = Cli::try_parse_from(["switchboard", "check-config", "--config", "x.toml"])?;
        match cli.command {
            Command::CheckConfig { config } => assert_eq!(config, PathBuf::from("x.toml")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["switchboard", "serve", "--log-format", "xml"]).is_err());
        Ok(())
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
