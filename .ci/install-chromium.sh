#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/rules/test_page_browser.py); Playwright drives it
# through executable_path=/usr/bin/chromium, so no browser build is downloaded. Idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  chromium --version 2>/dev/null
  exit 0
fi
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
chromium --version 2>/dev/null
