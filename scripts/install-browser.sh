#!/usr/bin/env bash
# Installs Debian's Chromium for the web demo's browser tests (Playwright drives it; no browser is downloaded).
# Without apt (or without root) it says how to get one and carries on: those tests are then skipped with that advice.
set -u
for b in chromium chromium-browser google-chrome; do command -v "$b" >/dev/null 2>&1 && exit 0; done
[ -n "${MODALIGN_CHROMIUM:-}" ] && [ -x "$MODALIGN_CHROMIUM" ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 && echo "installed: chromium" && exit 0
fi
echo "note: no Chromium installed (needs apt and root); the browser tests will be skipped. Get one with" \
  "'apt-get install chromium' or 'python -m playwright install chromium', or set MODALIGN_CHROMIUM=/path" >&2
exit 0
