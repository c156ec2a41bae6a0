//! The ways a command ends in failure, each with its exit status: the one
//! error type `main` turns into an exit code.

use std::fmt;
use std::process::ExitCode;

use crate::cli::USAGE;
use crate::config::ConfigError;

#[derive(Debug)]
pub enum ExitError {
    /// Arguments netio does not understand: said with the usage, status 2.
    Usage(String),
    /// A config that cannot be used: status 2, like a usage error, since
    /// nothing ran.
    Config(ConfigError),
    /// A failure already reported on stdout (`netio kernel`): status 1.
    Reported,
    /// Anything else that stops a command: status 1.
    Failed(String),
}

impl ExitError {
    /// Says what went wrong on stderr and gives the exit status.
    pub fn report(self) -> ExitCode {
        match self {
            ExitError::Usage(msg) => {
                tell!("netio: {msg}\n\n{USAGE}");
                ExitCode::from(2)
            }
            ExitError::Config(e) => {
                tell!("netio: {e}");
                ExitCode::from(2)
            }
            ExitError::Reported => ExitCode::FAILURE,
            ExitError::Failed(msg) => {
                tell!("netio: {msg}");
                ExitCode::FAILURE
            }
        }
    }

    /// A failure described by anything displayable.
    pub fn failed(e: impl fmt::Display) -> ExitError {
        ExitError::Failed(e.to_string())
    }
}

impl From<ConfigError> for ExitError {
    fn from(e: ConfigError) -> Self {
        ExitError::Config(e)
    }
}
