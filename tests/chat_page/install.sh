#!/usr/bin/env bash
# Installs the chat page browser test's dependency from package-lock.json: puppeteer-core only
# (no browser download: the test drives Debian's /usr/bin/chromium).
#   --ignore-scripts  nothing runs at install time
# Idempotent: does nothing when node_modules was installed from the current lock file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

stamp=node_modules/.chat-page-test-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f node_modules/puppeteer-core/package.json ]]; then
    echo "chat page test: node_modules up to date"
    exit 0
fi

npm ci --ignore-scripts --no-audit --no-fund
echo "$want" > "$stamp"
