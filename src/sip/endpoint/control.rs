//! The control API's commands, carried out on the call core.

use std::time::Instant;

use super::Endpoint;
use crate::control::{Command, ControlError, ControlErrorKind, Reply};

impl Endpoint {
    /// Carries out one command of the control API.
    pub(super) fn control(
        &mut self,
        _now: Instant,
        command: Command,
    ) -> Result<Reply, ControlError> {
        Err(ControlError::new(
            ControlErrorKind::Unavailable,
            format!("{command:?} is not available yet"),
        ))
    }
}
