//! S3 object storage for `s3://bucket/path` URLs: checkpoints, savepoints and
//! high-availability data.
//!
//! As Flink's `FileSystem.initialize`, a process sets its S3 settings once from its
//! configuration (`s3.endpoint`, `s3.region`, `s3.access-key`, `s3.secret-key`,
//! `s3.path.style.access`) with [`S3Settings::install`]; every `s3://` store the process
//! opens then takes the standard AWS variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...) with the configured keys over them.
//! A TaskManager hands its settings to the job workers it starts as those variables
//! ([`S3Settings::worker_env`]).
//!
//! Invariants:
//! - the secret key is held as a [`Secret`] and never formatted: errors and logs name the
//!   URL, the bucket and the endpoint, never a credential;
//! - opening a store lists its path once, so a missing bucket, refused credentials or an
//!   unreachable endpoint fail at once with the URL, not at the first checkpoint;
//! - every request is bounded (connect 5 s, request 60 s, retries within 20 s).

use super::storage::StorageError;
use crate::config::{keys, ConfigError, Configuration};
use crate::types::Secret;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The S3 settings of this process's configuration; `None` fields fall back to the AWS
/// variables.
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    /// `s3.endpoint`.
    pub endpoint: Option<String>,
    /// `s3.region`.
    pub region: Option<String>,
    /// `s3.access-key`.
    pub access_key: Option<String>,
    /// `s3.secret-key`.
    pub secret_key: Option<Secret>,
    /// `s3.path.style.access`.
    pub path_style_access: Option<bool>,
}

static INSTALLED: RwLock<Option<S3Settings>> = RwLock::new(None);

impl S3Settings {
    /// The `s3.*` keys of `c`.
    pub fn from_configuration(c: &Configuration) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoint: c.get(&keys::S3_ENDPOINT)?,
            region: c.get(&keys::S3_REGION)?,
            access_key: c.get(&keys::S3_ACCESS_KEY)?,
            secret_key: c.get(&keys::S3_SECRET_KEY)?.map(Secret::new),
            path_style_access: c.get(&keys::S3_PATH_STYLE_ACCESS)?,
        })
    }

    /// Whether no key is set (every store then takes the AWS variables alone).
    pub fn is_empty(&self) -> bool {
        self.endpoint.is_none()
            && self.region.is_none()
            && self.access_key.is_none()
            && self.secret_key.is_none()
            && self.path_style_access.is_none()
    }

    /// Makes these the settings of every `s3://` store this process opens from now on.
    pub fn install(self) {
        *INSTALLED.write().unwrap_or_else(|e| e.into_inner()) = Some(self);
    }

    /// The installed settings (none set: all `None`).
    pub fn installed() -> Self {
        INSTALLED
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// The AWS variables that give a child process (a job worker, which reads no cluster
    /// configuration) these settings; keys that are not set are not listed.
    pub fn worker_env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        let mut add = |name, value: Option<&str>| {
            if let Some(v) = value {
                env.push((name, v.to_string()));
            }
        };
        add("AWS_ENDPOINT_URL", self.endpoint.as_deref());
        add("AWS_REGION", self.region.as_deref());
        add("AWS_ACCESS_KEY_ID", self.access_key.as_deref());
        add(
            "AWS_SECRET_ACCESS_KEY",
            self.secret_key.as_ref().map(Secret::expose),
        );
        let virtual_hosted = self.path_style_access.map(|p| (!p).to_string());
        add(
            "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
            virtual_hosted.as_deref(),
        );
        env
    }

    /// The client for `bucket`: the AWS variables, then these settings over them. The
    /// builder holds the secret and formats it in its `Debug`: it is never formatted.
    fn builder(&self, bucket: &str) -> AmazonS3Builder {
        // The client options first: they hold `allow_http`, set below.
        let mut b = AmazonS3Builder::from_env()
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(60)),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 4,
                retry_timeout: Duration::from_secs(20),
            })
            .with_bucket_name(bucket);
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &self.region {
            b = b.with_region(r);
        }
        if let Some(k) = &self.access_key {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &self.secret_key {
            b = b.with_secret_access_key(k.expose());
        }
        if let Some(p) = self.path_style_access {
            b = b.with_virtual_hosted_style_request(!p);
        }
        // An endpoint given as http:// (an S3-compatible server) is meant as written.
        if endpoint(&b).is_some_and(|e| e.starts_with("http://")) {
            b = b.with_allow_http(true);
        }
        b
    }
}

fn endpoint(b: &AmazonS3Builder) -> Option<String> {
    b.get_config_value(&AmazonS3ConfigKey::Endpoint)
}

/// `s3://bucket/path` split into the bucket and the path inside it (no slashes around).
pub fn parse_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, path.trim_matches('/')))
}

/// A bucket's client and the path inside it that an `s3://bucket/path` URL names.
pub struct S3Location {
    /// The client of the bucket, with the installed settings.
    pub client: Arc<AmazonS3>,
    /// The bucket.
    pub bucket: String,
    /// The path inside the bucket, without slashes around it (empty: the bucket's root).
    pub path: String,
    /// The endpoint, for messages (`AWS` when none is set).
    pub endpoint: String,
}

impl S3Location {
    /// The client for `url` (`s3://bucket/path`) with the installed settings; nothing is
    /// sent yet.
    pub fn new(url: &str) -> Result<Self, StorageError> {
        let bad = |reason: String| StorageError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let (bucket, path) = parse_url(url)
            .ok_or_else(|| bad("an S3 URL needs a bucket (s3://bucket/path)".into()))?;
        // object_store's HTTPS is rustls without a built-in provider: ring, as the control
        // and data connections use.
        crate::rpc::tls::install_default_provider();
        let builder = S3Settings::installed().builder(bucket);
        let endpoint = endpoint(&builder).unwrap_or_else(|| "AWS".into());
        let client = builder
            .build()
            .map_err(|e| bad(format!("cannot configure the S3 client: {e}")))?;
        Ok(Self {
            client: Arc::new(client),
            bucket: bucket.to_string(),
            path: path.to_string(),
            endpoint,
        })
    }

    /// The store rooted at the path.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        if self.path.is_empty() {
            self.client.clone()
        } else {
            Arc::new(PrefixStore::new(self.client.clone(), self.path.as_str()))
        }
    }

    /// Lists the path once, so that a missing bucket, refused credentials or an
    /// unreachable endpoint fail now, naming `url`. With `must_exist`, nothing stored
    /// under the path is an error too.
    pub fn check(
        &self,
        url: &str,
        must_exist: bool,
        rt: &tokio::runtime::Runtime,
    ) -> Result<(), StorageError> {
        let bad = |reason: String| StorageError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let listed = rt
            .block_on(self.store().list_with_delimiter(None))
            .map_err(|e| bad(explain(&e, &self.bucket, &self.endpoint)))?;
        if must_exist && listed.objects.is_empty() && listed.common_prefixes.is_empty() {
            return Err(bad("nothing is stored there".into()));
        }
        Ok(())
    }
}

/// Opens the store of `url` (`s3://bucket/path`) with the installed settings, rooted at
/// `path`, and lists that path once ([`S3Location::check`]).
pub(super) fn open(
    url: &str,
    must_exist: bool,
    rt: &tokio::runtime::Runtime,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let location = S3Location::new(url)?;
    location.check(url, must_exist, rt)?;
    Ok(location.store())
}

/// Why listing failed, in the user's terms (the store's own message last).
fn explain(e: &object_store::Error, bucket: &str, endpoint: &str) -> String {
    let text = e.to_string();
    let why = if text.contains("NoSuchBucket") {
        format!("bucket '{bucket}' does not exist at {endpoint}")
    } else if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || text.contains("SignatureDoesNotMatch")
        || text.contains("InvalidAccessKeyId")
    {
        format!(
            "{endpoint} refused the credentials for bucket '{bucket}' (s3.access-key and s3.secret-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    } else {
        format!("cannot list it at {endpoint}")
    };
    format!("{why}: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_url_splits_into_bucket_and_path() {
        assert_eq!(parse_url("s3://weir/ck/a/"), Some(("weir", "ck/a")));
        assert_eq!(parse_url("s3://weir"), Some(("weir", "")));
        assert_eq!(parse_url("s3://weir/"), Some(("weir", "")));
        assert_eq!(parse_url("s3:///ck"), None);
        assert_eq!(parse_url("file:///ck"), None);
    }

    #[test]
    fn worker_env_carries_the_settings_and_debug_hides_the_secret() {
        let s = S3Settings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: None,
            access_key: Some("AK".into()),
            secret_key: Some(Secret::new("very-secret")),
            path_style_access: Some(true),
        };
        assert!(!format!("{s:?}").contains("very-secret"));
        let env = s.worker_env();
        assert!(env.contains(&("AWS_SECRET_ACCESS_KEY", "very-secret".into())));
        assert!(env.contains(&("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false".into())));
        assert!(!env.iter().any(|(k, _)| *k == "AWS_REGION"));
    }
}
