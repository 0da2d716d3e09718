//! The sensor pipeline's PostgreSQL output refuses bad arguments naming the flag, and an
//! unreachable server fails the run naming the server but never its password. (Rows
//! through failures against a real server: `cli/tests/cluster_postgres.rs`.)

mod common;

use common::{example_bin, run};

#[test]
fn bad_postgres_arguments_are_rejected_naming_the_flag() {
    let url = "postgres://weir@127.0.0.1:5432/weir";
    for (args, needle) in [
        (vec!["--postgres-url", url], "--output-table"),
        (vec!["--output-table", "t"], "--postgres-url"),
        (
            vec![
                "--postgres-url",
                url,
                "--output-table",
                "windows; DROP TABLE x",
            ],
            "--output-table",
        ),
        (
            vec!["--postgres-url", url, "--output-table", "9lives"],
            "--output-table",
        ),
    ] {
        let out = run(&example_bin("sensor_pipeline"), &args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            out.stderr.contains(needle),
            "{args:?}: stderr does not name {needle}: {}",
            out.stderr
        );
    }
}

#[test]
fn an_unreachable_server_fails_the_run_naming_it_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let url = format!("postgres://weir:s3cr3t-pw@127.0.0.1:{port}/weir");
    let args = [
        "--postgres-url",
        &url,
        "--output-table",
        "windows",
        "--records",
        "1000",
    ];
    let out = run(&example_bin("sensor_pipeline"), &args);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cr3t-pw"), "{}", out.stderr);
    assert!(!out.stdout.contains("s3cr3t-pw"), "{}", out.stdout);
}
