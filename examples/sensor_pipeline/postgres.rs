//! The sensor pipeline's PostgreSQL output: `--postgres-url URL --output-table NAME`
//! writes every window result as a row of NAME (created if missing, primary key on the
//! sensor and the window).
//!
//! With checkpoints the sink is exactly-once (PostgreSQL's two-phase commit) and inserts
//! plainly, so a repeated row would be refused by the primary key and fail the job: give a
//! new or empty table to every run. Without checkpoints it is at-least-once and upserts on
//! the primary key, so rows written again after a failure replace themselves.

use super::WindowStats;
use weir_api::DataStream;
use weir_connectors::postgres::PostgresSink;
use weir_connectors::DeliveryGuarantee;

/// A row of the table: sensor, window start and end, count, average and maximum.
type Row = (String, i64, i64, i64, f64, f64);

/// Checks `--output-table`: a table name, optionally schema-qualified, that needs no
/// quoting.
pub fn check_table(name: &str) -> anyhow::Result<()> {
    if !weir_connectors::postgres::is_table_name(name) {
        anyhow::bail!(
            "--output-table {name:?} is not a table name: letters, digits and `_` (not \
             starting with a digit, at most 63), optionally `schema.table`"
        );
    }
    Ok(())
}

/// Adds the table sink of the window results.
pub fn add_table_sink(stats: &DataStream<WindowStats>, url: &str, table: &str, exactly_once: bool) {
    let columns =
        "sensor_id, window_start_ms, window_end_ms, count, avg_temperature, max_temperature";
    let insert = format!("INSERT INTO {table} ({columns}) VALUES ($1, $2, $3, $4, $5, $6)");
    let (statement, guarantee) = if exactly_once {
        (insert, DeliveryGuarantee::ExactlyOnce)
    } else {
        (
            format!(
                "{insert} ON CONFLICT (sensor_id, window_start_ms, window_end_ms) DO UPDATE SET \
                 count = EXCLUDED.count, avg_temperature = EXCLUDED.avg_temperature, \
                 max_temperature = EXCLUDED.max_temperature"
            ),
            DeliveryGuarantee::AtLeastOnce,
        )
    };
    let sink = PostgresSink::new(url, &statement, |s: &WindowStats| -> Row {
        (
            s.sensor_id.clone(),
            s.window_start_ms,
            s.window_end_ms,
            s.count as i64,
            s.avg_temperature,
            s.max_temperature,
        )
    })
    .setup(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (sensor_id text NOT NULL, \
         window_start_ms bigint NOT NULL, window_end_ms bigint NOT NULL, count bigint NOT NULL, \
         avg_temperature double precision NOT NULL, max_temperature double precision NOT NULL, \
         PRIMARY KEY (sensor_id, window_start_ms, window_end_ms))"
    ))
    .delivery_guarantee(guarantee);
    stats
        .add_sink(sink)
        .name("Window Results to PostgreSQL")
        .uid("sensor-window-postgres");
}
