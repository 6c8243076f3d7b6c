#!/usr/bin/env bash
# The end-to-end tests (test/e2e) and bench:ui drive Debian's Chromium through playwright-core.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"
[ -x /usr/bin/chromium ] && exit 0
need_packages "the end-to-end browser tests (test/e2e)" chromium
