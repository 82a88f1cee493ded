# Shared by infra/local/demo and tests/run. Source it; it defines functions only.
#   mdm_setup        install the pinned tools into .venv (idempotent, offline once installed)
#   mdm_moto_start   start the serialising moto launcher on a free loopback port; exports AWS_*
#   mdm_moto_stop    stop it
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
