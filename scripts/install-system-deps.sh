#!/usr/bin/env bash
# Debian packages Enclose runs for real, installed only when missing and only as root with apt-get.
#
#   install-system-deps.sh run    what `make run` needs: ClamAV's clamd. Without it the stack would
#                                 reject every upload, so when it cannot be installed (not root, no
#                                 apt-get, apt-get failed) this stops with one sentence and exit 1.
#   install-system-deps.sh [test] what the test suite runs: clamd, Chromium, LibreOffice (to make
#                                 real Office/ODF/PDF samples). When they cannot be installed this
#                                 only notes it; the tests say what is missing (and fail under CI=true).
#
# clamd runs with the project's own signatures (tests/clamav/) started by devstack/clamd.py, so the
# Debian services (which would download signatures) are neither started nor enabled.
# ENCLOSE_CLAMD_BINARY names the clamd to look for instead of the usual places (as devstack/clamd.py
# reads it); POLICY_RC_D moves Debian's service start policy file (for tests).
set -euo pipefail

mode="${1:-test}"
case "$mode" in
  run | test) ;;
  *)
    echo "usage: $0 [run|test]" >&2
    exit 2
    ;;
esac
policy_rc_d="${POLICY_RC_D:-/usr/sbin/policy-rc.d}"
clamd_sentence='Enclose needs ClamAV to scan uploads: run `sudo apt-get install clamav-daemon` and try again.'

have_clamd() {
  if [ -n "${ENCLOSE_CLAMD_BINARY:-}" ]; then
    [ -f "$ENCLOSE_CLAMD_BINARY" ] && [ -x "$ENCLOSE_CLAMD_BINARY" ]
  else
    command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ]
  fi
}

need=()
if [ "$mode" = run ]; then
  have_clamd || need+=(clamav-daemon)
else
  have_clamd || need+=(clamav-daemon clamav)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v soffice >/dev/null 2>&1 || need+=(libreoffice-writer-nogui)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if [ "$mode" = run ]; then
    if command -v apt-get >/dev/null 2>&1; then
      echo "$clamd_sentence" >&2
    else
      echo "Enclose needs ClamAV to scan uploads: install its clamd (Debian's clamav-daemon package) and try again." >&2
    fi
    exit 1
  fi
  echo "note: missing ${need[*]} (install them with apt-get as root); the tests that need them will say so." >&2
  exit 0
fi

echo "Installing ${need[*]} …"
export DEBIAN_FRONTEND=noninteractive
# Keep the packages' services from starting while they install (Debian's policy-rc.d convention,
# exit 101 = "not allowed"); one already there is the machine's own and is left alone.
own_policy=no
if [ ! -e "$policy_rc_d" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy_rc_d"
  chmod 755 "$policy_rc_d"
  own_policy=yes
fi
remove_policy() {
  if [ "$own_policy" = yes ]; then
    rm -f "$policy_rc_d"
  fi
}
trap remove_policy EXIT

installed=yes
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } || installed=no
# The Debian clamav-daemon service would fetch signatures from the internet; we start our own clamd.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now clamav-daemon clamav-freshclam >/dev/null 2>&1 || true
fi
if [ "$installed" = no ]; then
  if [ "$mode" = run ]; then
    echo "Enclose needs ClamAV to scan uploads, and apt-get could not install it: run \`apt-get install clamav-daemon\` and try again." >&2
  fi
  exit 1
fi
if [ "$mode" = run ] && ! have_clamd; then
  echo "$clamd_sentence" >&2
  exit 1
fi
