#!/usr/bin/env bash
# Installs the Debian data packages the built-in real-data recipes read, and the system libraries the OCR tool's
# opencv-python links (libGL, GLib), where apt is available: Fashion-MNIST, espeak-ng (the spoken world's voices)
# and pocketsphinx-testdata (real read speech with transcripts).
# Without apt (or without root) it says what is missing and carries on: those recipes then explain how to get the data.
set -u
pkgs="dataset-fashion-mnist libgl1 libglib2.0-0 espeak-ng pocketsphinx-testdata"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1 \
    && echo "installed:$missing" && exit 0
fi
echo "note: could not install$missing (needs apt and root); the recipes that read them will say how to get them" >&2
exit 0
