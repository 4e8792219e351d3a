//! One crate-level error type. Every variant says what failed, where, and (where it can) what to
//! do; [`Error::exit_code`] maps it to the documented process exit codes.

use std::fmt;

/// Process exit codes, documented in the README ("Exit codes").
pub mod exit_code {
    /// The run succeeded and published what it was asked to.
    pub const SUCCESS: i32 = 0;
    /// An unexpected internal failure (a bug): nothing was published.
    pub const INTERNAL: i32 = 1;
    /// Invalid configuration, SQL or command-line usage: fix the job definition and rerun.
    pub const CONFIG: i32 = 2;
    /// An error-severity data-quality check failed: nothing was published.
    pub const DATA_QUALITY: i32 = 3;
    /// A source could not be read or the warehouse could not be written: usually transient or
    /// an access problem; retrying may help.
    pub const SOURCE_OR_STORAGE: i32 = 4;
}

/// The crate's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job definition (pipeline.yaml) is invalid.
    #[error("{file}: {message}")]
    Config {
        /// The file (and line, when known) the problem is in.
        file: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The command line is invalid.
    #[error("usage: {0}")]
    Usage(String),
    /// A SQL stage is invalid or failed.
    #[error("stage `{stage}` ({file}): {message}")]
    Stage {
        /// The stage name (file stem).
        stage: String,
        /// The SQL file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A raw extract could not be read or does not have the required shape.
    #[error("source `{source_name}` at {location}: {message}")]
    Source {
        /// The source name in pipeline.yaml.
        source_name: String,
        /// The file or location.
        location: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The object store failed (missing bucket, credentials, permissions, network).
    #[error("storage error at {url}: {message}")]
    Storage {
        /// The URL being read or written.
        url: String,
        /// What failed and the likely fix.
        message: String,
    },
    /// Another run holds the period's lock.
    #[error("storage error at {url}: {message}")]
    PeriodLocked {
        /// The lock object.
        url: String,
        /// The run id of the run that holds it.
        holder: String,
        /// Who holds it since when, and what to do.
        message: String,
    },
    /// Error-severity data-quality checks failed; nothing was published.
    #[error("data-quality checks failed, nothing published: {0}")]
    DataQuality(String),
    /// A model could not be computed.
    #[error("model `{model}`: {message}")]
    Model {
        /// The model name.
        model: String,
        /// What went wrong.
        message: String,
    },
    /// An error from the query engine with the context of what was being done.
    #[error("{context}: {source}")]
    Engine {
        /// What the pipeline was doing.
        context: String,
        /// The engine's error.
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    /// An unexpected internal failure.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The documented process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. } | Error::Usage(_) | Error::Stage { .. } => exit_code::CONFIG,
            Error::DataQuality(_) => exit_code::DATA_QUALITY,
            Error::Source { .. } | Error::Storage { .. } | Error::PeriodLocked { .. } => {
                exit_code::SOURCE_OR_STORAGE
            }
            Error::Engine { source, .. } => match source.find_root() {
                datafusion::error::DataFusionError::ObjectStore(_)
                | datafusion::error::DataFusionError::IoError(_) => exit_code::SOURCE_OR_STORAGE,
                datafusion::error::DataFusionError::Plan(_)
                | datafusion::error::DataFusionError::SQL(..)
                | datafusion::error::DataFusionError::SchemaError(..) => exit_code::CONFIG,
                _ => exit_code::INTERNAL,
            },
            Error::Model { .. } | Error::Internal(_) => exit_code::INTERNAL,
        }
    }

    /// A short machine-readable category, used in run results.
    pub fn category(&self) -> &'static str {
        match self.exit_code() {
            exit_code::CONFIG => "config",
            exit_code::DATA_QUALITY => "data_quality",
            exit_code::SOURCE_OR_STORAGE => "source_or_storage",
            _ => "internal",
        }
    }

    /// Builds a configuration error.
    pub fn config(file: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Config {
            file: file.to_string(),
            message: message.to_string(),
        }
    }

    /// Builds a storage error for `url`.
    pub fn storage(url: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Storage {
            url: url.to_string(),
            message: message.to_string(),
        }
    }

    /// Builds a source error.
    pub fn source(
        source_name: impl fmt::Display,
        location: impl fmt::Display,
        message: impl fmt::Display,
    ) -> Self {
        Error::Source {
            source_name: source_name.to_string(),
            location: location.to_string(),
            message: message.to_string(),
        }
    }
}

/// The query engine's message for a user: the root cause, without DataFusion's wrapping
/// (contexts, diagnostics) or its variant names.
pub fn engine_message(e: &datafusion::error::DataFusionError) -> String {
    let root = e.find_root();
    let text = root.to_string();
    for prefix in [
        "Error during planning: ",
        "Schema error: ",
        "Execution error: ",
        "SQL error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    text
}

/// Attaches context to query-engine results.
pub trait EngineContext<T> {
    /// Wraps an engine error with a description of what was being done.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> EngineContext<T> for std::result::Result<T, datafusion::error::DataFusionError> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Engine {
            context: what(),
            source: Box::new(e),
        })
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        let url = match &e {
            object_store::Error::NotFound { path, .. } => path.clone(),
            _ => String::from("object store"),
        };
        Error::storage(url, crate::storage::explain(&e))
    }
}

impl From<crate::generate::GenerateError> for Error {
    fn from(e: crate::generate::GenerateError) -> Self {
        use crate::generate::GenerateError as G;
        match e {
            G::InvalidOptions(m) => Error::Usage(m),
            G::Store { path, source } => Error::storage(path, crate::storage::explain(&source)),
            other => Error::Internal(other.to_string()),
        }
    }
}
