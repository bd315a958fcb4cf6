//! The network runtime.

// TEMPORARY: replaced by the network runtime on merge

use crate::config::Config;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A socket or signal operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs until Ctrl-C. The placeholder opens no sockets.
pub async fn run(config: Config) -> Result<(), ServerError> {
    tracing::warn!(
        domain = %config.sip.domain,
        "placeholder server: no sockets are opened; press Ctrl-C to stop"
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
