//! Every configuration key, declared once: its name, default, parser and meaning. Cluster
//! keys configure the processes of a standalone cluster; job keys configure one job, read
//! by the job program's environment (code overrides them, as in Flink).
//!
//! Invariants: [`CLUSTER`] and [`JOB`] list every key exactly once; the README's "Cluster
//! configuration" and "Job configuration" tables list the same keys with the same defaults
//! and meanings (checked by a test below).

use super::key::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `jobmanager.rpc.address` (`HOST:PORT`; a JobManager binds it, so there its host must
/// be numeric).
pub const RPC_ADDRESS: Key<String> = Key {
    name: "jobmanager.rpc.address",
    default: "127.0.0.1:6123",
    doc: "the JobManager's control RPC address: where it binds, and where the CLI and TaskManagers connect",
    parse: host_port,
};

/// `rest.address`.
pub const REST_ADDRESS: Key<SocketAddr> = Key {
    name: "rest.address",
    default: "127.0.0.1:8081",
    doc: "the JobManager's REST API; with `cluster.secret` every request must carry it as `Authorization: Bearer <secret>`, and an address outside 127.0.0.0/8 is only accepted with a secret",
    parse: address,
};

/// `security.ssl.rest.enabled`.
pub const SSL_REST_ENABLED: Key<bool> = Key {
    name: "security.ssl.rest.enabled",
    default: "false",
    doc: "serve the REST API over TLS only, with the certificate and key below",
    parse: boolean,
};

/// `security.ssl.rest.certificate`.
pub const SSL_REST_CERTIFICATE: Key<Option<PathBuf>> = Key {
    name: "security.ssl.rest.certificate",
    default: "",
    doc: "PEM file with the REST API's certificate chain, leaf first",
    parse: optional_dir,
};

/// `security.ssl.rest.private-key`.
pub const SSL_REST_PRIVATE_KEY: Key<Option<PathBuf>> = Key {
    name: "security.ssl.rest.private-key",
    default: "",
    doc: "PEM file with the private key of that certificate (PKCS#8, PKCS#1 or SEC1)",
    parse: optional_dir,
};

/// `security.ssl.internal.enabled`.
pub const SSL_INTERNAL_ENABLED: Key<bool> = Key {
    name: "security.ssl.internal.enabled",
    default: "false",
    doc: "run every control connection (CLI, TaskManager, job worker to the JobManager) and every data connection between job workers over mutual TLS with the files below",
    parse: boolean,
};

/// `security.ssl.internal.certificate`.
pub const SSL_INTERNAL_CERTIFICATE: Key<Option<PathBuf>> = Key {
    name: "security.ssl.internal.certificate",
    default: "",
    doc: "PEM file with this process's certificate chain, leaf first (host names are not checked)",
    parse: optional_dir,
};

/// `security.ssl.internal.private-key`.
pub const SSL_INTERNAL_PRIVATE_KEY: Key<Option<PathBuf>> = Key {
    name: "security.ssl.internal.private-key",
    default: "",
    doc: "PEM file with the private key of that certificate",
    parse: optional_dir,
};

/// `security.ssl.internal.trusted-certificates`.
pub const SSL_INTERNAL_TRUSTED: Key<Option<PathBuf>> = Key {
    name: "security.ssl.internal.trusted-certificates",
    default: "",
    doc: "PEM file with the certificate authorities a peer's certificate must lead to: a private authority of this cluster only, never a public bundle (host names are not checked)",
    parse: optional_dir,
};

/// `cluster.secret`.
pub const CLUSTER_SECRET: Key<Option<String>> = Key {
    name: "cluster.secret",
    default: "",
    doc: "a secret every control connection (CLI, TaskManager, worker) and every data connection between workers must present; a connection without it is refused and logged. Required when any address binds outside 127.0.0.0/8",
    parse: optional,
};

/// `heartbeat.interval`.
pub const HEARTBEAT_INTERVAL: Key<Duration> = Key {
    name: "heartbeat.interval",
    default: "1 s",
    doc: "time between TaskManager and job worker heartbeats",
    parse: duration,
};

/// `heartbeat.timeout`.
pub const HEARTBEAT_TIMEOUT: Key<Duration> = Key {
    name: "heartbeat.timeout",
    default: "5 s",
    doc: "time without a heartbeat after which a TaskManager or a job worker is lost; a TaskManager whose JobManager answers no heartbeat for as long stops its workers and registers again",
    parse: duration,
};

/// `slot.request.timeout`.
pub const SLOT_REQUEST_TIMEOUT: Key<Duration> = Key {
    name: "slot.request.timeout",
    default: "5 min",
    doc: "how long a job waits for enough free slots before it fails",
    parse: duration,
};

/// `jobmanager.worker.start-timeout`.
pub const WORKER_START_TIMEOUT: Key<Duration> = Key {
    name: "jobmanager.worker.start-timeout",
    default: "1 min",
    doc: "how long a job's workers may take to start and register",
    parse: duration,
};

/// `jobmanager.artifacts.dir`.
pub const ARTIFACTS_DIR: Key<PathBuf> = Key {
    name: "jobmanager.artifacts.dir",
    default: "<temp dir>/weir/artifacts",
    doc: "where the JobManager stores job programs",
    parse: dir,
};

/// `jobmanager.artifacts.max-size`.
pub const ARTIFACTS_MAX_SIZE: Key<u64> = Key {
    name: "jobmanager.artifacts.max-size",
    default: "512 mb",
    doc: "largest job program accepted",
    parse: size,
};

/// `taskmanager.numberOfTaskSlots`.
pub const TASK_SLOTS: Key<u64> = Key {
    name: "taskmanager.numberOfTaskSlots",
    default: "1",
    doc: "slots a TaskManager offers (`--slots`, at least 1)",
    parse: number,
};

/// `taskmanager.registration.timeout`.
pub const REGISTRATION_TIMEOUT: Key<Duration> = Key {
    name: "taskmanager.registration.timeout",
    default: "5 min",
    doc: "how long a TaskManager with a fixed JobManager address keeps trying, with backoff, to register (at start, and after the connection ended or the JobManager fell silent) before it exits; a refused secret or another protocol version ends it at once. With high availability it follows the leader for good",
    parse: duration,
};

/// `metrics.prometheus.port`.
pub const PROMETHEUS_PORT: Key<Option<crate::metrics::prometheus::PortRange>> = Key {
    name: "metrics.prometheus.port",
    default: "",
    doc: "serve Prometheus metrics at `/metrics` on this port, or on the first free port of a range such as `9250-9260` (each TaskManager and job worker of a host takes one); `0` is any free port; empty: no metrics endpoint",
    parse: optional_port_range,
};

/// `metrics.prometheus.host`.
pub const PROMETHEUS_HOST: Key<std::net::IpAddr> = Key {
    name: "metrics.prometheus.host",
    default: "127.0.0.1",
    doc: "the address the Prometheus endpoints bind",
    parse: ip,
};

/// `taskmanager.data.bind-host`.
pub const DATA_BIND_HOST: Key<Option<String>> = Key {
    name: "taskmanager.data.bind-host",
    default: "127.0.0.1",
    doc: "host the job workers' data servers bind",
    parse: optional,
};

/// `taskmanager.artifacts.cache-dir`.
pub const ARTIFACT_CACHE_DIR: Key<PathBuf> = Key {
    name: "taskmanager.artifacts.cache-dir",
    default: "<temp dir>/weir/artifact-cache",
    doc: "where TaskManagers cache fetched programs (created private to the user; TaskManagers of one host may share it, as each entry is checked against its digest before every start)",
    parse: dir,
};

/// `s3.endpoint`.
pub const S3_ENDPOINT: Key<Option<String>> = Key {
    name: "s3.endpoint",
    default: "",
    doc: "the S3 endpoint of `s3://` URLs (checkpoints, savepoints, high-availability storage), such as `http://127.0.0.1:9000` for an S3-compatible server; empty: `AWS_ENDPOINT_URL`, else AWS",
    parse: optional,
};

/// `s3.region`.
pub const S3_REGION: Key<Option<String>> = Key {
    name: "s3.region",
    default: "",
    doc: "the region of `s3://` buckets; empty: `AWS_REGION` or `AWS_DEFAULT_REGION`, else `us-east-1`",
    parse: optional,
};

/// `s3.access-key`.
pub const S3_ACCESS_KEY: Key<Option<String>> = Key {
    name: "s3.access-key",
    default: "",
    doc: "the access key id for `s3://` URLs; empty: `AWS_ACCESS_KEY_ID` (or the instance's role)",
    parse: optional,
};

/// `s3.secret-key`.
pub const S3_SECRET_KEY: Key<Option<String>> = Key {
    name: "s3.secret-key",
    default: "",
    doc: "the secret access key for `s3://` URLs, never shown in logs, errors or the REST API; empty: `AWS_SECRET_ACCESS_KEY`",
    parse: optional,
};

/// `s3.path.style.access`.
pub const S3_PATH_STYLE_ACCESS: Key<Option<bool>> = Key {
    name: "s3.path.style.access",
    default: "",
    doc: "`true`: requests name the bucket in the path (`ENDPOINT/bucket/key`, as most S3-compatible servers need); `false`: in the host name (`bucket.ENDPOINT`); empty: `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, else path style",
    parse: optional_boolean,
};

/// Every cluster key, in the README's order.
pub const CLUSTER: &[KeyInfo] = &[
    RPC_ADDRESS.info(),
    REST_ADDRESS.info(),
    SSL_REST_ENABLED.info(),
    SSL_REST_CERTIFICATE.info(),
    SSL_REST_PRIVATE_KEY.info(),
    SSL_INTERNAL_ENABLED.info(),
    SSL_INTERNAL_CERTIFICATE.info(),
    SSL_INTERNAL_PRIVATE_KEY.info(),
    SSL_INTERNAL_TRUSTED.info(),
    CLUSTER_SECRET.info(),
    HEARTBEAT_INTERVAL.info(),
    HEARTBEAT_TIMEOUT.info(),
    SLOT_REQUEST_TIMEOUT.info(),
    WORKER_START_TIMEOUT.info(),
    ARTIFACTS_DIR.info(),
    ARTIFACTS_MAX_SIZE.info(),
    TASK_SLOTS.info(),
    REGISTRATION_TIMEOUT.info(),
    DATA_BIND_HOST.info(),
    ARTIFACT_CACHE_DIR.info(),
    PROMETHEUS_PORT.info(),
    PROMETHEUS_HOST.info(),
    S3_ENDPOINT.info(),
    S3_REGION.info(),
    S3_ACCESS_KEY.info(),
    S3_SECRET_KEY.info(),
    S3_PATH_STYLE_ACCESS.info(),
];

pub use super::job_keys::*;

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the README table under `heading`: key, default, meaning.
    fn readme_rows(heading: &str) -> Vec<(String, String, String)> {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("the README has a section {heading}"));
        section
            .lines()
            .skip_while(|l| !l.starts_with("| key |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
                let unquote = |s: &str| s.trim_matches('`').to_string();
                let default = match cells[1] {
                    "none" => String::new(),
                    d => unquote(d),
                };
                (unquote(cells[0]), default, cells[2].to_string())
            })
            .collect()
    }

    fn rows(keys: &[KeyInfo]) -> Vec<(String, String, String)> {
        keys.iter()
            .map(|k| (k.name.into(), k.default.into(), k.doc.into()))
            .collect()
    }

    #[test]
    fn the_readme_lists_every_cluster_key_with_its_default_and_meaning() {
        assert_eq!(readme_rows("### Cluster configuration"), rows(CLUSTER));
    }

    #[test]
    fn the_readme_lists_every_job_key_with_its_default_and_meaning() {
        assert_eq!(readme_rows("### Job configuration"), rows(JOB));
    }

    #[test]
    fn every_key_is_listed_once_and_every_default_parses() {
        let c = super::super::Configuration::defaults();
        for k in CLUSTER.iter().chain(JOB) {
            assert!(c.raw(k.name).is_some(), "{}", k.name);
        }
        let names: std::collections::BTreeSet<_> =
            CLUSTER.iter().chain(JOB).map(|k| k.name).collect();
        assert_eq!(names.len(), CLUSTER.len() + JOB.len(), "each key once");
        c.get(&RPC_ADDRESS).unwrap();
        c.get(&REST_ADDRESS).unwrap();
        c.get(&HEARTBEAT_TIMEOUT).unwrap();
        c.get(&SLOT_REQUEST_TIMEOUT).unwrap();
        c.get(&WORKER_START_TIMEOUT).unwrap();
        assert_eq!(c.get(&ARTIFACTS_MAX_SIZE).unwrap(), 512 << 20);
        assert_eq!(c.get(&TASK_SLOTS).unwrap(), 1);
        super::super::JobSettings::from_configuration(&c).unwrap();
    }
}
