//! Configuration layering: defaults, `weir.toml`, `WEIR_*` variables, `-D` flags, and the job
//! settings read from them. One test per binary touches the process environment, so the
//! environment tests run in one function.

use std::time::Duration;
use weir_runtime::config::keys::*;
use weir_runtime::config::{ConfigError, Configuration, JobSettings, ENV_JOB_PROPERTIES};
use weir_runtime::{CheckpointingMode, RestartStrategy};
use weir_state_backends::StateBackendKind;

/// Serializes the tests of this binary: they read the process environment, which one of
/// them changes.
static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let file = dir.path().join("weir.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn file_then_environment_then_flags_each_override_the_one_before() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "[execution.checkpointing]\ninterval = \"10 s\"\ntimeout = \"1 min\"\n\
         [state]\ncheckpoints.dir = \"file:///tmp/ck\"\nbackend.type = \"hashmap\"\n\
         [heartbeat]\ntimeout = 9000\n",
    );
    std::env::set_var("WEIR_EXECUTION_CHECKPOINTING_TIMEOUT", "2 min");
    std::env::set_var("WEIR_TASKMANAGER_NUMBEROFTASKSLOTS", "3");
    std::env::set_var("WEIR_PLAN_FILE_NOT_A_KEY", "ignored");
    let c = Configuration::load(
        Some(&file),
        &["execution.checkpointing.min-pause=500 ms".into()],
    )
    .unwrap();
    assert_eq!(
        c.get(&HEARTBEAT_TIMEOUT).unwrap(),
        Duration::from_millis(9000)
    );
    assert_eq!(c.get(&TASK_SLOTS).unwrap(), 3);
    assert_eq!(
        c.source(TASK_SLOTS.name),
        Some("WEIR_TASKMANAGER_NUMBEROFTASKSLOTS")
    );
    let s = JobSettings::from_configuration(&c).unwrap();
    let ck = s
        .job
        .checkpointing
        .expect("the interval turns checkpointing on");
    assert_eq!(ck.interval, Duration::from_secs(10));
    assert_eq!(
        ck.timeout,
        Duration::from_secs(120),
        "the variable beats the file"
    );
    assert_eq!(ck.min_pause, Duration::from_millis(500));
    assert_eq!(ck.dir, "file:///tmp/ck");

    let c = Configuration::load(
        Some(&file),
        &["execution.checkpointing.timeout=3 min".into()],
    )
    .unwrap();
    let ck = JobSettings::from_configuration(&c)
        .unwrap()
        .job
        .checkpointing
        .unwrap();
    assert_eq!(
        ck.timeout,
        Duration::from_secs(180),
        "-D beats the variable"
    );

    // A value that does not parse names the key, the value and the variable it came from.
    std::env::set_var("WEIR_EXECUTION_CHECKPOINTING_TIMEOUT", "soon");
    let c = Configuration::load(Some(&file), &[]).unwrap();
    let err = JobSettings::from_configuration(&c).unwrap_err().to_string();
    assert!(
        err.contains(
            "execution.checkpointing.timeout = 'soon' (from WEIR_EXECUTION_CHECKPOINTING_TIMEOUT)"
        ),
        "{err}"
    );
    std::env::remove_var("WEIR_EXECUTION_CHECKPOINTING_TIMEOUT");
    std::env::remove_var("WEIR_TASKMANAGER_NUMBEROFTASKSLOTS");

    // weir.toml is found in $WEIR_CONF_DIR without --config.
    std::env::set_var("WEIR_CONF_DIR", dir.path());
    let c = Configuration::load(None, &[]).unwrap();
    assert_eq!(
        c.get(&HEARTBEAT_TIMEOUT).unwrap(),
        Duration::from_millis(9000)
    );
    assert!(c
        .source(HEARTBEAT_TIMEOUT.name)
        .unwrap()
        .ends_with("weir.toml"));
    std::env::remove_var("WEIR_CONF_DIR");

    // A launcher's job properties replace the file and the variables; the program's -D wins.
    std::env::set_var("WEIR_PARALLELISM_DEFAULT", "7");
    std::env::set_var(
        ENV_JOB_PROPERTIES,
        r#"{"parallelism.default":"3","state.backend.type":"rocksdb"}"#,
    );
    let c = Configuration::for_job_program(&["state.backend.type=hashmap".into()]).unwrap();
    let s = JobSettings::from_configuration(&c).unwrap();
    assert_eq!(s.parallelism, Some(3));
    assert_eq!(s.job.state_backend.kind, StateBackendKind::Memory);
    std::env::set_var(ENV_JOB_PROPERTIES, "{not json");
    let err = Configuration::for_job_program(&[]).unwrap_err().to_string();
    assert!(err.contains(ENV_JOB_PROPERTIES), "{err}");
    std::env::remove_var(ENV_JOB_PROPERTIES);
    let c = Configuration::for_job_program(&[]).unwrap();
    assert_eq!(c.get(&PARALLELISM_DEFAULT).unwrap(), Some(7));
    std::env::remove_var("WEIR_PARALLELISM_DEFAULT");

    // A variable's value stays text, as from -D or a file.
    std::env::set_var("WEIR_CLUSTER_SECRET", "0123");
    let c = Configuration::load(None, &[]).unwrap();
    assert_eq!(c.get(&CLUSTER_SECRET).unwrap().as_deref(), Some("0123"));
    assert!(!format!("{c:?}").contains("0123"), "Debug hides the secret");
    std::env::remove_var("WEIR_CLUSTER_SECRET");
}

#[test]
fn unknown_keys_and_malformed_sources_are_errors_naming_them() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let err =
        Configuration::load(None, &["execution.checkpointing.intervall=1 s".into()]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, source_name, .. }
            if key == "execution.checkpointing.intervall"
                && source_name == "-D execution.checkpointing.intervall"),
        "{err}"
    );
    let err = Configuration::load(None, &["no-equals-sign".into()]).unwrap_err();
    assert_eq!(err.to_string(), "-D no-equals-sign: expected key=value");
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "[state]\nbackend.tpye = \"rocksdb\"\n");
    let err = Configuration::load(Some(&file), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'state.backend.tpye'") && err.contains("weir.toml"),
        "{err}"
    );
    let file = write(&dir, "this is = = not toml");
    let err = Configuration::load(Some(&file), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("configuration file ") && err.contains("weir.toml"),
        "{err}"
    );
    // A syntax error names the position, never the line (it may hold the secret).
    let file = write(&dir, "[cluster]\nsecret = s3cr3t-unquoted\n");
    let err = Configuration::load(Some(&file), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2") && !err.contains("s3cr3t"), "{err}");
    // Keys are spelled exactly: another case is an unknown key, not a second spelling.
    let file = write(&dir, "[taskmanager]\nnumberoftaskslots = 2\n");
    let err = Configuration::load(Some(&file), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("'taskmanager.numberoftaskslots'"), "{err}");
    let missing = dir.path().join("missing.toml");
    let err = Configuration::load(Some(&missing), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.toml") && err.contains("no such file"),
        "{err}"
    );
}

#[test]
fn job_settings_follow_flinks_keys() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let c = Configuration::load(
        None,
        &[
            "execution.checkpointing.interval=1 min".into(),
            "execution.checkpointing.mode=AT_LEAST_ONCE".into(),
            "execution.checkpointing.max-concurrent-checkpoints=2".into(),
            "execution.checkpointing.tolerable-failed-checkpoints=3".into(),
            "state.checkpoints.dir=file:///tmp/weir-ck".into(),
            "state.checkpoints.num-retained=4".into(),
            "state.savepoints.dir=file:///tmp/weir-sp".into(),
            "state.backend.incremental=false".into(),
            "state.backend.rocksdb.memory.managed-size=64 mb".into(),
            "restart-strategy.type=exponential-delay".into(),
            "restart-strategy.exponential-delay.max-backoff=30 s".into(),
            "parallelism.default=4".into(),
            "pipeline.max-parallelism=256".into(),
            "execution.buffer-timeout=5 ms".into(),
            "taskmanager.network.buffer-size=64 kb".into(),
        ],
    )
    .unwrap();
    let s = JobSettings::from_configuration(&c).unwrap();
    let ck = s.job.checkpointing.unwrap();
    assert_eq!(ck.interval, Duration::from_secs(60));
    assert_eq!(ck.mode, CheckpointingMode::AtLeastOnce);
    assert_eq!(
        (ck.max_concurrent, ck.tolerable_failures, ck.retained),
        (2, 3, 4)
    );
    assert_eq!(ck.savepoint_dir.as_deref(), Some("file:///tmp/weir-sp"));
    assert!(!s.job.state_backend.incremental);
    assert_eq!(s.job.state_backend.rocksdb.managed_memory_bytes, 64 << 20);
    assert_eq!(
        s.job.restart_strategy,
        Some(RestartStrategy::ExponentialDelay {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            multiplier: 1.5,
            reset_after: Duration::from_secs(3600),
        })
    );
    assert_eq!((s.parallelism, s.max_parallelism), (Some(4), 256));
    assert_eq!(s.job.buffer_timeout, Duration::from_millis(5));
    assert_eq!(s.job.buffer_size, 64 << 10);

    let c = Configuration::load(None, &["execution.checkpointing.interval=10 s".into()]).unwrap();
    let err = JobSettings::from_configuration(&c).unwrap_err().to_string();
    assert_eq!(
        err,
        "execution.checkpointing.interval is set (from -D execution.checkpointing.interval) \
         but state.checkpoints.dir is not: set it to a URL such as file:///var/weir/checkpoints"
    );
    let c = Configuration::load(None, &["restart-strategy.type=sometimes".into()]).unwrap();
    let err = JobSettings::from_configuration(&c).unwrap_err().to_string();
    assert!(err.contains("restart-strategy.type = 'sometimes'"), "{err}");
    let defaults = JobSettings::from_configuration(&Configuration::defaults()).unwrap();
    assert!(defaults.job.checkpointing.is_none() && defaults.job.restart_strategy.is_none());
}
