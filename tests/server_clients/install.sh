#!/usr/bin/env bash
# Installs the OpenAI client test's dependencies exactly as package-lock.json pins them (openai,
# ajv, ajv-formats, yaml, typescript; no install scripts run).
# Idempotent: does nothing when node_modules was installed from the current lock file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

stamp=node_modules/.server-clients-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f node_modules/openai/package.json ]]; then
    echo "server clients: node_modules up to date"
    exit 0
fi

npm ci --ignore-scripts --no-audit --no-fund
echo "$want" > "$stamp"
