#!/usr/bin/env bash
# System packages the test suite uses: Debian's Chromium for the report's browser test.
# Installs them when run as root on Debian/Ubuntu; otherwise says so (the browser test then skips).
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the report's browser test..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped"
else
  echo "note: chromium not found and not root: the report's browser test will be skipped (apt-get install chromium)"
fi
exit 0
