# The Flink job of cluster_recovery.py: sensor readings at parallelism 2, 1 s tumbling
# windows per sensor and an alerts filter, checkpoints every 500 ms, filesystem sinks.
import sys
from pyflink.table import EnvironmentSettings, TableEnvironment
out, rows, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
c = t.get_config()
c.set("parallelism.default", "2")
c.set("execution.checkpointing.interval", "500 ms")
c.set("pipeline.name", "sensor-recovery")
t.execute_sql(f"""CREATE TABLE src (sensor_id INT, temperature DOUBLE, ts AS PROCTIME())
  WITH ('connector'='datagen', 'rows-per-second'='{rate}', 'number-of-rows'='{rows}',
        'fields.sensor_id.min'='0', 'fields.sensor_id.max'='9999',
        'fields.temperature.min'='-20', 'fields.temperature.max'='80')""")
t.execute_sql(f"""CREATE TABLE sink (sensor_id INT, n BIGINT, avg_t DOUBLE, max_t DOUBLE)
  WITH ('connector'='filesystem', 'path'='file://{out}', 'format'='csv')""")
t.execute_sql(f"""CREATE TABLE alerts (sensor_id INT, temperature DOUBLE)
  WITH ('connector'='filesystem', 'path'='file://{out}-alerts', 'format'='csv')""")
ss = t.create_statement_set()
ss.add_insert_sql("""INSERT INTO sink SELECT sensor_id, COUNT(*), AVG(temperature), MAX(temperature)
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
  GROUP BY sensor_id, window_start, window_end""")
ss.add_insert_sql("INSERT INTO alerts SELECT sensor_id, temperature FROM src WHERE temperature > 75")
ss.execute()
