//! Object stores by URL: `file://` and plain paths, `s3://`, `gs://`, `az://` / `abfs://` and
//! `memory://`. Credentials come from the environment and each cloud's standard chain, never
//! from pipeline.yaml.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use crate::error::{Error, Result};

/// A resolved location: the store, the path prefix inside it and the URL it came from.
#[derive(Clone)]
pub struct Location {
    url: Url,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({})", self.url)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str().trim_end_matches('/'))
    }
}

impl Location {
    /// Resolves a URL or a local path (relative paths are taken from the working directory).
    pub fn parse(location: &str) -> Result<Self> {
        let url = to_url(location)?;
        let (store, prefix) = store_for(&url)?;
        Ok(Self { url, store, prefix })
    }

    /// The store holding this location.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The path of this location inside its store.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The URL of this location, always ending in `/` (a folder).
    pub fn url(&self) -> String {
        let s = self.url.as_str();
        if s.ends_with('/') {
            s.to_string()
        } else {
            format!("{s}/")
        }
    }

    /// The store's root URL (scheme and authority), as DataFusion registers object stores.
    pub fn root_url(&self) -> Url {
        let mut u = self.url.clone();
        u.set_path("");
        u.set_query(None);
        u
    }

    /// A location below this one; `rel` uses `/` separators.
    pub fn join(&self, rel: &str) -> Location {
        let mut prefix = self.prefix.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            prefix = prefix.join(part);
        }
        let mut url = self.url.clone();
        let base = self.url.path().trim_end_matches('/');
        url.set_path(&format!("{base}/{}", rel.trim_matches('/')));
        Location {
            url,
            store: Arc::clone(&self.store),
            prefix,
        }
    }

    /// The path of an object below this location.
    pub fn path_of(&self, rel: &str) -> Path {
        self.join(rel).prefix
    }

    /// The URL of an object path in this location's store.
    pub fn url_of(&self, path: &Path) -> String {
        if self.is_local() {
            return format!("file:///{}", path.as_ref());
        }
        let mut u = self.root_url();
        u.set_path(&format!("/{}", path.as_ref()));
        u.to_string()
    }

    /// True for the local filesystem, where renames are atomic.
    pub fn is_local(&self) -> bool {
        self.url.scheme() == "file"
    }
}

fn to_url(location: &str) -> Result<Url> {
    let location = location.trim();
    if location.is_empty() {
        return Err(Error::Usage("an empty location was given".into()));
    }
    if location.contains("://") {
        return Url::parse(location).map_err(|e| {
            Error::Usage(format!(
                "`{location}` is not a valid URL ({e}); use e.g. s3://bucket/prefix or a local path"
            ))
        });
    }
    let path = std::path::Path::new(location);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::Usage(format!("cannot resolve `{location}`: {e}")))?
            .join(path)
    };
    let abs = normalize(&abs);
    Url::from_directory_path(&abs)
        .map_err(|_| Error::Usage(format!("`{location}` is not a usable local path")))
}

fn normalize(p: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let stores = STORES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = stores.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(
        guard
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(InMemory::new())),
    )
}

/// Bounded retries: an unreachable endpoint or a wrong bucket fails in seconds, not minutes.
fn retry_config() -> RetryConfig {
    let max_retries = std::env::var("CRM_PIPELINE_STORE_MAX_RETRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    RetryConfig {
        max_retries,
        retry_timeout: Duration::from_secs(30),
        ..Default::default()
    }
}

fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(120))
}

fn store_for(url: &Url) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let path_in_bucket = || {
        Path::from_url_path(url.path())
            .map_err(|e| Error::Usage(format!("invalid path in `{url}`: {e}")))
    };
    let storage_err = |e: object_store::Error| Error::storage(url, explain(&e));
    match url.scheme() {
        "file" => {
            let fs_path = url
                .to_file_path()
                .map_err(|_| Error::Usage(format!("`{url}` is not a local file URL")))?;
            let prefix = Path::from_filesystem_path(&fs_path).or_else(|_| {
                // the folder may not exist yet: build the path from its components
                Path::from_url_path(url.path())
            });
            let prefix = prefix.map_err(|e| Error::Usage(format!("invalid path `{url}`: {e}")))?;
            Ok((Arc::new(LocalFileSystem::new()), prefix))
        }
        "memory" => Ok((
            memory_store(url.host_str().unwrap_or("")),
            path_in_bucket()?,
        )),
        "s3" | "s3a" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config())
                .with_client_options(client_options());
            if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                let http = endpoint.starts_with("http://");
                b = b
                    .with_endpoint(endpoint)
                    .with_allow_http(http)
                    .with_virtual_hosted_style_request(false);
            }
            Ok((Arc::new(b.build().map_err(storage_err)?), path_in_bucket()?))
        }
        "gs" | "gcs" => {
            let b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config())
                .with_client_options(client_options());
            Ok((Arc::new(b.build().map_err(storage_err)?), path_in_bucket()?))
        }
        "az" | "azure" | "abfs" | "abfss" | "adl" => {
            let b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config())
                .with_client_options(client_options());
            let store = b.build().map_err(storage_err)?;
            // abfs URLs carry the container in the user part; the path is the rest
            Ok((Arc::new(store), path_in_bucket()?))
        }
        other => Err(Error::Usage(format!(
            "unsupported URL scheme `{other}` in `{url}`: use a local path, file://, s3://, gs://, az://, abfs:// or memory://"
        ))),
    }
}

/// Turns an object-store error into a message that names the likely fix.
pub fn explain(e: &object_store::Error) -> String {
    let hint = match e {
        object_store::Error::NotFound { .. } => {
            "not found: check the URL, the bucket name and that the extract was delivered"
        }
        object_store::Error::PermissionDenied { .. } => {
            "permission denied: the credentials in the environment lack access to this bucket/prefix"
        }
        object_store::Error::Unauthenticated { .. } => {
            "not authenticated: set credentials in the environment (e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY)"
        }
        object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. } => {
            "the object changed concurrently: another run may be writing the same location"
        }
        _ => {
            let text = e.to_string();
            if text.contains("NoSuchBucket") {
                "the bucket does not exist: create it or fix the bucket name"
            } else if text.contains("error sending request") || text.contains("connect") {
                "the endpoint could not be reached: check AWS_ENDPOINT_URL / network access"
            } else if text.contains("credential")
                || text.contains("InvalidAccessKeyId")
                || text.contains("SignatureDoesNotMatch")
            {
                "the credentials were rejected: check the access key and secret in the environment"
            } else {
                "object store request failed"
            }
        }
    };
    format!("{hint} ({e})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_become_file_urls() {
        let loc = Location::parse("/tmp/x/../wh").unwrap();
        assert_eq!(loc.url(), "file:///tmp/wh/");
        assert!(loc.is_local());
        assert_eq!(loc.join("a/b").url(), "file:///tmp/wh/a/b/");
        assert_eq!(
            loc.path_of("t/period=2024-01").as_ref(),
            "tmp/wh/t/period=2024-01"
        );
    }

    #[test]
    fn memory_urls_share_a_store_per_host() {
        let a = Location::parse("memory://t1/raw").unwrap();
        let b = Location::parse("memory://t1/other").unwrap();
        assert!(Arc::ptr_eq(a.store(), b.store()));
        assert_eq!(a.prefix().as_ref(), "raw");
    }

    #[test]
    fn unknown_scheme_is_a_usage_error() {
        let err = Location::parse("ftp://x/y").unwrap_err();
        assert!(err.to_string().contains("unsupported URL scheme `ftp`"));
    }
}
