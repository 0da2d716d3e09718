#!/usr/bin/env bash
# Start/stop a throwaway S3-compatible server on 127.0.0.1 for tests: the server mode of
# `moto` (from PyPI, installed once into a virtualenv, version pinned below) with request
# signing enforced, an IAM user whose generated key may do anything on S3, and a bucket
# `weir`. moto is chosen because it checks what real S3 checks and a lenient server would
# let pass: SigV4 signatures (wrong keys are refused), multipart rules (parts under 5 MiB
# but the last are refused at completion), conditional writes (`If-None-Match: *` on an
# existing key is refused). It keeps everything in memory: a stopped server's objects are
# gone, except across `restart`, which copies them over. The server's random generator is
# seeded, so the generated key is the same on every start.
#
#   scripts/s3.sh start  [DIR]  # prints "dir=<RUN>", then (last line) the shell line to eval:
#                               # export AWS_ENDPOINT_URL=http://127.0.0.1:PORT
#                               #   AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION=us-east-1
#   scripts/s3.sh status [DIR]  # "running http://127.0.0.1:PORT" (exit 0) or "stopped" (exit 1)
#   scripts/s3.sh stop   [DIR]  # TERM (KILL after 10 s), removes DIR; idempotent
#   scripts/s3.sh pause  [DIR]  # freezes the server (SIGSTOP): it holds its port and answers nothing
#   scripts/s3.sh resume [DIR]  # thaws a paused server (SIGCONT): same objects, same address
#   scripts/s3.sh restart [DIR] # stops the server and starts a new one on the same address with
#                               # the same credentials and the bucket's objects copied over
#                               # (uploads not completed are lost, as moto keeps nothing)
#
# So `eval "$(scripts/s3.sh start)"` sets the variables the AWS tools and Weir read.
# DIR defaults to a fresh mktemp dir on start and to the last started run (recorded in
# ${TMPDIR:-/tmp}/weir-s3.last) on stop/status. Several servers can run at once, each with
# its own run dir and free port. Log: DIR/s3.log; the credentials: DIR/credentials (mode 600).
# Env: WEIR_S3_VENV (the virtualenv, default $HOME/.cache/weir-s3-venv);
# WEIR_S3_READY_TIMEOUT (s, default 60); WEIR_S3_OWNER_PID: stop the server (as `stop DIR`
# does) once that process exits, e.g. the test binary. Needs python3 with venv and PyPI.
set -euo pipefail

MOTO_VERSION=5.2.6
VENV="${WEIR_S3_VENV:-$HOME/.cache/weir-s3-venv}"
REGION=us-east-1
TMPROOT="${TMPDIR:-/tmp}"
LAST="$TMPROOT/weir-s3.last"
READY_TIMEOUT="${WEIR_S3_READY_TIMEOUT:-60}"
STOP_TIMEOUT=10
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SERVER_NAME=s3.sh
SERVER_NOUN=server
SERVER_MARK=moto_server.py
SERVER_PID_FILE=s3.pid
# shellcheck source=lib/server.sh
source "$(dirname "$SELF")/lib/server.sh"

# install_moto: the pinned moto in its virtualenv, installed once (under a lock, so test
# binaries starting servers at once install it once).
install_moto() {
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  flock -w 600 9 || die "timed out waiting for another installation of moto ($VENV.lock)"
  if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (apt-get install python3-venv)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2 ||
      die "pip could not install moto[server]==$MOTO_VERSION into $VENV"
  fi
  exec 9>&-
}

# ready PORT: the server answers HTTP.
ready() {
  "$VENV/bin/python" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=2).read()
EOF
}

# provision PORT RUN: an IAM user with a generated key allowed every S3 action, and the
# bucket `weir` created with that key; writes RUN/credentials ("KEY SECRET"). The server
# lets the first three requests through unsigned (the IAM calls) and checks every later one.
provision() {
  (umask 077 && "$VENV/bin/python" - "$1" "$REGION" >"$2/credentials") <<'EOF'
import boto3, json, sys
endpoint, region = f"http://127.0.0.1:{sys.argv[1]}", sys.argv[2]
iam = boto3.client("iam", endpoint_url=endpoint, region_name=region,
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="weir")
iam.put_user_policy(UserName="weir", PolicyName="s3", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="weir")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                  aws_access_key_id=key["AccessKeyId"],
                  aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket="weir")
print(key["AccessKeyId"], key["SecretAccessKey"])
EOF
}

# seed PORT: the server's generated ids (the access key) are the same on every start.
seed() {
  "$VENV/bin/python" - "$1" <<'EOF'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/moto-api/seed?a=42", method="POST"), timeout=5).read()
EOF
}

# objects PORT RUN dump|load: copies bucket `weir` into RUN/objects, or back.
objects() {
  "$VENV/bin/python" - "$1" "$REGION" "$2" "$3" <<'EOF'
import boto3, os, sys
port, region, run, action = sys.argv[1:5]
key, secret = open(os.path.join(run, "credentials")).read().split()
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=region,
                  aws_access_key_id=key, aws_secret_access_key=secret)
root = os.path.join(run, "objects")
if action == "dump":
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="weir"):
        for o in page.get("Contents", []):
            path = os.path.join(root, o["Key"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            s3.download_file("weir", o["Key"], path)
else:
    for d, _, files in os.walk(root):
        for f in files:
            path = os.path.join(d, f)
            s3.upload_file(path, "weir", os.path.relpath(path, root))
EOF
}

exports() {
  local key secret
  read -r key secret <"$2/credentials"
  echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$1 AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=$REGION"
}

# launch RUN PORT DEADLINE: starts RUN's server (detached from our stdio) and waits until
# it answers on PORT or DEADLINE (in $SECONDS) passes.
launch() {
  local run="$1" port="$2" deadline="$3"
  printf 'import sys\nfrom moto.server import main\nsys.exit(main())\n' >"$run/$SERVER_MARK"
  INITIAL_NO_AUTH_ACTION_COUNT=3 nohup "$VENV/bin/python" "$run/$SERVER_MARK" -H 127.0.0.1 \
    -p "$port" >>"$run/s3.log" 2>&1 </dev/null &
  await_server $! "$run" "$port" "$deadline" "${WEIR_S3_OWNER_PID:-}"
}

cmd_start() {
  install_moto
  local run try port deadline
  run="$(new_run_dir "${1:-}")" || exit 1
  for try in 1 2 3; do # a picked port may be taken before the server binds it
    port="$(free_ports 1)" || true
    [[ "$port" =~ ^[0-9]+$ ]] || die "python3 could not pick a free port"
    : >"$run/s3.log"
    echo "$port" >"$run/port"
    deadline=$((SECONDS + READY_TIMEOUT))
    if launch "$run" "$port" "$deadline"; then
      if ! { seed "$port" && provision "$port" "$run"; }; then
        halt "$run" KILL
        die "the server is up but creating its user and bucket failed (run dir $run, log s3.log)"
      fi
      echo "dir=$run"
      exports "$port" "$run"
      return 0
    fi
    kill -KILL "$(cat "$run/$SERVER_PID_FILE")" 2>/dev/null || true
    if ((SECONDS >= deadline)) || ! grep -qs "Address already in use" "$run/s3.log"; then
      break
    fi
    echo "s3.sh: port clash, retrying (attempt $try)" >&2
  done
  echo "s3.sh: server did not come up within ${READY_TIMEOUT}s (run dir $run)" >&2
  tail -n 40 "$run/s3.log" >&2 2>/dev/null || true
  exit 1
}

# signal_server DIR SIGNAL: sends SIGNAL to DIR's live server.
signal_server() {
  local run pid
  run="$(run_dir "${1:-}")"
  [[ -n "$run" ]] || die "no server directory"
  pid="$(live_pid "$run")"
  [[ -n "$pid" ]] || die "the server in $run is not running"
  kill "-$2" "$pid"
}

cmd_pause() { signal_server "${1:-}" STOP; }

cmd_restart() {
  local run port saved
  run="$(run_dir "${1:-}")"
  [[ -n "$run" && -f "$run/port" && -f "$run/credentials" ]] || die "no server directory to restart"
  [[ -n "$(live_pid "$run")" ]] || die "the server in $run is not running"
  port="$(cat "$run/port")"
  kill -CONT "$(live_pid "$run")" 2>/dev/null || true
  rm -rf "$run/objects"
  objects "$port" "$run" dump || die "cannot copy the bucket's objects out (run dir $run)"
  halt "$run" TERM
  saved="$(cat "$run/credentials")"
  launch "$run" "$port" $((SECONDS + READY_TIMEOUT)) ||
    die "server did not come back within ${READY_TIMEOUT}s (run dir $run)"
  { seed "$port" && provision "$port" "$run"; } ||
    die "the new server's user and bucket could not be created (run dir $run)"
  [[ "$(cat "$run/credentials")" == "$saved" ]] ||
    die "the new server generated other credentials (run dir $run)"
  objects "$port" "$run" load || die "cannot copy the bucket's objects back (run dir $run)"
  echo "http://127.0.0.1:$port"
}
cmd_resume() { signal_server "${1:-}" CONT; }

cmd_status() {
  local run
  run="$(run_dir "${1:-}")"
  if [[ -n "$run" && -n "$(live_pid "$run")" ]] && ready "$(cat "$run/port")"; then
    echo "running http://127.0.0.1:$(cat "$run/port")"
  else
    echo "stopped"
    return 1
  fi
}

# A frozen server must be thawed before it can be stopped.
cmd_stop_thawed() {
  local run pid
  run="$(run_dir "${1:-}")"
  pid="$( [[ -n "$run" ]] && live_pid "$run" || true)"
  if [[ -n "$pid" ]]; then kill -CONT "$pid" 2>/dev/null || true; fi
  cmd_stop "${1:-}"
}

if [[ "${1:-}" == stop ]]; then
  cmd_stop_thawed "${2:-}"
elif [[ "${1:-}" == restart ]]; then
  cmd_restart "${2:-}"
else
  dispatch "$@"
fi
