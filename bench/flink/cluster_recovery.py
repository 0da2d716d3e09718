"""Flink's side of `weir-bench cluster-recovery`.

Starts a standalone Flink session cluster from a PyFlink installation (a JobManager and three
TaskManagers of one slot each, as processes), submits `cluster_recovery_job.py` (datagen
sensor readings at parallelism 2, 1 s tumbling windows per sensor and an alerts filter,
checkpoints every 500 ms, filesystem sinks) with `flink run -d -py`, and prints one JSON line:

- submit_to_first_output_ms: from starting `flink run` to the first byte in the alerts
  directory (in-progress files count);
- recovery_ms: from kill -9 of a TaskManager running the job, once a checkpoint completed,
  to the first alert byte written after the job runs again (Flink's default restart strategy
  and heartbeat settings apply).

Usage: python3 cluster_recovery.py --python PYFLINK_PYTHON [--rows N] [--rate R]
where PYFLINK_PYTHON is the interpreter of the environment the Flink harness set up
(apache-flink installed). R is the total rate: Weir's `--rate` is per worker, so compare
Weir's `--rate X` with R = 2X.
"""
import argparse, glob, json, os, re, shutil, subprocess, tempfile, time, urllib.request

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--python", required=True, help="python of the PyFlink environment")
ap.add_argument("--rows", type=int, default=2_000_000)
ap.add_argument("--rate", type=int, default=100_000)
args = ap.parse_args()
flink_home = subprocess.run([args.python, "-c", "import pyflink, os; print(os.path.dirname(pyflink.__file__))"],
                            capture_output=True, text=True, check=True).stdout.strip()
job_py = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster_recovery_job.py")
work = tempfile.mkdtemp(prefix="flink-cluster-recovery-")
for d in ("log", "pid"):
    os.makedirs(os.path.join(work, d))
shutil.copytree(os.path.join(flink_home, "conf"), os.path.join(work, "conf"))
env = dict(os.environ, FLINK_CONF_DIR=work + "/conf", FLINK_LOG_DIR=work + "/log",
           FLINK_PID_DIR=work + "/pid", PYFLINK_CLIENT_EXECUTABLE=args.python)
out = work + "/out"
alerts = out + "-alerts"
bin_ = os.path.join(flink_home, "bin")


def sh(*a):
    return subprocess.run(list(a), env=env, capture_output=True, text=True)


def rest(p):
    with urllib.request.urlopen("http://localhost:8081" + p, timeout=5) as r:
        return json.load(r)


def wait(what, f, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = f()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.005)
    raise SystemExit("timed out waiting for " + what)


def size():
    if not os.path.isdir(alerts):
        return 0
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(alerts) for f in fs)


job = None
try:
    sh(bin_ + "/jobmanager.sh", "start")
    for _ in range(3):
        sh(bin_ + "/taskmanager.sh", "start")
    wait("3 taskmanagers", lambda: len(rest("/taskmanagers")["taskmanagers"]) == 3, 120)
    t0 = time.time()
    r = sh(bin_ + "/flink", "run", "-d", "-pyexec", args.python, "-py", job_py, out, str(args.rows), str(args.rate))
    m = re.search(r"JobID ([0-9a-f]{32})", r.stdout + r.stderr)
    if not m:
        raise SystemExit(r.stdout + r.stderr)
    job = m.group(1)
    wait("the first output", lambda: size() > 0)
    first = time.time() - t0
    wait("a checkpoint", lambda: rest(f"/jobs/{job}/checkpoints")["counts"]["completed"] >= 1)
    busy = [t for t in rest("/taskmanagers")["taskmanagers"] if t["freeSlots"] == 0]
    port = busy[0]["dataPort"]
    ss = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    pid = int(re.search(r"pid=(\d+)", ss).group(1))
    killed = time.time()
    os.kill(pid, 9)

    def restarted():
        j = rest(f"/jobs/{job}")
        failed = rest(f"/jobs/{job}/exceptions").get("exceptionHistory", {}).get("entries")
        return failed and j["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in j["vertices"])

    wait("the restart", restarted)
    base = size()
    wait("output after the restore", lambda: size() > base)
    recovery = time.time() - killed
    print(json.dumps({"engine": "flink", "rows": args.rows, "rate": args.rate,
                      "submit_to_first_output_ms": round(first * 1000),
                      "recovery_ms": round(recovery * 1000)}))
finally:
    if job:
        sh(bin_ + "/flink", "cancel", job)
    sh(bin_ + "/taskmanager.sh", "stop-all")
    sh(bin_ + "/jobmanager.sh", "stop-all")
    shutil.rmtree(work, ignore_errors=True)
