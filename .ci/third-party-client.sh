#!/usr/bin/env bash
# Point widely used, unmodified Binance client libraries at `respond sim serve` and check
# they can list balances, list and cancel open orders, and fetch trades, withdrawals and
# deposits with the scenario's leaked key. Each client gets its own pinned venv and a
# fresh simulator. Loopback only; needs python3 (with venv) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

clients=("python-binance==1.0.37" "binance-connector==3.13.0" "ccxt==4.5.90")
scenario=playbooks/scenarios/leaked-key.yaml
# Cargo's output folder, wherever CARGO_TARGET_DIR puts it (relative to this folder).
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
venvs=${THIRD_PARTY_VENVS:-$target_dir/third-party-venvs}
started=$(date +%s)

cargo build --locked --quiet --bin respond
respond="$target_dir/debug/respond"

# Loopback traffic must not go through a proxy the environment may set.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

work=$(mktemp -d)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT

for spec in "${clients[@]}"; do
  name=${spec%%==*}
  venv="$venvs/$name"
  installed=$("$venv/bin/python" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
  if [ "$installed" != "${spec##*==}" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      --retries 5 --timeout 60 "$spec"
  fi

  "$respond" sim serve --port 0 --scenario "$scenario" >"$work/$name.out" 2>"$work/$name.err" &
  server_pid=$!
  url=""
  for _ in $(seq 100); do
    url=$(head -n 1 "$work/$name.out" 2>/dev/null | sed -n 's/^listening on //p')
    [ -n "$url" ] && break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "third-party-client: the simulator did not print its URL within 10 s" >&2
    cat "$work/$name.err" >&2
    exit 1
  fi

  echo "== $spec against $url"
  timeout 300 "$venv/bin/python" tests/third_party/check_client.py \
    --client "$name" --url "$url" --scenario "$scenario"
  stop_server
done

echo "third-party clients passed in $(( $(date +%s) - started ))s"
