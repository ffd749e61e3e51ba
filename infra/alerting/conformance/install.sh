#!/usr/bin/env bash
# Builds the reference Alertmanager v0.35.0 server and amtool from the Go module proxy, once.
#
# The binaries are cached outside the clone (default $HOME/.cache/streamwarden/alertmanager-v0.35.0,
# override with STREAMWARDEN_CACHE) so CI and every worktree build them a single time. Idempotent:
# a second run with both binaries present prints their paths and exits. Prints one progress line per
# step. Needs `go` (1.24+) on PATH and the module proxy (GOPROXY) reachable.
set -euo pipefail

VERSION="${ALERTMANAGER_VERSION:-v0.35.0}"
CACHE_ROOT="${STREAMWARDEN_CACHE:-$HOME/.cache/streamwarden}"
DEST="$CACHE_ROOT/alertmanager-$VERSION"
mkdir -p "$DEST"

if [[ -x "$DEST/alertmanager" && -x "$DEST/amtool" ]]; then
  echo "[alertmanager] cached: $DEST (alertmanager, amtool $VERSION)"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "[alertmanager] go is not on PATH; install Go 1.24+ to build the reference Alertmanager" >&2
  exit 1
fi

LOCK="$DEST/.build.lock"
exec 9>"$LOCK"
echo "[alertmanager] waiting for build lock $LOCK"
flock 9

if [[ ! -x "$DEST/amtool" ]]; then
  echo "[alertmanager] 1/3 go install github.com/prometheus/alertmanager/cmd/amtool@$VERSION"
  GOBIN="$DEST" go install "github.com/prometheus/alertmanager/cmd/amtool@$VERSION"
fi

if [[ ! -x "$DEST/alertmanager" ]]; then
  echo "[alertmanager] 2/3 go mod download github.com/prometheus/alertmanager@$VERSION"
  MODDIR="$(cd "$DEST" && GOFLAGS=-mod=mod go mod download -json "github.com/prometheus/alertmanager@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [[ -z "$MODDIR" || ! -d "$MODDIR" ]]; then
    echo "[alertmanager] go mod download did not report a module directory" >&2
    exit 1
  fi
  SRC="$DEST/src"
  rm -rf "$SRC"
  cp -r "$MODDIR" "$SRC"
  chmod -R u+w "$SRC"
  # The web UI assets are embedded from ui/app/dist, which the module zip does not carry; the
  # conformance tests only use the API, so a placeholder page is enough.
  mkdir -p "$SRC/ui/app/dist"
  [[ -f "$SRC/ui/app/dist/index.html" ]] || echo '<!doctype html><title>alertmanager</title>' > "$SRC/ui/app/dist/index.html"
  echo "[alertmanager] 3/3 go build ./cmd/alertmanager (several minutes on a small machine)"
  (cd "$SRC" && go build -o "$DEST/alertmanager.tmp" ./cmd/alertmanager)
  mv "$DEST/alertmanager.tmp" "$DEST/alertmanager"
  rm -rf "$SRC"
fi

echo "[alertmanager] ready: $DEST"
"$DEST/alertmanager" --version 2>&1 | head -1
"$DEST/amtool" --version 2>&1 | head -1
