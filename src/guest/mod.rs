//! Placeholder until the guest branch lands.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("guest")]
pub struct GuestError;

pub struct CommandPayload {
    pub command: String,
    pub bin: Option<PathBuf>,
    pub artifact: Option<PathBuf>,
}

pub fn locate_agent() -> Result<PathBuf, GuestError> {
    todo!()
}

pub fn build_initramfs(_agent: &Path, _payload: &CommandPayload) -> Result<Vec<u8>, GuestError> {
    todo!()
}
