#!/usr/bin/env bash
# Install the headless browser the end-to-end tests drive (tests/test_browser.py).
# Idempotent: does nothing when Debian's chromium is already at $BINEDU_CHROMIUM
# (default /usr/bin/chromium). Playwright's own browser download is never used:
# the tests point playwright at this system chromium through executable_path.
set -euo pipefail

CHROMIUM="${BINEDU_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-browser.sh: $CHROMIUM is missing and this user cannot install packages." >&2
    echo "Install Debian's chromium (as root: apt-get install -y chromium)," >&2
    echo "or set BINEDU_CHROMIUM to an existing Chromium/Chrome executable." >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser.sh: $CHROMIUM is missing and apt-get is not available." >&2
    echo "Install Chromium with your system's package manager," >&2
    echo "or set BINEDU_CHROMIUM to an existing Chromium/Chrome executable." >&2
    exit 1
fi

echo "install-browser.sh: installing Debian's chromium for the browser tests" >&2
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null

if [ ! -x "$CHROMIUM" ]; then
    echo "install-browser.sh: chromium was installed but $CHROMIUM does not exist." >&2
    echo "Set BINEDU_CHROMIUM to the installed executable." >&2
    exit 1
fi
