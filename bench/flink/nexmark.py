"""Flink's side of `weir-bench nexmark`.

Runs Flink SQL's Nexmark queries (PyFlink's local mini-cluster, so every per-record step
runs in the JVM) over the events `weir-bench nexmark --flink-python PY` wrote as JSON
lines in the schema of Flink's Nexmark table, into a `blackhole` sink, one query after the
other, and prints one JSON line per query: `seconds` (from `execute_sql` to the end of the
job), `events_per_sec`, `net_runtime_ms` (Flink's own) and `jvm_peak_rss_mib`.

The table and the views `person`, `auction`, `bid` are those of Flink's Nexmark suite
(event time from the event's `dateTime`, watermarks 4 s behind); the query texts are the
suite's, except q14, whose `count_char` UDF is written with built-in functions (a Python
UDF would measure Python), and q13: Flink 2.x's filesystem tables are no lookup sources,
so instead of joining with the side input (keys 0 to 9,999 with their decimal digits as
value, the table Weir's q13 joins with) it computes the value, which costs it less.

The queries run one after the other in one JVM (warmed up by the earlier ones), where each
of Weir's runs on a fresh mini-cluster. Write the events with
`cargo run --release -p weir-nexmark --example nexmark_events -- N DIR P` (one file per
subtask: Flink's file source reads a subtask's files one after the other, and a second file
would start far behind the first one's watermark); DIR must not be hidden (Flink's file
source skips a directory whose name starts with `.` or `_`).

Usage: PYFLINK_PYTHON nexmark.py --events-dir DIR --events N --queries q0,q5
       [--parallelism 2] [--state-backend hashmap|rocksdb] [--checkpoint-interval-ms MS]
       [--incremental true|false]
"""
import argparse, atexit, json, os, shutil, tempfile, time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--events-dir", required=True, help="the events-<i>.json files")
ap.add_argument("--events", type=int, required=True, help="how many events the files hold")
ap.add_argument("--queries", required=True, help="comma-separated, e.g. q0,q5")
ap.add_argument("--parallelism", type=int, default=2)
ap.add_argument("--state-backend", default="hashmap", choices=["hashmap", "rocksdb"])
ap.add_argument("--checkpoint-interval-ms", type=int)
ap.add_argument("--incremental", default="true", choices=["true", "false"],
                help="RocksDB checkpoints upload only new files (with --checkpoint-interval-ms)")
args = ap.parse_args()
events_dir = os.path.abspath(args.events_dir)
# Flink's file source silently skips a file or directory whose name starts with '.' or
# '_', the directory it is given included: it would read nothing.
if os.path.basename(events_dir).startswith((".", "_")):
    raise SystemExit(f"--events-dir {events_dir}: Flink's file source skips a directory whose "
                     "name starts with '.' or '_'; use another directory")
if not os.path.isdir(events_dir):
    raise SystemExit(f"--events-dir {events_dir} is not a directory")
if not any(f.startswith("events-") for f in os.listdir(events_dir)):
    raise SystemExit(f"--events-dir {events_dir} holds no events-<i>.json files")

HOT_ITEMS = """SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
  FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
  GROUP BY auction, window_start, window_end"""
CHANNEL_ID = "REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)"
DAY = "DATE_FORMAT(`dateTime`, 'yyyy-MM-dd')"
RANKS = ["price < 10000", "price >= 10000 AND price < 1000000", "price >= 1000000"]


def ranked(expr, name):
    """`expr` in total and filtered by each price rank, as `total_<name>`, `rank<i>_<name>`."""
    parts = [f"{expr} AS total_{name}"]
    parts += [f"{expr} FILTER (WHERE {r}) AS rank{i}_{name}" for i, r in enumerate(RANKS, 1)]
    return ", ".join(parts)


DAILY = ", ".join([ranked("count(*)", "bids"), ranked("count(DISTINCT bidder)", "bidders"),
                   ranked("count(DISTINCT auction)", "auctions")])
QUERIES = {
    "q0": "SELECT auction, bidder, price, `dateTime`, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908 * price AS price, `dateTime`, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
    "q3": """SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P
      ON A.seller = P.id WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')""",
    "q4": """SELECT Q.category, AVG(Q.final) FROM (
        SELECT MAX(B.price) AS final, A.category FROM auction A, bid B
        WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
        GROUP BY A.id, A.category) Q
      GROUP BY Q.category""",
    "q5": f"""SELECT AuctionBids.auction, AuctionBids.num FROM ({HOT_ITEMS}) AS AuctionBids
      JOIN (SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
            FROM ({HOT_ITEMS}) AS CountBids GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids
      ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
         AND AuctionBids.num >= MaxBids.maxn""",
    "q7": """SELECT B.auction, B.price, B.bidder, B.`dateTime`, B.extra FROM bid B
      JOIN (SELECT MAX(price) AS maxprice, window_end AS `dateTime`
            FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
            GROUP BY window_start, window_end) B1
      ON B.price = B1.maxprice
      WHERE B.`dateTime` BETWEEN B1.`dateTime` - INTERVAL '10' SECOND AND B1.`dateTime`""",
    "q8": """SELECT P.id, P.name, P.starttime FROM (
        SELECT id, name, window_start AS starttime, window_end AS endtime
        FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
        GROUP BY id, name, window_start, window_end) P
      JOIN (SELECT seller, window_start AS starttime, window_end AS endtime
        FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
        GROUP BY seller, window_start, window_end) A
      ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime""",
    "q9": """SELECT id, itemName, description, initialBid, reserve, `dateTime`, expires, seller,
        category, extra, auction, bidder, price, bid_dateTime, bid_extra
      FROM (SELECT A.*, B.auction, B.bidder, B.price, B.`dateTime` AS bid_dateTime,
              B.extra AS bid_extra,
              ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.`dateTime` ASC) AS rownum
            FROM auction A, bid B
            WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires)
      WHERE rownum <= 1""",
    "q11": """SELECT B.bidder, count(*) AS bid_count,
        SESSION_START(B.`dateTime`, INTERVAL '10' SECOND) AS starttime,
        SESSION_END(B.`dateTime`, INTERVAL '10' SECOND) AS endtime
      FROM bid B GROUP BY B.bidder, SESSION(B.`dateTime`, INTERVAL '10' SECOND)""",
    "q12": """SELECT B.bidder, count(*) AS bid_count,
        TUMBLE_START(B.p_time, INTERVAL '10' SECOND) AS starttime,
        TUMBLE_END(B.p_time, INTERVAL '10' SECOND) AS endtime
      FROM (SELECT *, PROCTIME() AS p_time FROM bid) B
      GROUP BY B.bidder, TUMBLE(B.p_time, INTERVAL '10' SECOND)""",
    # Flink 2.x's filesystem tables are no lookup sources, so the suite's lookup join
    # cannot run; the side input's value (the key's digits) is computed instead, which
    # costs Flink less than the join.
    "q13": """SELECT auction, bidder, price, `dateTime`, CAST(MOD(auction, 10000) AS VARCHAR) AS `value`
      FROM bid""",
    "q14": """SELECT auction, bidder, 0.908 * price AS price,
        CASE WHEN HOUR(`dateTime`) >= 8 AND HOUR(`dateTime`) <= 18 THEN 'dayTime'
             WHEN HOUR(`dateTime`) <= 6 OR HOUR(`dateTime`) >= 20 THEN 'nightTime'
             ELSE 'otherTime' END AS bidTimeType,
        `dateTime`, extra, CHAR_LENGTH(extra) - CHAR_LENGTH(REPLACE(extra, 'c', '')) AS c_counts
      FROM bid WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000""",
    "q15": f"SELECT {DAY} AS `day`, {DAILY} FROM bid GROUP BY {DAY}",
    "q16": f"""SELECT channel, {DAY} AS `day`, max(DATE_FORMAT(`dateTime`, 'HH:mm')) AS `minute`,
        {DAILY} FROM bid GROUP BY channel, {DAY}""",
    "q17": f"""SELECT auction, {DAY} AS `day`, {ranked("count(*)", "bids")},
        min(price) AS min_price, max(price) AS max_price, avg(price) AS avg_price,
        sum(price) AS sum_price
      FROM bid GROUP BY auction, {DAY}""",
    "q18": """SELECT auction, bidder, price, channel, url, `dateTime`, extra
      FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY `dateTime` DESC)
              AS rank_number FROM bid)
      WHERE rank_number <= 1""",
    "q19": """SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC)
        AS rank_number FROM bid) WHERE rank_number <= 10""",
    "q20": """SELECT auction, bidder, price, channel, url, B.`dateTime` AS bid_time, B.extra AS bid_extra,
        itemName, description, initialBid, reserve, A.`dateTime` AS auction_time, expires, seller,
        category, A.extra AS auction_extra
      FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id WHERE A.category = 10""",
    "q21": f"""SELECT auction, bidder, price, channel,
        CASE WHEN lower(channel) = 'apple' THEN '0' WHEN lower(channel) = 'google' THEN '1'
             WHEN lower(channel) = 'facebook' THEN '2' WHEN lower(channel) = 'baidu' THEN '3'
             ELSE {CHANNEL_ID} END AS channel_id
      FROM bid WHERE {CHANNEL_ID} IS NOT NULL OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu')""",
    "q22": """SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) AS dir1,
        SPLIT_INDEX(url, '/', 4) AS dir2, SPLIT_INDEX(url, '/', 5) AS dir3 FROM bid""",
}


queries = args.queries.split(",")
unknown = [q for q in queries if q not in QUERIES]
if unknown:
    raise SystemExit(f"unknown queries {', '.join(unknown)}: expected some of {', '.join(QUERIES)}")

work = tempfile.mkdtemp(prefix="flink-nexmark-")
# Removed however the script ends (a failed job, a bad setting, Ctrl-C).
atexit.register(shutil.rmtree, work, ignore_errors=True)
os.environ["FLINK_LOG_DIR"] = os.path.join(work, "log")

from jvm import jvm_peak_rss_mib  # noqa: E402 (beside this script)
from pyflink.common import Configuration  # noqa: E402 (after FLINK_LOG_DIR)
from pyflink.datastream import StreamExecutionEnvironment  # noqa: E402
from pyflink.table import EnvironmentSettings, StreamTableEnvironment, TableDescriptor  # noqa: E402

conf = Configuration()
conf.set_string("parallelism.default", str(args.parallelism))
conf.set_string("pipeline.object-reuse", "true")
conf.set_string("state.backend.type", args.state_backend)
if args.checkpoint_interval_ms:
    conf.set_string("execution.checkpointing.interval", f"{args.checkpoint_interval_ms} ms")
    conf.set_string("execution.checkpointing.mode", "EXACTLY_ONCE")
    conf.set_string("execution.checkpointing.storage", "filesystem")
    conf.set_string("execution.checkpointing.dir", "file://" + os.path.join(work, "checkpoints"))
    conf.set_string("execution.checkpointing.incremental", args.incremental)
senv = StreamExecutionEnvironment.get_execution_environment(conf)
senv.set_parallelism(args.parallelism)
settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build()
tenv = StreamTableEnvironment.create(senv, environment_settings=settings)

tenv.execute_sql(f"""
CREATE TEMPORARY TABLE nexmark_table (
  event_type INT,
  person ROW<id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR, city VARCHAR,
             state VARCHAR, `dateTime` TIMESTAMP(3), extra VARCHAR>,
  auction ROW<id BIGINT, itemName VARCHAR, description VARCHAR, initialBid BIGINT, reserve BIGINT,
              `dateTime` TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT,
              extra VARCHAR>,
  bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
          `dateTime` TIMESTAMP(3), extra VARCHAR>,
  `dateTime` AS CASE WHEN event_type = 0 THEN person.`dateTime`
                     WHEN event_type = 1 THEN auction.`dateTime`
                     ELSE bid.`dateTime` END,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'file://{events_dir}',
        'format' = 'json')""")
tenv.execute_sql("""CREATE TEMPORARY VIEW person AS SELECT person.id, person.name,
  person.emailAddress, person.creditCard, person.city, person.state, `dateTime`, person.extra
  FROM nexmark_table WHERE event_type = 0""")
tenv.execute_sql("""CREATE TEMPORARY VIEW auction AS SELECT auction.id, auction.itemName,
  auction.description, auction.initialBid, auction.reserve, `dateTime`, auction.expires,
  auction.seller, auction.category, auction.extra FROM nexmark_table WHERE event_type = 1""")
tenv.execute_sql("""CREATE TEMPORARY VIEW bid AS SELECT bid.auction, bid.bidder, bid.price,
  bid.channel, bid.url, `dateTime`, bid.extra FROM nexmark_table WHERE event_type = 2""")

for name in queries:
    table = tenv.sql_query(QUERIES[name])
    started = time.time()
    result = table.execute_insert(TableDescriptor.for_connector("blackhole").build())
    execution = result.get_job_client().get_job_execution_result().result()
    seconds = time.time() - started
    print(json.dumps({
        "workload": "nexmark", "engine": "flink", "query": name, "events": args.events,
        "parallelism": args.parallelism, "state_backend": args.state_backend,
        "seconds": seconds, "events_per_sec": args.events / seconds,
        "net_runtime_ms": execution.get_net_runtime(),
        # The JVM's peak so far: over this and every earlier query of the run.
        "jvm_peak_rss_mib": jvm_peak_rss_mib(),
    }), flush=True)
