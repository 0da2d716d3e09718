"""Flink's side of `weir-bench kafka`.

Runs the same pipeline as Weir's `kafka` workload on Apache Flink (PyFlink's local
mini-cluster, Flink SQL, so every per-record step runs in the JVM) with
`flink-connector-kafka`, against the same broker and the same pre-filled input topic:

  Kafka (CSV lines `sensor_id,ts_ms,temperature`, bounded at the offsets current at start,
  per-partition watermarks, 3 s out of orderness)
  -> 1 s tumbling windows per sensor (AVG, MAX, COUNT)
  -> Kafka, exactly once (one transaction per subtask per checkpoint), checkpoints every
     `--checkpoint-interval-ms`.

It prints one JSON line: `seconds` (from `execute_sql` to the end of the job, the final
checkpoint and its commits included, as Weir's `seconds`), `records_per_sec`,
`net_runtime_ms` (Flink's own), `checkpoints` (completed, from the job's log),
`jvm_peak_rss_mib` (the mini-cluster JVM's VmHWM).

With `--copy` it runs instead the copy job of `weir-bench kafka-latency`: the input topic's
values (unbounded, from the earliest offset) written unchanged to the output topic exactly
once; it runs until its stdin closes, then cancels the job and exits.

Usage: PYFLINK_PYTHON kafka.py [--copy] --brokers ADDR --input-topic IN --output-topic OUT
       --records N [--parallelism 2] [--checkpoint-interval-ms 1000] [--connector-jar JAR]
PYFLINK_PYTHON is the interpreter of the environment the Flink harness set up (apache-flink
installed). The connector jar defaults to
$HOME/.cache/weir-flink-jars/flink-sql-connector-kafka-5.0.0-2.2.jar; fetch it once with
  mvn dependency:copy -Dartifact=org.apache.flink:flink-sql-connector-kafka:5.0.0-2.2 \\
      -DoutputDirectory=$HOME/.cache/weir-flink-jars
"""
import argparse, glob, json, os, re, shutil, sys, tempfile, time

DEFAULT_JAR = os.path.expanduser("~/.cache/weir-flink-jars/flink-sql-connector-kafka-5.0.0-2.2.jar")
CKPT_RE = re.compile(r"Completed checkpoint (\d+) for job (\w+)")

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--brokers", required=True)
ap.add_argument("--input-topic", required=True)
ap.add_argument("--output-topic", required=True)
ap.add_argument("--records", type=int, required=True, help="records in the input topic")
ap.add_argument("--parallelism", type=int, default=2)
ap.add_argument("--checkpoint-interval-ms", type=int, default=1000)
ap.add_argument("--connector-jar", default=DEFAULT_JAR)
ap.add_argument("--copy", action="store_true", help="the copy job of `weir-bench kafka-latency`")
args = ap.parse_args()
if not os.path.isfile(args.connector_jar):
    raise SystemExit(f"connector jar {args.connector_jar} not found (see --help for the mvn command)")

work = tempfile.mkdtemp(prefix="flink-kafka-bench-")
log_dir = os.path.join(work, "log")
os.makedirs(log_dir)
os.environ["FLINK_LOG_DIR"] = log_dir  # the mini-cluster logs here

from jvm import jvm_peak_rss_mib  # noqa: E402 (beside this script)
from pyflink.common import Configuration  # noqa: E402 (after FLINK_LOG_DIR)
from pyflink.datastream import StreamExecutionEnvironment  # noqa: E402
from pyflink.table import EnvironmentSettings, StreamTableEnvironment  # noqa: E402

conf = Configuration()
conf.set_string("parallelism.default", str(args.parallelism))
conf.set_string("pipeline.jars", "file://" + os.path.abspath(args.connector_jar))
conf.set_string("execution.checkpointing.interval", f"{args.checkpoint_interval_ms} ms")
conf.set_string("execution.checkpointing.mode", "EXACTLY_ONCE")
conf.set_string("execution.checkpointing.storage", "filesystem")
conf.set_string("execution.checkpointing.dir", "file://" + os.path.join(work, "checkpoints"))
conf.set_string("state.backend.type", "hashmap")
senv = StreamExecutionEnvironment.get_execution_environment(conf)
senv.set_parallelism(args.parallelism)
settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build()
tenv = StreamTableEnvironment.create(senv, environment_settings=settings)

tag = f"flink-bench-{os.getpid()}"


def kafka_options(topic, extra):
    return ",\n".join(f"'{k}' = '{v}'" for k, v in [
        ("connector", "kafka"), ("topic", topic), ("properties.bootstrap.servers", args.brokers)] + extra)


EXACTLY_ONCE = [("properties.transaction.timeout.ms", "600000"), ("sink.delivery-guarantee", "exactly-once"),
                ("sink.transactional-id-prefix", tag)]
SCAN = [("properties.group.id", tag), ("scan.startup.mode", "earliest-offset")]

if args.copy:
    tenv.execute_sql(f"CREATE TEMPORARY TABLE copy_in (v STRING) WITH ({kafka_options(args.input_topic, SCAN + [('format', 'raw')])})")
    tenv.execute_sql(f"CREATE TEMPORARY TABLE copy_out (v STRING) WITH ({kafka_options(args.output_topic, EXACTLY_ONCE + [('format', 'raw')])})")
    client = tenv.execute_sql("INSERT INTO copy_out SELECT v FROM copy_in").get_job_client()
    sys.stdin.read()  # until weir-bench closes it
    client.cancel().result()
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0)

tenv.execute_sql(f"""
    CREATE TEMPORARY TABLE readings (
      sensor_id INT, ts_ms BIGINT, temperature DOUBLE,
      ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
      WATERMARK FOR ts AS ts - INTERVAL '3' SECOND
    ) WITH ({kafka_options(args.input_topic, SCAN + [('scan.bounded.mode', 'latest-offset'), ('format', 'csv')])})""")
tenv.execute_sql(f"""
    CREATE TEMPORARY TABLE windows (
      sensor_id INT, window_start TIMESTAMP(3), window_end TIMESTAMP(3),
      avg_temp DOUBLE, max_temp DOUBLE, cnt BIGINT
    ) WITH ({kafka_options(args.output_topic, EXACTLY_ONCE + [('format', 'csv')])})""")

started = time.time()
result = tenv.execute_sql("""
    INSERT INTO windows
    SELECT sensor_id, window_start, window_end, AVG(temperature), MAX(temperature), COUNT(*)
    FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' SECOND))
    GROUP BY sensor_id, window_start, window_end""")
client = result.get_job_client()
job_id = str(client.get_job_id())
execution = client.get_job_execution_result().result()
seconds = time.time() - started


checkpoints = 0
for path in glob.glob(os.path.join(log_dir, "*.log")):
    with open(path, errors="replace") as f:
        checkpoints += sum(1 for line in f if (m := CKPT_RE.search(line)) and m.group(2) == job_id)
print(json.dumps({
    "workload": "kafka", "engine": "flink", "records": args.records, "seconds": seconds,
    "records_per_sec": args.records / seconds, "net_runtime_ms": execution.get_net_runtime(),
    "checkpoints": checkpoints, "checkpoint_interval_ms": args.checkpoint_interval_ms,
    "jvm_peak_rss_mib": jvm_peak_rss_mib(),
}))
shutil.rmtree(work, ignore_errors=True)
