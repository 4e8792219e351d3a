//! Object stores by URL: `file://` and plain paths, `s3://`, `gs://`, `az://` / `abfs://` and
//! `memory://`. Credentials come from the environment and each cloud's standard chain, never
//! from pipeline.yaml in clear text. [`StoreOptions`] gives a bucket its own options (endpoint,
//! credentials) in place of the environment, e.g. raw extracts and warehouse on different
//! accounts, or tests that run against several servers in one process; it is a value the job
//! carries ([`crate::job::Job::stores`]), not a global.

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
    /// Resolves a URL or a local path (relative paths are taken from the working directory),
    /// with the environment's store settings.
    pub fn parse(location: &str) -> Result<Self> {
        Self::parse_with(location, &StoreOptions::default())
    }

    /// Resolves a URL or a local path with per-bucket store options.
    pub fn parse_with(location: &str, stores: &StoreOptions) -> Result<Self> {
        let url = to_url(location)?;
        let (store, prefix) = store_for(&url, stores)?;
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
        let mut url = Url::parse(location).map_err(|e| {
            Error::Usage(format!(
                "`{location}` is not a valid URL ({e}); use e.g. s3://bucket/prefix or a local path"
            ))
        })?;
        // `${raw}/orders/` with raw ending in `/`: an empty path segment is never meant
        if url.path().contains("//") {
            let mut path = url.path().to_string();
            while path.contains("//") {
                path = path.replace("//", "/");
            }
            url.set_path(&path);
        }
        return Ok(url);
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

/// The registry key of a URL's store: normalised scheme and bucket (`s3://bucket`).
fn store_key(url: &Url) -> String {
    let scheme = match url.scheme() {
        "s3a" => "s3",
        "gcs" => "gs",
        "azure" => "az",
        other => other,
    };
    // abfs URLs carry the container in the user part
    let user = url.username();
    let host = url.host_str().unwrap_or("");
    if user.is_empty() {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{user}@{host}")
    }
}

type Options = Vec<(String, String)>;

/// Per-bucket object-store options, keyed by `s3://bucket`, `gs://bucket`, `az://container`.
/// A bucket with options ignores the environment's store settings.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    by_bucket: HashMap<String, Options>,
}

impl StoreOptions {
    /// Gives every location under `root` (`s3://bucket`, `gs://bucket`, `az://container`) its
    /// own object_store options, which then replace the environment for that bucket: keys are
    /// object_store's configuration keys (`aws_endpoint`, `aws_access_key_id`,
    /// `aws_secret_access_key`, `aws_region`, `google_service_account`,
    /// `azure_storage_account_name`, ...). An `http://` `aws_endpoint` allows plain http.
    pub fn set(&mut self, root: &str, options: &[(&str, &str)]) -> Result<()> {
        let url = to_url(root)?;
        // validate the keys now, so a typo names itself instead of failing at first use
        for (k, _) in options {
            is_clear_text_option(root, k).map_err(Error::Usage)?;
        }
        let opts: Options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.by_bucket.insert(store_key(&url), opts);
        Ok(())
    }

    fn get(&self, url: &Url) -> Option<Options> {
        self.by_bucket.get(&store_key(url)).cloned()
    }
}

/// Store options that cannot carry a secret, by object_store's canonical key name: these may be
/// written in pipeline.yaml as they are. Every other option (keys, tokens, passwords, SAS,
/// customer encryption keys, proxy URLs that may embed a password, service-account keys) must
/// come from the environment.
const CLEAR_TEXT_OPTIONS: &[&str] = &[
    // S3
    "aws_region",
    "aws_default_region",
    "aws_bucket",
    "aws_endpoint",
    "aws_endpoint_url_s3",
    "aws_endpoint_url_sts",
    "aws_virtual_hosted_style_request",
    "aws_s3_express",
    "aws_imdsv1_fallback",
    "aws_metadata_endpoint",
    "aws_unsigned_payload",
    "aws_checksum_algorithm",
    "aws_container_credentials_relative_uri",
    "aws_web_identity_token_file",
    "aws_role_arn",
    "aws_role_session_name",
    "aws_skip_signature",
    "aws_copy_if_not_exists",
    "aws_conditional_put",
    "aws_disable_tagging",
    "aws_request_payer",
    "aws_server_side_encryption",
    "aws_sse_kms_key_id",
    "aws_sse_bucket_key_enabled",
    // GCS
    "google_bucket",
    "google_base_url",
    "google_service_account",
    "google_application_credentials",
    "google_skip_signature",
    // Azure
    "azure_storage_account_name",
    "azure_storage_tenant_id",
    "azure_storage_authority_host",
    "azure_storage_use_emulator",
    "azure_use_fabric_endpoint",
    "azure_storage_endpoint",
    "azure_msi_endpoint",
    "azure_object_id",
    "azure_msi_resource_id",
    "azure_federated_token_file",
    "azure_use_azure_cli",
    "azure_skip_signature",
    "azure_container_name",
    "azure_disable_tagging",
    // HTTP client settings shared by every store
    "allow_http",
    "allow_invalid_certificates",
    "connect_timeout",
    "default_content_type",
    "http1_only",
    "http2_only",
    "http2_keep_alive_interval",
    "http2_keep_alive_timeout",
    "http2_keep_alive_while_idle",
    "http2_max_frame_size",
    "pool_idle_timeout",
    "pool_max_idle_per_host",
    "proxy_excludes",
    "randomize_addresses",
    "timeout",
    "user_agent",
];

/// Whether the store option `key` of the bucket `root` may be written in clear text (see
/// [`CLEAR_TEXT_OPTIONS`]); an unknown key is an error that names it.
pub fn is_clear_text_option(root: &str, key: &str) -> std::result::Result<bool, String> {
    let unknown = || {
        format!(
            "unknown store option `{key}` for {root}; use object_store's keys, e.g. aws_endpoint, aws_access_key_id, aws_secret_access_key, aws_region"
        )
    };
    let scheme = root.split("://").next().unwrap_or("");
    let canonical: String = match scheme {
        "s3" | "s3a" => key
            .parse::<object_store::aws::AmazonS3ConfigKey>()
            .map_err(|_| unknown())?
            .as_ref()
            .to_string(),
        "gs" | "gcs" => key
            .parse::<object_store::gcp::GoogleConfigKey>()
            .map_err(|_| unknown())?
            .as_ref()
            .to_string(),
        "az" | "azure" | "abfs" | "abfss" | "adl" => key
            .parse::<object_store::azure::AzureConfigKey>()
            .map_err(|_| unknown())?
            .as_ref()
            .to_string(),
        other => {
            return Err(format!(
                "store options are for s3://, gs:// and az:// buckets, not `{other}` ({root})"
            ));
        }
    };
    Ok(CLEAR_TEXT_OPTIONS.contains(&canonical.as_str()))
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

fn store_for(url: &Url, stores: &StoreOptions) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let path_in_bucket = || {
        Path::from_url_path(url.path())
            .map_err(|e| Error::Usage(format!("invalid path in `{url}`: {e}")))
    };
    let storage_err = |e: object_store::Error| Error::store(url, e);
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
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            let options = stores.get(url);
            let mut b = match &options {
                Some(_) => AmazonS3Builder::new(),
                None => AmazonS3Builder::from_env(),
            }
            .with_url(url.as_str())
            .with_retry(retry_config())
            .with_client_options(client_options());
            let mut endpoint = std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|_| options.is_none());
            for (k, v) in options.unwrap_or_default() {
                let key: AmazonS3ConfigKey = k.parse().map_err(storage_err)?;
                if key == AmazonS3ConfigKey::Endpoint {
                    endpoint = Some(v);
                } else {
                    b = b.with_config(key, v);
                }
            }
            if let Some(endpoint) = endpoint {
                // S3-compatible servers: path-style requests, http allowed for local servers
                let http = endpoint.starts_with("http://");
                b = b
                    .with_endpoint(endpoint)
                    .with_allow_http(http)
                    .with_virtual_hosted_style_request(false);
            }
            Ok((Arc::new(b.build().map_err(storage_err)?), path_in_bucket()?))
        }
        "gs" | "gcs" => {
            use object_store::gcp::GoogleCloudStorageBuilder;
            let options = stores.get(url);
            let mut b = match &options {
                Some(_) => GoogleCloudStorageBuilder::new(),
                None => GoogleCloudStorageBuilder::from_env(),
            }
            .with_url(url.as_str())
            .with_retry(retry_config())
            .with_client_options(client_options());
            for (k, v) in options.unwrap_or_default() {
                b = b.with_config(k.parse().map_err(storage_err)?, v);
            }
            Ok((Arc::new(b.build().map_err(storage_err)?), path_in_bucket()?))
        }
        "az" | "azure" | "abfs" | "abfss" | "adl" => {
            use object_store::azure::MicrosoftAzureBuilder;
            let options = stores.get(url);
            let mut b = match &options {
                Some(_) => MicrosoftAzureBuilder::new(),
                None => MicrosoftAzureBuilder::from_env(),
            }
            .with_url(url.as_str())
            .with_retry(retry_config())
            .with_client_options(client_options());
            for (k, v) in options.unwrap_or_default() {
                b = b.with_config(k.parse().map_err(storage_err)?, v);
            }
            let store = b.build().map_err(storage_err)?;
            // abfs URLs carry the container in the user part; the path is the rest
            Ok((Arc::new(store), path_in_bucket()?))
        }
        other => Err(Error::Usage(format!(
            "unsupported URL scheme `{other}` in `{url}`: use a local path, file://, s3://, gs://, az://, abfs:// or memory://"
        ))),
    }
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
    fn empty_path_segments_are_collapsed() {
        let loc = Location::parse("memory://t2/raw//orders/").unwrap();
        assert_eq!(loc.url(), "memory://t2/raw/orders/");
        assert_eq!(loc.prefix().as_ref(), "raw/orders");
    }

    #[test]
    fn store_options_are_validated_and_keyed_by_bucket() {
        let mut stores = StoreOptions::default();
        let err = stores
            .set("s3://opt-bucket", &[("aws_endpoitn", "x")])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown store option `aws_endpoitn`")
        );
        assert!(stores.set("memory://x", &[("a", "b")]).is_err());
        stores
            .set(
                "s3a://opt-bucket",
                &[("aws_endpoint", "http://127.0.0.1:1")],
            )
            .unwrap();
        let url = to_url("s3://opt-bucket/wh").unwrap();
        assert_eq!(
            stores.get(&url).unwrap(),
            vec![("aws_endpoint".into(), "http://127.0.0.1:1".into())]
        );
        assert!(Location::parse_with("s3://opt-bucket/wh", &stores).is_ok());
        assert!(
            stores
                .get(&to_url("s3://other-bucket/wh").unwrap())
                .is_none()
        );
    }

    #[test]
    fn unknown_scheme_is_a_usage_error() {
        let err = Location::parse("ftp://x/y").unwrap_err();
        assert!(err.to_string().contains("unsupported URL scheme `ftp`"));
    }
}
