#!/usr/bin/env bash
# Render the drill's report.html in headless Chromium (Debian's package) and check that
# the browser really shows the timeline: the DOM it builds must hold the inline SVG with
# a mark for each kind of event the built-in scenario produces. Also saves a screenshot
# to html-report/report.png in Cargo's output folder (target/, or $CARGO_TARGET_DIR) for
# a person to look at. Loopback and local files only; every browser call is time-bound
# and tried twice, because a failing .ci/run lands nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
# Cargo's output folder, wherever CARGO_TARGET_DIR puts it (relative to this folder).
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
out_dir="$target_dir/html-report"
mkdir -p "$out_dir"

fail() {
  echo "html-report: FAILED: $*" >&2
  exit 1
}

# --- Chromium, from Debian's packages when it is missing.
find_chromium() {
  command -v chromium || command -v chromium-browser || true
}
chromium_bin=$(find_chromium)
if [ -z "$chromium_bin" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "chromium is not installed, and installing it needs root or sudo"
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "html-report: installing Debian's chromium (apt-get)"
  installed=""
  for attempt in 1 2 3; do
    # An empty or stale package list is the usual reason an install fails: refresh it.
    timeout 600 $sudo apt-get update -qq || true
    if timeout 900 $sudo apt-get install -y -qq --no-install-recommends chromium >"$out_dir/apt.log" 2>&1; then
      installed=yes
      break
    fi
    echo "html-report: apt-get install chromium failed (attempt $attempt/3); retrying" >&2
    sleep $((attempt * 5))
  done
  [ -n "$installed" ] || { tail -n 30 "$out_dir/apt.log" >&2; fail "could not install chromium with apt-get"; }
  chromium_bin=$(find_chromium)
  [ -n "$chromium_bin" ] || fail "apt-get installed chromium but no chromium binary is on PATH"
fi
echo "html-report: $("$chromium_bin" --version 2>/dev/null || echo "$chromium_bin")"

# --- A drill's incident folder.
cargo build --locked --quiet --bin respond
respond="$target_dir/debug/respond"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && NO_COLOR=1 timeout 120 "$respond" compromised --drill --yes --quiet >"$work/drill.out" 2>"$work/drill.err") ||
  { cat "$work/drill.err" >&2; fail "respond compromised --drill --yes did not finish cleanly"; }
incident="$work/$(tail -n 1 "$work/drill.out")"
html="$incident/report.html"
[ -s "$html" ] || fail "the drill wrote no report.html in $incident"

# --- The browser. Run one headless Chromium command, bounded in time, twice at most.
browse() {
  local what=$1
  shift
  local attempt
  for attempt in 1 2; do
    local profile
    profile=$(mktemp -d "$work/profile.XXXXXX")
    if timeout -k 10 90 "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-quic \
      --no-first-run --disable-background-networking --disable-component-update --disable-sync \
      --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$profile" "$@" \
      2>"$work/chromium-$what.err"; then
      return 0
    fi
    echo "html-report: chromium $what failed (attempt $attempt/2):" >&2
    tail -n 5 "$work/chromium-$what.err" >&2
  done
  return 1
}

browse dump-dom --dump-dom "file://$html" >"$out_dir/report.dom.html" ||
  fail "headless chromium could not load $html"

dom="$out_dir/report.dom.html"
grep -q '<svg class="timeline window"' "$dom" ||
  fail "the browser's DOM has no incident-window timeline (<svg class=\"timeline window\">)"
grep -q '<svg class="timeline response"' "$dom" ||
  fail "the browser's DOM has no response timeline (<svg class=\"timeline response\">)"
for kind in trade withdrawal cancel operator transfer; do
  count=$(grep -o "class=\"mark $kind[ \"]" "$dom" | wc -l)
  [ "$count" -ge 1 ] || fail "the timeline shows no $kind mark (class=\"mark $kind\")"
  echo "html-report: $count $kind mark(s)"
done
grep -q 'class="mark withdrawal flagged"' "$dom" ||
  fail "the withdrawal to an unknown address is not flagged on the timeline"
if grep -qi '<script' "$dom"; then
  fail "report.html contains a script"
fi

browse screenshot --window-size=1280,2600 --screenshot="$out_dir/report.png" "file://$html" >/dev/null ||
  fail "headless chromium could not take a screenshot of $html"
[ -s "$out_dir/report.png" ] || fail "chromium wrote no screenshot"
cp "$html" "$out_dir/report.html"

echo "html-report: ok in $(($(date +%s) - started))s — screenshot in $out_dir/report.png"
