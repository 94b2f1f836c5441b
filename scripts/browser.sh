#!/usr/bin/env bash
# Install (once) the headless browser of the portal's browser tests: Debian's chromium and the
# DejaVu fonts (the only fonts the screenshots are made with). Playwright drives this binary;
# never `playwright install` (it downloads a browser from outside Debian).
#
#   scripts/browser.sh
#
# Idempotent: does nothing when /usr/bin/chromium is there. Installing needs root and Debian's mirror.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

die() { echo "browser: $*" >&2; exit 1; }

if [ -x "$CHROMIUM" ] && [ -d /usr/share/fonts/truetype/dejavu ]; then
    echo "browser: reusing $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "$CHROMIUM is missing; install it as root: apt-get install chromium fonts-dejavu-core (or run this script as root)"
command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM is missing and there is no apt-get: install Debian's chromium package yourself"

echo "browser: installing chromium and fonts-dejavu-core from Debian"
apt-get update -qq || die "apt-get update failed: no network or no Debian mirror reachable"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null \
    || die "apt-get install chromium fonts-dejavu-core failed"
[ -x "$CHROMIUM" ] || die "chromium was installed but $CHROMIUM is not there"
echo "browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
