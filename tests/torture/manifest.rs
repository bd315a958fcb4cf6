//! Loader for `tests/torture/manifest.toml`: what Switchboard must do with each
//! RFC 4475 torture message. Parser and UAS tests iterate over [`load`] and assert
//! against the fields; the meaning of each field is documented in the manifest
//! header and in `tests/torture/README.md`.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The directory holding the `.dat` files and the manifest.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torture")
}

/// Whether the message is a request or a response (decided by its start line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Request,
    Response,
}

/// What the gateway as a whole must do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Expect {
    /// Parses and is processed normally: the RFC names no error answer.
    #[serde(rename = "valid")]
    Valid,
    /// Parses; the RFC prescribes the non-400 answer in [`Entry::answer`].
    #[serde(rename = "valid-semantic")]
    ValidSemantic,
    /// A request answered with 400 Bad Request, whichever layer rejects it.
    #[serde(rename = "invalid-400")]
    Invalid400,
    /// Never answered: a response the RFC says to discard.
    #[serde(rename = "invalid-drop")]
    InvalidDrop,
}

/// One RFC 4475 message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// RFC message name; the file is `<name>.dat`.
    pub name: String,
    /// RFC 4475 section, e.g. `3.1.2.16`.
    pub section: String,
    pub kind: Kind,
    pub expect: Expect,
    /// `parse()` must return `Ok` for the whole buffer.
    pub must_parse: bool,
    /// Status code the RFC says a UAS/registrar sends, when it names one.
    pub answer: Option<u16>,
    /// Other status codes the RFC explicitly also allows.
    #[serde(default)]
    pub alternatives: Vec<u16>,
    /// The RFC's expectation, quoted.
    pub note: String,
}

impl Entry {
    /// Path of the message file.
    pub fn path(&self) -> PathBuf {
        dir().join(format!("{}.dat", self.name))
    }

    /// The message, bit-exact.
    pub fn bytes(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    message: Vec<Entry>,
}

/// Why the manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("manifest.toml is malformed: {0}")]
    Toml(#[from] toml::de::Error),
}

/// Every entry of the manifest, in RFC section order.
pub fn load() -> Result<Vec<Entry>, LoadError> {
    let path = dir().join("manifest.toml");
    let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
        path: path.clone(),
        source,
    })?;
    let manifest: Manifest = toml::from_str(&text)?;
    Ok(manifest.message)
}
