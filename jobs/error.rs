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
        /// What is wrong, for people (the engine's root message when it comes from the engine).
        message: String,
        /// The engine's error, when it comes from the engine.
        #[source]
        cause: Option<Box<datafusion::error::DataFusionError>>,
    },
    /// A raw extract could not be read or does not have the required shape.
    #[error("source `{source_name}` at {location}: {message}{}", cause_suffix(.cause.as_deref()))]
    Source {
        /// The source name in pipeline.yaml.
        source_name: String,
        /// The file or location.
        location: String,
        /// What is wrong and what to do.
        message: String,
        /// The store's error, when reading failed in the store.
        #[source]
        cause: Option<Box<object_store::Error>>,
    },
    /// The object store failed (missing bucket, credentials, permissions, network), or a local
    /// file operation of the warehouse did.
    #[error("storage error at {url}: {message}{}", cause_suffix(.cause.as_deref()))]
    Storage {
        /// The URL being read or written.
        url: String,
        /// What failed and the likely fix.
        message: String,
        /// The store's error, when it comes from the store.
        #[source]
        cause: Option<Box<object_store::Error>>,
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
    /// A model's settings do not fit its inputs (a user-defined scheme's rule that does not
    /// parse, names an unknown column or is not a condition): found by the model, reported
    /// with the job file by the caller ([`crate::job::Job::err`]).
    #[error("`{key}`: {message}")]
    ModelConfig {
        /// The configuration key, e.g. `models.custom_schemes`.
        key: String,
        /// What is wrong, naming the scheme and the rule.
        message: String,
    },
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
    /// An error with what the job was doing when it happened; the exit code is the cause's.
    #[error("{context}: {source}")]
    Context {
        /// What was being done, and what became of it.
        context: String,
        /// The error.
        #[source]
        source: Box<Error>,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The documented process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. }
            | Error::ModelConfig { .. }
            | Error::Usage(_)
            | Error::Stage { .. } => exit_code::CONFIG,
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
            Error::Context { source, .. } => source.exit_code(),
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

    /// Builds a storage error for `url` without a store error behind it (a local file
    /// operation, a broken record).
    pub fn storage(url: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Storage {
            url: url.to_string(),
            message: message.to_string(),
            cause: None,
        }
    }

    /// The error of a store operation on `url`, with the likely fix; the store's error is kept
    /// as the source.
    pub fn store(url: impl fmt::Display, e: object_store::Error) -> Self {
        Error::Storage {
            url: url.to_string(),
            message: storage_hint(&e).to_string(),
            cause: Some(Box::new(e)),
        }
    }

    /// Builds a stage error that is not the engine's (a template problem).
    pub fn stage(stage: &str, file: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Stage {
            stage: stage.to_string(),
            file: file.to_string(),
            message: message.to_string(),
            cause: None,
        }
    }

    /// Whether the query engine ran out of memory (its memory pool refused a reservation),
    /// wherever the engine's error is kept.
    pub fn is_out_of_memory(&self) -> bool {
        let engine = match self {
            Error::Context { source, .. } => return source.is_out_of_memory(),
            Error::Stage { cause: Some(c), .. } => c.as_ref(),
            Error::Engine { source, .. } => source.as_ref(),
            _ => return false,
        };
        matches!(
            engine.find_root(),
            datafusion::error::DataFusionError::ResourcesExhausted(_)
        )
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
            cause: None,
        }
    }

    /// A source that could not be read from its store, with the likely fix; the store's error
    /// is kept as the source.
    pub fn source_store(
        source_name: impl fmt::Display,
        location: impl fmt::Display,
        e: object_store::Error,
    ) -> Self {
        Error::Source {
            source_name: source_name.to_string(),
            location: location.to_string(),
            message: storage_hint(&e).to_string(),
            cause: Some(Box::new(e)),
        }
    }

    /// Wraps the error with what was being done.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error::Context {
            context: context.to_string(),
            source: Box::new(self),
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

/// `" (<the store's error>)"` after a storage message, when a store error is behind it.
fn cause_suffix(cause: Option<&object_store::Error>) -> String {
    cause.map(|c| format!(" ({c})")).unwrap_or_default()
}

/// Attaches where a store operation failed: `.at(url)` turns an object_store error into a
/// storage error naming the URL and the likely fix ([`storage_hint`]), keeping the store's error
/// as its source.
pub trait StoreContext<T> {
    /// The error of a store operation on `url`.
    fn at(self, url: impl fmt::Display) -> Result<T>;
}

impl<T> StoreContext<T> for std::result::Result<T, object_store::Error> {
    fn at(self, url: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::store(url, e))
    }
}

/// Attaches the SQL stage an engine error happened in: `.in_stage(name, file)`.
pub trait StageContext<T> {
    /// The error of stage `stage`, read from `file`.
    fn in_stage(self, stage: &str, file: impl fmt::Display) -> Result<T>;
}

impl<T> StageContext<T> for std::result::Result<T, datafusion::error::DataFusionError> {
    fn in_stage(self, stage: &str, file: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::Stage {
            stage: stage.to_string(),
            file: file.to_string(),
            message: engine_message(&e),
            cause: Some(Box::new(e)),
        })
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        let url = match &e {
            object_store::Error::NotFound { path, .. } => path.clone(),
            _ => String::from("object store"),
        };
        Error::store(url, e)
    }
}

/// The likely fix for an object-store error, for people at 3 a.m.
pub fn storage_hint(e: &object_store::Error) -> &'static str {
    let text = format!("{e:?} {e}");
    let has = |needle: &str| text.contains(needle);
    if has("NoSuchBucket") {
        "the bucket does not exist: fix the bucket name in the URL or create the bucket"
    } else if matches!(e, object_store::Error::NotFound { .. }) {
        "not found: check the URL, the bucket name and that the extract was delivered"
    } else if has("InvalidAccessKeyId") || has("SignatureDoesNotMatch") {
        "the credentials were rejected: check the access key and secret (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) for this endpoint"
    } else if has("Failed to get credentials")
        || has("credential")
        || has("/latest/api/token")
        || has("/latest/meta-data")
        || has("169.254.169.254")
        || matches!(e, object_store::Error::Unauthenticated { .. })
    {
        "no usable credentials: set them in the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a role for S3, GOOGLE_APPLICATION_CREDENTIALS for GCS, AZURE_STORAGE_ACCOUNT_KEY or a managed identity for Azure) or in pipeline.yaml `stores:` as ${env:VAR} references"
    } else if has("AccessDenied")
        || has("Forbidden")
        || matches!(e, object_store::Error::PermissionDenied { .. })
    {
        "permission denied: the credentials are valid but lack access to this bucket/prefix; the warehouse needs list, read, write and delete, the raw extracts list and read"
    } else if matches!(
        e,
        object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }
    ) {
        "the object changed concurrently: another run may be writing the same location"
    } else if has("error sending request") || has("onnect") || has("dns error") || has("timed out")
    {
        "the endpoint could not be reached: check the endpoint (AWS_ENDPOINT_URL or the store's aws_endpoint), that the server is running and the network allows it"
    } else {
        "object store request failed"
    }
}
