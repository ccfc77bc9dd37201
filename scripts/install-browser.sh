#!/usr/bin/env bash
# Install the headless browser the end-to-end tests drive (tests/test_browser.py), only
# with consent: it is a system package, installed as root.
#
# Idempotent: does nothing when a Chromium or Chrome is already there ($BINEDU_CHROMIUM,
# default /usr/bin/chromium, or chromium / chromium-browser / google-chrome on the PATH).
# Playwright's own browser download is never used: the tests point playwright at a
# system Chromium through executable_path.
#
# Otherwise it would install Debian's chromium (a few hundred MB, system-wide, to
# /usr/bin/chromium) with `apt-get install chromium`, as root or with sudo. Consent:
#   BINEDU_INSTALL_BROWSER=1   yes                    BINEDU_INSTALL_BROWSER=0   no
#   CI=true (unless told no)   yes: CI needs the browser tests and has no one to ask
#   otherwise                  ask on the terminal (default no); no terminal: no
# Without it, or where chromium cannot be installed (no apt-get, as on macOS, or no
# root/sudo), this says so and succeeds: the browser tests then skip with the reason. In
# CI (CI=true) a missing browser is an error, here and in the tests (tests/browser_guard.py).
set -euo pipefail

CHROMIUM="${BINEDU_CHROMIUM:-/usr/bin/chromium}"
say() { echo "install-browser.sh: $*" >&2; }
truthy() { case "$(echo "${1:-}" | tr '[:upper:]' '[:lower:]')" in "" | 0 | false | no | off) return 1 ;; *) return 0 ;; esac; }
in_ci() { truthy "${CI:-}"; }

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ -z "${BINEDU_CHROMIUM:-}" ]; then
    for command in chromium chromium-browser google-chrome google-chrome-stable; do
        if found="$(command -v "$command")"; then
            say "using $found for the browser tests: nothing to install"
            exit 0
        fi
    done
fi

skip() {
    say "$CHROMIUM is missing and $1."
    say "Install Chromium yourself (Debian/Ubuntu as root: apt-get install -y chromium; macOS: Google Chrome),"
    say "let make do it (BINEDU_INSTALL_BROWSER=1 make test), or set BINEDU_CHROMIUM to a Chromium/Chrome executable."
    if in_ci; then
        say "CI=$CI: the browser tests must run, so this is an error."
        exit 1
    fi
    say "the browser tests will be skipped unless they find another Chromium/Chrome."
    exit 0
}

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
else
    skip "this user cannot install packages without a password"
fi
if ! command -v apt-get >/dev/null 2>&1; then
    skip "apt-get is not available"
fi

# Consent, before anything is installed.
what="Debian's chromium (a few hundred MB) system-wide with ${SUDO:+sudo }apt-get, to /usr/bin/chromium"
if [ -n "${BINEDU_INSTALL_BROWSER:-}" ]; then
    truthy "$BINEDU_INSTALL_BROWSER" || skip "BINEDU_INSTALL_BROWSER=$BINEDU_INSTALL_BROWSER says not to install it"
elif in_ci; then
    say "CI=$CI: installing $what"
elif [ -t 0 ]; then
    printf 'install-browser.sh: the browser tests need Chromium. Install %s? [y/N] ' "$what" >&2
    read -r answer || answer=""
    case "$answer" in
        y | Y | yes | YES | Yes) ;;
        *) skip "you chose not to install it" ;;
    esac
else
    skip "installing it needs consent (no terminal to ask on)"
fi

say "installing $what"
if ! { $SUDO apt-get update -qq &&
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
    skip "apt-get could not install chromium"
fi

if [ ! -x "$CHROMIUM" ]; then
    say "chromium was installed but $CHROMIUM does not exist."
    say "Set BINEDU_CHROMIUM to the installed executable."
    exit 1
fi
