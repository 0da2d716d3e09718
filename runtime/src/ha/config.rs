//! The `high-availability.*` configuration, under Flink's keys. Without
//! `high-availability.type: zookeeper` there is none and the cluster runs without HA.

use super::error::HaError;
use std::time::Duration;

/// Every key this module reads: name, default, meaning (the README's table follows it).
pub const HA_KEYS: &[(&str, &str, &str)] = &[
    (
        "high-availability.type",
        "none",
        "`zookeeper` turns JobManager high availability on",
    ),
    (
        "high-availability.zookeeper.quorum",
        "(required)",
        "ZooKeeper servers, `host:port[,host:port...]`",
    ),
    (
        "high-availability.zookeeper.path.root",
        "/weir",
        "the znode under which every cluster keeps its state",
    ),
    (
        "high-availability.cluster-id",
        "default",
        "this cluster's name under the root; clusters with different ids stay apart",
    ),
    (
        "high-availability.storageDir",
        "(required)",
        "`file://` URL where job graphs and artifacts are persisted",
    ),
    (
        "high-availability.zookeeper.client.session-timeout",
        "60 s",
        "ZooKeeper session timeout: how long a silent JobManager keeps its leadership",
    ),
    (
        "high-availability.zookeeper.client.connection-timeout",
        "15 s",
        "how long to wait for a ZooKeeper session before failing",
    ),
];

/// ZooKeeper high-availability settings of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaConfig {
    /// `high-availability.zookeeper.quorum`.
    pub quorum: String,
    /// `high-availability.zookeeper.path.root`, absolute, without a trailing `/`.
    pub root: String,
    /// `high-availability.cluster-id`, one path segment.
    pub cluster_id: String,
    /// `high-availability.storageDir`.
    pub storage_dir: String,
    /// `high-availability.zookeeper.client.session-timeout`.
    pub session_timeout: Duration,
    /// `high-availability.zookeeper.client.connection-timeout`.
    pub connection_timeout: Duration,
}

impl HaConfig {
    /// Reads the settings from `(key, value)` pairs (later pairs override earlier ones);
    /// `None` when high availability is off.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Option<Self>, HaError> {
        let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        let get = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.trim())
        };
        match get("high-availability.type").unwrap_or("none") {
            t if t.eq_ignore_ascii_case("none") || t.is_empty() => return Ok(None),
            t if t.eq_ignore_ascii_case("zookeeper") => {}
            other => {
                return Err(invalid(
                    "high-availability.type",
                    other,
                    "expected zookeeper or none",
                ))
            }
        }
        let required = |key: &'static str| {
            get(key)
                .filter(|v| !v.is_empty())
                .ok_or(HaError::MissingKey { key })
        };
        let quorum = required("high-availability.zookeeper.quorum")?.to_string();
        let storage_dir = required("high-availability.storageDir")?.to_string();
        let root_key = "high-availability.zookeeper.path.root";
        let root = get(root_key).unwrap_or("/weir").trim_end_matches('/');
        if !root.starts_with('/') || root.contains("//") {
            return Err(invalid(
                root_key,
                root,
                "expected an absolute znode path such as /weir",
            ));
        }
        let id_key = "high-availability.cluster-id";
        let cluster_id = get(id_key).unwrap_or("default").trim_matches('/');
        if cluster_id.is_empty() || cluster_id.contains('/') {
            return Err(invalid(id_key, cluster_id, "expected one path segment"));
        }
        let duration = |key: &str, default: Duration| match get(key) {
            None => Ok(default),
            Some(v) => parse_duration(v).map_err(|reason| invalid(key, v, &reason)),
        };
        Ok(Some(Self {
            quorum,
            root: root.to_string(),
            cluster_id: cluster_id.to_string(),
            storage_dir,
            session_timeout: duration(
                "high-availability.zookeeper.client.session-timeout",
                Duration::from_secs(60),
            )?,
            connection_timeout: duration(
                "high-availability.zookeeper.client.connection-timeout",
                Duration::from_secs(15),
            )?,
        }))
    }

    /// The cluster's znode: `<root>/<cluster id>`.
    pub fn cluster_path(&self) -> String {
        format!("{}/{}", self.root, self.cluster_id)
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> HaError {
    HaError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A duration as Flink writes them: milliseconds (`15000`) or a number with a unit
/// (`15 s`, `1 min`, `500 ms`).
fn parse_duration(v: &str) -> Result<Duration, String> {
    if let Ok(ms) = v.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    let d = humantime::parse_duration(&v.replace(' ', "")).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be above zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zk(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = vec![
            ("high-availability.type", "zookeeper"),
            ("high-availability.zookeeper.quorum", "127.0.0.1:2181"),
            ("high-availability.storageDir", "file:///tmp/ha"),
        ];
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn without_the_type_key_high_availability_is_off() {
        assert_eq!(HaConfig::from_pairs([]).unwrap(), None);
        let off = [("high-availability.type", "NONE")];
        assert_eq!(HaConfig::from_pairs(off).unwrap(), None);
    }

    #[test]
    fn flinks_keys_and_defaults_are_read() {
        let c = HaConfig::from_pairs(zk(&[])).unwrap().unwrap();
        assert_eq!(c.cluster_path(), "/weir/default");
        assert_eq!(c.session_timeout, Duration::from_secs(60));
        assert_eq!(c.connection_timeout, Duration::from_secs(15));
        let c = HaConfig::from_pairs(zk(&[
            ("high-availability.zookeeper.path.root", "/flows/"),
            ("high-availability.cluster-id", "/sensors"),
            ("high-availability.zookeeper.client.session-timeout", "4 s"),
            (
                "high-availability.zookeeper.client.connection-timeout",
                "1500",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.cluster_path(), "/flows/sensors");
        assert_eq!(c.session_timeout, Duration::from_secs(4));
        assert_eq!(c.connection_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn a_missing_quorum_or_bad_value_is_an_error_naming_the_key() {
        let e = HaConfig::from_pairs([("high-availability.type", "zookeeper")]).unwrap_err();
        assert!(
            e.to_string().contains("high-availability.zookeeper.quorum"),
            "{e}"
        );
        for (key, value) in [
            ("high-availability.type", "kubernetes"),
            ("high-availability.zookeeper.path.root", "weir"),
            ("high-availability.cluster-id", "a/b"),
            ("high-availability.zookeeper.client.session-timeout", "soon"),
        ] {
            let e = HaConfig::from_pairs(zk(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains(value), "{e}");
        }
    }

    #[test]
    fn the_readmes_table_lists_every_key_with_its_default() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
        for (key, default, meaning) in HA_KEYS {
            let row = format!("| `{key}` | {default} | {meaning} |");
            assert!(readme.contains(&row), "README.md lacks the row {row}");
        }
    }
}
