# Shared by infra/local/demo and tests/run. Source it; it defines functions only.
#   mdm_setup        install the pinned tools into .venv (idempotent, offline once installed)
#   mdm_moto_start   start the serialising moto launcher on a free loopback port; exports AWS_*
#   mdm_moto_stop    stop it
#   mdm_localstack_setup   install LocalStack (requirements-localstack.txt) into .venv/localstack
#   mdm_localstack_start   start LocalStack's SQS and EventBridge in host mode (no Docker) on a free
#                          loopback port; exports AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_EVENTBRIDGE
#   mdm_localstack_stop    stop it
#   mdm_localstack_version print the installed release
#   mdm_lambda_env RESOURCES OUT   write the env file `cargo lambda watch --env-file` needs
#   mdm_free_port    print a free loopback port
MDM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export MDM_ROOT
MDM_VENV="$MDM_ROOT/.venv"
MDM_STATE="$MDM_ROOT/.local"

mdm_setup() {
  mkdir -p "$MDM_STATE"
  local stamp="$MDM_VENV/.requirements.sha"
  local want
  want=$(sha256sum "$MDM_ROOT/infra/local/requirements.txt" | cut -d' ' -f1)
  if [ -x "$MDM_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "== installing pinned tools into .venv (moto, cfn-lint, cargo-lambda) ..."
  python3 -m venv "$MDM_VENV"
  "$MDM_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$MDM_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$MDM_ROOT/infra/local/requirements.txt"
  echo "$want" > "$stamp"
}

mdm_moto_start() {
  mkdir -p "$MDM_STATE"
  rm -f "$MDM_STATE/moto.port"
  "$MDM_VENV/bin/python" "$MDM_ROOT/infra/local/moto_launcher.py" --port 0 --port-file "$MDM_STATE/moto.port" \
    > "$MDM_STATE/moto.log" 2>&1 &
  MDM_MOTO_PID=$!
  export MDM_MOTO_PID
  for _ in $(seq 1 100); do
    [ -s "$MDM_STATE/moto.port" ] && break
    if ! kill -0 "$MDM_MOTO_PID" 2>/dev/null; then
      echo "moto failed to start:" >&2; cat "$MDM_STATE/moto.log" >&2; return 1
    fi
    sleep 0.2
  done
  [ -s "$MDM_STATE/moto.port" ] || { echo "moto did not start in 20 s" >&2; return 1; }
  export AWS_ENDPOINT_URL="http://127.0.0.1:$(cat "$MDM_STATE/moto.port")"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
  echo "== moto (serialised) on $AWS_ENDPOINT_URL"
}

mdm_moto_stop() {
  if [ -n "${MDM_MOTO_PID:-}" ]; then
    kill "$MDM_MOTO_PID" 2>/dev/null || true
    wait "$MDM_MOTO_PID" 2>/dev/null || true
    unset MDM_MOTO_PID
  fi
}

MDM_LOCALSTACK_VENV="$MDM_VENV/localstack"
# Dependencies as they stood when the pinned release was current (pip >= 25.3 understands the flag).
MDM_LOCALSTACK_CUTOFF=2026-02-20

mdm_localstack_setup() {
  local stamp="$MDM_LOCALSTACK_VENV/.requirements.sha"
  local want
  want=$(sha256sum "$MDM_ROOT/infra/local/requirements-localstack.txt" | cut -d' ' -f1)
  if [ -x "$MDM_LOCALSTACK_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local py
  py=$(command -v python3.11 || true)
  if [ -z "$py" ]; then
    echo "LocalStack leg: python3.11 is not on PATH; localstack-core 4.13.1 needs Python 3.11 (newer releases need 3.13 and an auth token)" >&2
    return 1
  fi
  echo "== installing LocalStack (localstack-core 4.13.1, host mode) into .venv/localstack ..."
  "$py" -m venv "$MDM_LOCALSTACK_VENV"
  "$MDM_LOCALSTACK_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade "pip>=25.3"
  "$MDM_LOCALSTACK_VENV/bin/pip" install --quiet --disable-pip-version-check \
    --uploaded-prior-to "$MDM_LOCALSTACK_CUTOFF" -r "$MDM_ROOT/infra/local/requirements-localstack.txt"
  echo "$want" > "$stamp"
}

mdm_localstack_start() {
  mdm_localstack_setup || return 1
  local port
  port=$(mdm_free_port)
  mkdir -p "$MDM_STATE"
  # Host mode: no Docker, no DNS server, path-style queue URLs on loopback (the default
  # *.localhost.localstack.cloud names need DNS this machine may not have).
  OVERRIDE_IN_DOCKER=0 GATEWAY_SERVER=hypercorn SERVICES=sqs,events \
    GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" SQS_ENDPOINT_STRATEGY=path \
    DNS_ADDRESS=0 DISABLE_EVENTS=1 \
    "$MDM_LOCALSTACK_VENV/bin/python" -m localstack.runtime.main > "$MDM_STATE/localstack.log" 2>&1 &
  MDM_LOCALSTACK_PID=$!
  export MDM_LOCALSTACK_PID
  if ! "$MDM_VENV/bin/python" - "$port" "$MDM_LOCALSTACK_PID" <<'PY'
import json, os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
for _ in range(300):
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("LocalStack exited while starting")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localstack/health", timeout=2) as r:
            services = json.load(r).get("services", {})
        if all(services.get(s) in ("available", "running") for s in ("sqs", "events")):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("LocalStack did not report SQS and EventBridge available in 60 s")
PY
  then
    echo "LocalStack failed to start (log: .local/localstack.log):" >&2
    tail -n 40 "$MDM_STATE/localstack.log" >&2
    mdm_localstack_stop
    return 1
  fi
  export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$port" AWS_ENDPOINT_URL_EVENTBRIDGE="http://127.0.0.1:$port"
  echo "== LocalStack $(mdm_localstack_version) (SQS, EventBridge) on http://127.0.0.1:$port"
}

mdm_localstack_version() {
  "$MDM_LOCALSTACK_VENV/bin/python" -c 'from localstack.version import __version__ as v; print(v)'
}

mdm_localstack_stop() {
  if [ -n "${MDM_LOCALSTACK_PID:-}" ]; then
    kill "$MDM_LOCALSTACK_PID" 2>/dev/null || true
    # LocalStack's own shutdown can hang ("Stopping all services"): 10 s, then it is killed.
    for _ in $(seq 1 50); do
      kill -0 "$MDM_LOCALSTACK_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -9 "$MDM_LOCALSTACK_PID" 2>/dev/null || true
    wait "$MDM_LOCALSTACK_PID" 2>/dev/null || true
    unset MDM_LOCALSTACK_PID AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_EVENTBRIDGE
  fi
}

mdm_lambda_env() { # resources.json out.env: the functions' environment plus the emulator's AWS_* settings
  "$MDM_VENV/bin/python" - "$1" > "$2" <<'PY'
import json, os, sys
res = json.load(open(sys.argv[1]))
env = {}
for f in res["functions"].values():  # one env file serves every function: the union of theirs
    env.update(f["env"])
env.update({k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")})
env["MDM_EMF"] = "off"
for k, v in sorted(env.items()):
    print(f"{k}={v}")
PY
}

mdm_free_port() {
  "$MDM_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
