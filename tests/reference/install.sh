#!/usr/bin/env bash
# Installs the llama.cpp reference harness dependencies from package-lock.json:
# node-llama-cpp + its CPU-only prebuilt binary (@node-llama-cpp/linux-x64), nothing else.
#   --omit=optional   skips the CUDA/Vulkan/other-platform prebuilt variants (~1 GB+)
#   --ignore-scripts  skips node-llama-cpp's postinstall (it may try to download/compile llama.cpp)
#   NODE_LLAMA_CPP_SKIP_DOWNLOAD=true  belt and braces for the same postinstall
# Idempotent: does nothing when node_modules was installed from the current lock file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

stamp=node_modules/.reference-harness-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" \
      && -f node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node ]]; then
    echo "reference harness: node_modules up to date"
    exit 0
fi

NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm ci --omit=optional --ignore-scripts --no-audit --no-fund
echo "$want" > "$stamp"
