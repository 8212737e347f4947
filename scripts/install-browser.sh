#!/usr/bin/env bash
# Install the browser the HTML viewer's test drives (tests/capture/test_viewer_browser.py):
# Debian's Chromium, through apt. Playwright for Python (a test dependency in
# pyproject) drives it; its own browser download (`playwright install`) is not
# used, so nothing but Debian's packages and PyPI is needed. Needs root or sudo.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "install-browser: $(chromium --version 2>/dev/null || echo chromium) already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-browser: run as root (or install sudo) to apt-get install chromium" >&2
    exit 1
  fi
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium
echo "install-browser: $(chromium --version 2>/dev/null)"
