"""Flink's JobManager failover time with ZooKeeper high availability (`cluster-recovery`, kill=jobmanager).

Runs a standalone Flink session cluster from the PyFlink installation of this interpreter, as
real processes on loopback: JobManager A (the leader), JobManager B (standby; same conf dir,
its own rest.port via -D) and one TaskManager with 2 slots, all with ZooKeeper HA on the
given quorum (a unique path.root and cluster-id under it; HA storage, checkpoints and logs in
a temp dir). It submits a Flink SQL job (`flink run -d -py`, the client finds the leader
through ZooKeeper): datagen at --rate rows/s in total, parallelism 2, into the `print` sink,
whose lines land in the TaskManager's .out file (line-flushed, so output is visible at once),
checkpoints every --checkpoint-interval-ms, fixed-delay restarts with a 1 s delay.

Once the job runs, has completed a checkpoint and output flows, it kill -9s JobManager A and
prints one JSON line with times from the kill:
- leader_elected_ms: until B logs that its REST endpoint was granted leadership (B's REST
  endpoint, dispatcher and resource manager share one ZooKeeper leader latch);
- old_tasks_stopped_ms: until the TaskManager has freed the old tasks (it fails them when it
  learns through ZooKeeper that their JobManager lost leadership);
- job_running_ms: until B logs that the recovered job switched to RUNNING;
- job_recovered_ms: until B logs every subtask of the job RUNNING;
- recovery_ms: until the .out file grows past its size at old_tasks_stopped_ms, i.e. the
  first output of the job as recovered by B;
- restored_checkpoint: the checkpoint B restored the job from.
The times come from the processes' logs, not B's REST API, which caches job details for
web.refresh-interval (3 s); the REST API must confirm the job RUNNING afterwards.

Usage: $HOME/.cache/weir-flink-venv/bin/python ha_failover.py --zookeeper 127.0.0.1:PORT \
           [--session-timeout-ms 1000] [--rate 2000] [--checkpoint-interval-ms 500]
           [--timeout 180 (s, per wait)] [--keep (keep the temp dir with all logs)]
The ZooKeeper server is not started here. Standard library only; every wait is bounded and
every process started here is killed (by process group), the job cancelled, this run's
ZooKeeper subtree deleted and the temp dir removed at exit, also on failure or SIGTERM.
"""
import argparse, glob, importlib.util, json, os, re, shutil, signal, socket, subprocess, sys
import tempfile, time, urllib.request

# The job, written to the temp dir and run by `flink run -d -py JOB RATE INTERVAL_MS`.
JOB = """import sys
from pyflink.table import EnvironmentSettings, TableEnvironment
rate, interval = sys.argv[1], sys.argv[2]
t = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
c = t.get_config()
c.set("parallelism.default", "2")
c.set("execution.checkpointing.interval", interval + " ms")
c.set("pipeline.name", "ha-failover")
t.execute_sql("CREATE TABLE src (k INT, v DOUBLE) WITH ('connector'='datagen', "
              "'rows-per-second'='" + rate + "', 'fields.k.min'='0', 'fields.k.max'='9999')")
t.execute_sql("CREATE TABLE sink (k INT, v DOUBLE) WITH ('connector'='print')")
t.execute_sql("INSERT INTO sink SELECT k, v FROM src")
"""

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--zookeeper", required=True, help="ZooKeeper quorum, e.g. 127.0.0.1:2181")
ap.add_argument("--session-timeout-ms", type=int, default=1000)
ap.add_argument("--rate", type=int, default=2000, help="rows per second in total")
ap.add_argument("--checkpoint-interval-ms", type=int, default=500)
ap.add_argument("--timeout", type=int, default=180, help="bound (s) on each wait")
ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) for debugging")
args = ap.parse_args()


def fail(msg):
    raise SystemExit("ha_failover.py: " + msg)


# SIGTERM/SIGINT unwind through the finally below, so nothing is left running.
def _stop(signum, _frame):
    raise SystemExit(f"ha_failover.py: stopped by signal {signum}")


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)

spec = importlib.util.find_spec("pyflink")
if spec is None:
    fail("pyflink is not installed for " + sys.executable)
flink_home = os.path.dirname(spec.origin)
bin_ = os.path.join(flink_home, "bin")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rest(port, path, timeout=2.0):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return json.load(r)


def wait(what, f, timeout=None, poll=0.01):
    """Polls f until it returns a truthy value (exceptions count as falsy) or fails after timeout s."""
    end = time.monotonic() + (timeout or args.timeout)
    while time.monotonic() < end:
        try:
            v = f()
            if v:
                return v
        except Exception:
            pass
        time.sleep(poll)
    fail(f"timed out after {timeout or args.timeout} s waiting for {what}")


class Log:
    """A process's console output file, read incrementally."""

    def __init__(self, path):
        self.path, self.pos, self.text = path, 0, ""

    def grep(self, needle):
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            chunk = f.read()
        self.pos += len(chunk)
        self.text += chunk.decode(errors="replace")
        return needle in self.text


work = tempfile.mkdtemp(prefix="flink-ha-failover-")
uid = f"{os.getpid()}-{int(time.time() * 1000)}"
zk_root = f"/flink-bench-{uid}"  # this run's ZooKeeper subtree, deleted at exit
procs = {}  # name -> Popen, each the leader of its own process group
logs = {}
job = None
leader_port = None
try:
    # --- configuration: one conf dir for all processes; B overrides rest.port with -D ----
    conf = os.path.join(work, "conf")
    shutil.copytree(os.path.join(flink_home, "conf"), conf)
    with open(os.path.join(conf, "config.yaml")) as f:  # keep the distribution's JVM flags
        m = re.search(r"^\s+all:\s*(--add-.*)$", f.read(), re.M)
    java_opts = m.group(1) if m else ""
    rest_a, rest_b = free_port(), free_port()
    settings = {
        "env.java.opts.all": java_opts,
        "high-availability.type": "zookeeper",
        "high-availability.zookeeper.quorum": args.zookeeper,
        "high-availability.zookeeper.path.root": zk_root,
        "high-availability.cluster-id": f"/ha-failover-{uid}",
        "high-availability.storageDir": f"file://{work}/ha",
        "high-availability.zookeeper.client.session-timeout": f"{args.session_timeout_ms} ms",
        "high-availability.jobmanager.port": "0",  # the JobManagers' RPC ports: any free one
        "blob.server.port": "0",
        "execution.checkpointing.interval": f"{args.checkpoint_interval_ms} ms",
        "execution.checkpointing.storage": "filesystem",
        "execution.checkpointing.dir": f"file://{work}/checkpoints",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "2147483647",
        "restart-strategy.fixed-delay.delay": "1 s",
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.bind-host": "127.0.0.1",
        "jobmanager.memory.process.size": "1024m",
        "jobmanager.execution.failover-strategy": "region",
        "taskmanager.host": "127.0.0.1",
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.numberOfTaskSlots": "2",
        "taskmanager.memory.process.size": "1536m",
        "parallelism.default": "2",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": str(rest_a),
    }
    with open(os.path.join(conf, "config.yaml"), "w") as f:  # flat keys are valid Flink 2.x YAML
        f.writelines(f"{k}: {json.dumps(v)}\n" for k, v in settings.items())
    for d in ("log", "pid", "tm-log"):
        os.makedirs(os.path.join(work, d))
    env = dict(os.environ, FLINK_CONF_DIR=conf, FLINK_LOG_DIR=work + "/log", FLINK_PID_DIR=work + "/pid",
               PYFLINK_CLIENT_EXECUTABLE=sys.executable)
    env.pop("FLINK_HOME", None)

    def start(name, cmd, extra_env=None):
        out = os.path.join(work, name + ".console")
        with open(out, "w") as f:
            procs[name] = subprocess.Popen(cmd, env=dict(env, **(extra_env or {})), stdin=subprocess.DEVNULL,
                                           stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        logs[name] = Log(out)

    def alive(name):
        if procs[name].poll() is not None:
            fail(f"{name} exited with status {procs[name].returncode}")
        return True

    GRANTED = "was granted leadership"  # WebMonitorEndpoint: "http://127.0.0.1:P was granted leadership ..."

    # --- JobManager A; wait until it leads ------------------------------------------------
    start("jobmanager-a", [bin_ + "/jobmanager.sh", "start-foreground", "-D", f"rest.port={rest_a}"])
    wait("JobManager A to be granted leadership", lambda: alive("jobmanager-a") and logs["jobmanager-a"].grep(GRANTED))
    wait("JobManager A's REST API", lambda: rest(rest_a, "/overview"))
    leader_port = rest_a

    # --- JobManager B (standby): its REST endpoint listens, but it must not lead -------------
    start("jobmanager-b", [bin_ + "/jobmanager.sh", "start-foreground", "-D", f"rest.port={rest_b}"])

    def b_listening():
        alive("jobmanager-b")
        socket.create_connection(("127.0.0.1", rest_b), timeout=1).close()
        return True

    wait("JobManager B's REST endpoint", b_listening)
    wait("JobManager B to join the leader election", lambda: all(logs["jobmanager-b"].grep(
        f"has been registered under component '{c}'") for c in ("rest_server", "dispatcher", "resource_manager")))
    if logs["jobmanager-b"].grep(GRANTED):
        fail("JobManager B was granted leadership while A is alive")

    # --- one TaskManager with 2 slots; it finds the ResourceManager through ZooKeeper --------
    # STD_REDIRECT_TO_FILE: its stdout (the print sink) goes to tm-log/*.out, logs to *.log.
    start("taskmanager", [bin_ + "/taskmanager.sh", "start-foreground"],
          {"FLINK_LOG_DIR": work + "/tm-log", "STD_REDIRECT_TO_FILE": "true"})
    wait("the TaskManager to register", lambda: alive("taskmanager") and
         [t for t in rest(rest_a, "/taskmanagers")["taskmanagers"] if t["slotsNumber"] == 2])

    def out_size():
        return sum(os.path.getsize(p) for p in glob.glob(work + "/tm-log/*.out"))

    # --- submit the job (detached; the client finds the leader's REST address in ZooKeeper) --
    job_py = os.path.join(work, "job.py")
    with open(job_py, "w") as f:
        f.write(JOB)
    start("client", [bin_ + "/flink", "run", "-d", "-pyexec", sys.executable, "-py", job_py,
                     str(args.rate), str(args.checkpoint_interval_ms)])
    try:
        procs["client"].wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        fail("timed out submitting the job")
    logs["client"].grep("")
    m = re.search(r"JobID ([0-9a-f]{32})", logs["client"].text)
    if not m:
        fail("submission failed:\n" + logs["client"].text[-5000:])
    job = m.group(1)

    def all_running(port):
        """The job is RUNNING with every subtask of every vertex RUNNING, according to port."""
        j = rest(port, f"/jobs/{job}", timeout=1)
        return j["state"] == "RUNNING" and all(v["tasks"].get("RUNNING", 0) == v["parallelism"] for v in j["vertices"])

    wait("the job to run", lambda: all_running(rest_a))
    wait("a completed checkpoint", lambda: rest(rest_a, f"/jobs/{job}/checkpoints")["counts"]["completed"] >= 1)
    first = wait("the first output", out_size)
    wait("output to keep flowing", lambda: out_size() > first)
    time.sleep(1.0)  # let it settle: a few more checkpoints, steady output
    if logs["jobmanager-b"].grep(GRANTED):
        fail("JobManager B was granted leadership before the kill")

    # --- kill -9 the leader and time the failover ------------------------------------------
    # One loop polls, every 2 ms, B's console log and the TaskManager's log (log4j flushes each
    # line) and the size of the .out file, and notes when each event is first seen. B's REST
    # API is not used for the times: it caches job details for web.refresh-interval (3 s).
    # The datagen source emits each second's rows in one burst as soon as it starts, so "new
    # output" is taken as growth past the size the .out file has once the TaskManager has
    # freed the old tasks (after which they cannot print any more), not past its size when B
    # reports the subtasks RUNNING (that would wait for the next burst, up to 1 s later).
    subtasks = sum(v["parallelism"] for v in rest(rest_a, f"/jobs/{job}")["vertices"])
    tm_log = Log(glob.glob(work + "/tm-log/*.log")[0])
    blog = logs["jobmanager-b"]
    marks = {}
    for log in (blog, tm_log):
        log.grep("")
        marks[log] = len(log.text)  # only what is logged after the kill counts

    def logged(log, pattern):
        log.grep("")
        return re.findall(pattern, log.text[marks[log]:])

    events, base = {}, [None]
    killed = time.monotonic()
    os.killpg(procs["jobmanager-a"].pid, signal.SIGKILL)

    def failover_done():
        now = round((time.monotonic() - killed) * 1000)
        alive("jobmanager-b")
        alive("taskmanager")
        checks = {
            "leader_elected_ms": lambda: logged(blog, GRANTED),
            "job_running_ms": lambda: logged(blog, rf"ExecutionGraph\s.* - Job .*\({job}\) switched from state \w+ to RUNNING"),
            "job_recovered_ms": lambda: len(set(logged(
                blog, r"ExecutionGraph\s.*\(([0-9a-f_]+)\) switched from INITIALIZING to RUNNING"))) >= subtasks,
            "old_tasks_stopped_ms": lambda: len(set(logged(
                tm_log, r"Freeing task resources for .*\(([0-9a-f_]+)\)\."))) >= subtasks,
            "recovery_ms": lambda: base[0] is not None and out_size() > base[0],
        }
        for name, check in checks.items():
            if name not in events and check():
                events[name] = now
                if name == "old_tasks_stopped_ms":
                    base[0] = out_size()
        return len(events) == len(checks)

    wait("the job to recover on JobManager B and print again", failover_done, poll=0.002)
    procs["jobmanager-a"].wait(timeout=10)
    leader_port = rest_b
    restored = logged(blog, rf"Restoring job {job} from Checkpoint (\d+)")
    wait("B's REST API to report the job RUNNING", lambda: all_running(rest_b))
    result = {"engine": "flink", "workload": "cluster-recovery", "kill": "jobmanager",
              "session_timeout_ms": args.session_timeout_ms, "rate": args.rate,
              "checkpoint_interval_ms": args.checkpoint_interval_ms,
              **{k: events[k] for k in ("leader_elected_ms", "old_tasks_stopped_ms", "job_running_ms",
                                        "job_recovered_ms", "recovery_ms")},
              "restored_checkpoint": int(restored[0]) if restored else None}
    print(json.dumps(result), flush=True)
except BaseException as e:
    # Say what went wrong and show the end of each process's output.
    msg = str(e) if isinstance(e, SystemExit) else f"ha_failover.py: {type(e).__name__}: {e}"
    print(msg, file=sys.stderr)
    for name, log in logs.items():
        try:
            with open(log.path, errors="replace") as f:
                tail = f.read()[-3000:]
            print(f"--- {name} (last lines) ---\n{tail}", file=sys.stderr)
        except OSError:
            pass
    sys.exit(1)
finally:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup itself must not be interrupted
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Cancel the job on the current leader so Flink removes its HA data from ZooKeeper.
    if job and leader_port and procs.get("jobmanager-b") and procs["jobmanager-b"].poll() is None:
        try:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{leader_port}/jobs/{job}?mode=cancel", method="PATCH"), timeout=5).close()
            end = time.monotonic() + 20
            while time.monotonic() < end and rest(leader_port, f"/jobs/{job}")["state"] not in ("CANCELED", "FAILED"):
                time.sleep(0.2)
        except Exception:
            pass
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        for p in procs.values():
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + grace
        for p in procs.values():
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    # Remove this run's subtree from ZooKeeper (Flink removed the job's data when it was
    # cancelled; empty parents and the killed processes' ephemeral nodes remain), with the
    # ZooKeeper CLI shaded into flink-dist.
    if procs:
        try:
            subprocess.run(["java", "-cp", os.path.join(flink_home, "lib", "*"),
                            "org.apache.flink.shaded.zookeeper3.org.apache.zookeeper.ZooKeeperMain",
                            "-server", args.zookeeper, "deleteall", zk_root],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if args.keep:
        print("ha_failover.py: kept " + work, file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
