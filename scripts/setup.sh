#!/usr/bin/env bash
# Installs everything gemma-local needs on a fresh Debian 12 machine and builds it.
#   - Debian packages (compilers, CMake, Ninja, GoogleTest, Google Benchmark, nlohmann-json,
#     CLI11, spdlog/fmt, Highway, Python jinja2 for template reference checks, Node.js + npm,
#     chromium for the chat page's browser test)
#   - the npm reference harness (node-llama-cpp, pinned, from the committed lock file)
#   - the npm OpenAI client test's dependencies (tests/server_clients, pinned, from its lock file)
#   - the chat page test's puppeteer-core (pinned, from its committed lock file)
#   - a Release build in build/release (binary: build/release/gemma-local)
# Idempotent: re-running only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential g++ clang libclang-rt-14-dev cmake ninja-build pkg-config git
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libhwy-dev libcpp-httplib-dev libssl-dev
  libyaml-cpp-dev libjq-dev
  python3 python3-jinja2 chromium
)
# Node.js may come from another source (e.g. a vendor repository that bundles npm); only ask apt
# for it when the commands are missing.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm reference harness (llama.cpp via node-llama-cpp); tests skip cleanly if this is absent.
if command -v npm >/dev/null 2>&1 && [ -f tests/reference/install.sh ]; then
  bash tests/reference/install.sh || echo "setup: warning: reference harness install failed; reference tests will skip"
fi
# npm OpenAI client test (openai, ajv, yaml, typescript, pinned); the test skips if this is absent.
if command -v npm >/dev/null 2>&1 && [ -f tests/server_clients/install.sh ]; then
  bash tests/server_clients/install.sh || echo "setup: warning: OpenAI client test install failed; server_openai_client will skip"
fi
# Chat page browser test (puppeteer-core driving the chromium above); it skips if this is absent.
if command -v npm >/dev/null 2>&1 && [ -f tests/chat_page/install.sh ]; then
  bash tests/chat_page/install.sh || echo "setup: warning: chat page test install failed; the browser test will skip"
fi

cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build/release -j"$(nproc)"
echo "setup: built build/release/gemma-local"
