//! Configuration layered from its sources with `figment`: the keys' defaults, then
//! `weir.toml`, then `WEIR_*` environment variables, then `-D key=value` flags (each
//! overriding the one before); commands and code override all of them.
//!
//! Invariants: only the keys of [`super::keys`] and the `high-availability.*` keys are
//! known; an unknown key in a file or flag is an error naming it and where it was written
//! (environment variables that name no key are not configuration and are ignored); every
//! value remembers its source, so an error names it. The environment variable of `a.b-c`
//! is `WEIR_A_B_C`.

use super::error::ConfigError;
use super::key::{Key, KeyInfo};
use super::keys::{CLUSTER, JOB};
use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variable through which `weir run` and TaskManagers hand a job program
/// the job's resolved configuration (a JSON object of keys and values): when it is set, the
/// program reads no file and no other `WEIR_*` variable, so the graph `weir run` plans and
/// the graphs the workers build see the same settings.
pub const ENV_JOB_PROPERTIES: &str = "WEIR_JOB_PROPERTIES";

/// Encodes job properties for [`ENV_JOB_PROPERTIES`].
pub fn encode_properties(properties: &BTreeMap<String, String>) -> String {
    serde_json::to_string(properties).expect("a map of strings encodes")
}

/// The source of a value nothing set.
const DEFAULT_SOURCE: &str = "default";

/// The name of the configuration file that is looked for.
pub const FILE_NAME: &str = "weir.toml";

/// Resolved configuration: every key with its value and where the value came from.
#[derive(Clone)]
pub struct Configuration {
    values: BTreeMap<String, (String, String)>,
}

impl std::fmt::Debug for Configuration {
    /// Every key and value, the secrets' values (`cluster.secret`, `s3.secret-key`) hidden.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (k, (v, s)) in &self.values {
            let secret = [
                super::keys::CLUSTER_SECRET.name,
                super::keys::S3_SECRET_KEY.name,
            ];
            let v = if secret.contains(&k.as_str()) && !v.is_empty() {
                "<hidden>"
            } else {
                v.as_str()
            };
            map.entry(k, &format_args!("{v} (from {s})"));
        }
        map.finish()
    }
}

/// Every key: cluster, job and high-availability keys.
fn known_keys() -> impl Iterator<Item = &'static str> {
    CLUSTER
        .iter()
        .chain(JOB)
        .map(|k: &KeyInfo| k.name)
        .chain(crate::ha::HA_KEYS.iter().map(|(k, _, _)| *k))
}

fn unknown(key: &str, source_name: &str) -> ConfigError {
    ConfigError::UnknownKey {
        key: key.to_string(),
        source_name: source_name.to_string(),
        known: known_keys().collect::<Vec<_>>().join(", "),
    }
}

/// The environment variable of `key`.
pub fn env_name(key: &str) -> String {
    format!("WEIR_{}", key.to_ascii_uppercase().replace(['.', '-'], "_"))
}

/// One key's value from a `WEIR_*` variable or a `-D` flag, as a figment provider named
/// after where it came from (`WEIR_...`, `-D key`). The value stays text (figment's own
/// `Env` would guess types, turning `0123` into `123`), exactly as in a file.
struct Setting {
    key: String,
    value: String,
    source: String,
}

impl Provider for Setting {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.source.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let nested = figment::util::nest(&self.key, Value::from(self.value.clone()));
        Ok(Profile::Default.collect(nested.into_dict().unwrap_or_default()))
    }
}

/// A configuration file's parse error without the lines it quotes (a line may hold the
/// cluster secret): the position and the reason only.
fn without_quoted_lines(e: &figment::Error) -> String {
    e.to_string()
        .lines()
        .filter(|l| !l.contains('|'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Flattens nested tables into dotted keys, each with its value as text and its tag.
fn flatten(prefix: &str, dict: &Dict, out: &mut Vec<(String, String, Value)>) {
    for (k, v) in dict {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let text = match v {
            Value::Dict(_, d) => {
                flatten(&key, d, out);
                continue;
            }
            Value::String(_, s) => s.clone(),
            Value::Char(_, c) => c.to_string(),
            Value::Bool(_, b) => b.to_string(),
            Value::Num(_, n) => n
                .to_u128()
                .map(|n| n.to_string())
                .or_else(|| n.to_i128().map(|n| n.to_string()))
                .or_else(|| n.to_f64().map(|n| n.to_string()))
                .unwrap_or_default(),
            Value::Empty(..) => String::new(),
            Value::Array(..) => format!("{v:?}"),
        };
        out.push((key, text, v.clone()));
    }
}

/// The file to read: the one given, else `$WEIR_CONF_DIR/weir.toml`, else `./weir.toml`
/// if either exists.
fn discover(file: Option<&Path>) -> Option<PathBuf> {
    if let Some(f) = file {
        return Some(f.to_path_buf());
    }
    let candidates = std::env::var_os("WEIR_CONF_DIR")
        .map(|d| PathBuf::from(d).join(FILE_NAME))
        .into_iter()
        .chain(std::iter::once(PathBuf::from(FILE_NAME)));
    candidates.into_iter().find(|p| p.is_file())
}

/// Splits `-D` flags into key and value.
fn parse_flags(overrides: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    overrides
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(ConfigError::NotKeyValue { flag: o.clone() }),
        })
        .collect()
}

impl Configuration {
    /// Every key at its default.
    pub fn defaults() -> Self {
        let values = CLUSTER
            .iter()
            .chain(JOB)
            .map(|k| {
                (
                    k.name.to_string(),
                    (k.default.to_string(), DEFAULT_SOURCE.to_string()),
                )
            })
            .collect();
        Self { values }
    }

    /// Loads the configuration: `file` (or the discovered `weir.toml`: in `$WEIR_CONF_DIR`,
    /// else the working directory), the `WEIR_*` environment and `overrides` (`key=value`).
    /// A `file` that is given must exist.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = discover(file) {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path,
                    reason: "no such file".into(),
                });
            }
            figment = figment.merge(Toml::file_exact(&path));
        }
        for key in known_keys() {
            let source = env_name(key);
            if let Ok(value) = std::env::var(&source) {
                let key = key.to_string();
                figment = figment.merge(Setting { key, value, source });
            }
        }
        for (key, value) in parse_flags(overrides)? {
            let source = format!("-D {key}");
            figment = figment.merge(Setting { key, value, source });
        }
        Self::from_figment(&figment)
    }

    /// The configuration of a job program: the job properties its launcher passed in
    /// [`ENV_JOB_PROPERTIES`] if any (then no file and no other variable is read), else
    /// [`Configuration::load`] without a file; then `overrides`, the program's own `-D`.
    pub fn for_job_program(overrides: &[String]) -> Result<Self, ConfigError> {
        let Ok(json) = std::env::var(ENV_JOB_PROPERTIES) else {
            return Self::load(None, overrides);
        };
        let properties: BTreeMap<String, String> =
            serde_json::from_str(&json).map_err(|e| ConfigError::Properties {
                variable: ENV_JOB_PROPERTIES,
                reason: e.to_string(),
            })?;
        let mut c = Self::defaults();
        for (k, v) in properties {
            if !known_keys().any(|key| key == k) {
                return Err(unknown(&k, ENV_JOB_PROPERTIES));
            }
            c.values.insert(k, (v, "weir run".into()));
        }
        for (k, v) in parse_flags(overrides)? {
            let source = format!("-D {k}");
            c.insert_known(k, v, source)?;
        }
        Ok(c)
    }

    /// Sets `key` to `value` from `source`; a key no part of Weir reads is an error.
    fn insert_known(
        &mut self,
        key: String,
        value: String,
        source: String,
    ) -> Result<(), ConfigError> {
        if !known_keys().any(|k| k == key) {
            return Err(unknown(&key, &source));
        }
        self.values.insert(key, (value, source));
        Ok(())
    }

    fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let data = figment.data().map_err(|e| ConfigError::File {
            path: e
                .metadata
                .as_ref()
                .and_then(|m| m.source.as_ref())
                .and_then(|s| s.file_path())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(FILE_NAME)),
            reason: without_quoted_lines(&e),
        })?;
        let mut flat = Vec::new();
        if let Some(dict) = data.get(&Profile::Default) {
            flatten("", dict, &mut flat);
        }
        let mut c = Self::defaults();
        for (key, text, value) in flat {
            let meta = figment.get_metadata(value.tag());
            let source = match meta {
                Some(m) if m.source.as_ref().is_some_and(|s| s.file_path().is_some()) => m
                    .source
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                Some(m) => m.name.to_string(),
                None => FILE_NAME.to_string(),
            };
            // Keys are spelled exactly (the variables are mapped to the spelling): two
            // spellings of one key would otherwise merge apart and defeat the precedence.
            c.insert_known(key, text, source)?;
        }
        Ok(c)
    }

    /// Sets `key` from an explicit command flag.
    pub fn set<T>(&mut self, key: &Key<T>, value: String, flag: &str) {
        self.values
            .insert(key.name.to_string(), (value, flag.to_string()));
    }

    /// The value of `key` as written (`None` only for a key that is neither known nor set).
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// Where the value of `key` came from (`default`, a file, `WEIR_...`, `-D ...`).
    pub fn source(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(_, s)| s.as_str())
    }

    /// The value of `key`, parsed by its parser; an error names the key, the value and
    /// where it came from.
    pub fn get<T>(&self, key: &Key<T>) -> Result<T, ConfigError> {
        let (v, s) = self
            .values
            .get(key.name)
            .map(|(v, s)| (v.as_str(), s.as_str()))
            .unwrap_or((key.default, DEFAULT_SOURCE));
        (key.parse)(v).map_err(|expected| ConfigError::Invalid {
            key: key.name.to_string(),
            value: v.to_string(),
            source_name: s.to_string(),
            expected,
        })
    }

    /// Every job key that is not at its default: what a launcher hands the job program.
    pub fn job_properties(&self) -> BTreeMap<String, String> {
        JOB.iter()
            .filter_map(|k| {
                let (v, s) = self.values.get(k.name)?;
                (s != DEFAULT_SOURCE).then(|| (k.name.to_string(), v.clone()))
            })
            .collect()
    }
}
