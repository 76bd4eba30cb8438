//! The state file: leads, API usage and sessions as JSON, written atomically (temp file + rename).
//! Knows nothing of HTTP; the shell decides when to save.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::Session;
use crate::store::StoreSnapshot;

/// Everything that survives a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersistedState {
    /// Bumped when the layout changes incompatibly.
    pub format: u32,
    pub store: StoreSnapshot,
    pub api_requests_used: u64,
    pub sessions: Vec<(String, Session)>,
}

pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    #[error("reading state file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("state file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("state file {path} has format {found}, this emulator writes {FORMAT}")]
    Format { path: PathBuf, found: u32 },
    #[error("writing state file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// `Ok(None)` when the file does not exist yet.
pub fn load(path: &Path) -> Result<Option<PersistedState>, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let state: PersistedState =
        serde_json::from_slice(&bytes).map_err(|source| PersistError::Parse {
            path: path.to_owned(),
            source,
        })?;
    if state.format != FORMAT {
        return Err(PersistError::Format {
            path: path.to_owned(),
            found: state.format,
        });
    }
    Ok(Some(state))
}

pub fn save(path: &Path, state: &PersistedState) -> Result<(), PersistError> {
    let write_error = |source| PersistError::Write {
        path: path.to_owned(),
        source,
    };
    let bytes = serde_json::to_vec(state).map_err(|error| write_error(io::Error::other(error)))?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes).map_err(write_error)?;
    // Rename is atomic, so a crash mid-write never leaves a half file behind.
    std::fs::rename(&temporary, path).map_err(write_error)
}
