#!/usr/bin/env bash
# Install the headless browser the end-to-end tests drive (tests/test_browser.py).
# Idempotent: does nothing when Debian's chromium is already at $BINEDU_CHROMIUM
# (default /usr/bin/chromium). Playwright's own browser download is never used:
# the tests point playwright at a system Chromium through executable_path.
#
# Where chromium cannot be installed here (no apt-get, as on macOS, or no root/sudo),
# this says so and succeeds: tests/test_browser.py then looks for another Chromium or
# Chrome (tests/browser_guard.py) and skips with the reason if there is none. In CI
# (CI=true) a missing browser is an error, here and in the tests.
set -euo pipefail

CHROMIUM="${BINEDU_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi

cannot_install() {
    echo "install-browser.sh: $CHROMIUM is missing and $1." >&2
    echo "Install Chromium (Debian/Ubuntu as root: apt-get install -y chromium; macOS: Google Chrome)," >&2
    echo "or set BINEDU_CHROMIUM to an existing Chromium/Chrome executable." >&2
    case "${CI:-}" in
        "" | 0 | false | False | FALSE | no)
            echo "install-browser.sh: the browser tests will be skipped unless they find another Chromium/Chrome." >&2
            exit 0
            ;;
        *)
            echo "install-browser.sh: CI=$CI: the browser tests must run, so this is an error." >&2
            exit 1
            ;;
    esac
}

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
else
    cannot_install "this user cannot install packages without a password"
fi

if ! command -v apt-get >/dev/null 2>&1; then
    cannot_install "apt-get is not available"
fi

echo "install-browser.sh: installing Debian's chromium for the browser tests" >&2
if ! { $SUDO apt-get update -qq &&
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
    cannot_install "apt-get could not install chromium"
fi

if [ ! -x "$CHROMIUM" ]; then
    echo "install-browser.sh: chromium was installed but $CHROMIUM does not exist." >&2
    echo "Set BINEDU_CHROMIUM to the installed executable." >&2
    exit 1
fi
