#!/usr/bin/env bash
# Debian packages the test suite runs for real: ClamAV's clamd, Chromium, LibreOffice (to make
# real Office/ODF/PDF samples). Installed only when missing and only as root; otherwise the
# tests say what is missing (and fail under CI=true).
set -euo pipefail
need=()
command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ] || need+=(clamav-daemon clamav)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v soffice >/dev/null 2>&1 || need+=(libreoffice-writer-nogui)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: missing ${need[*]} (install them with apt-get as root); the tests that need them will say so." >&2
  exit 0
fi
echo "Installing ${need[*]} …"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The Debian clamav-daemon service would fetch signatures from the internet; we start our own clamd.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now clamav-daemon clamav-freshclam >/dev/null 2>&1 || true
fi
