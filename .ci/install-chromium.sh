#!/usr/bin/env bash
# Debian's Chromium for the browser tests; Playwright drives it through executable_path.
set -euo pipefail
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
chromium --version
