#!/usr/bin/env bash
# Runs every test: the layer rules on the include graph (first: seconds, no build), the Release
# build's suite, the suite but the reference comparisons under AddressSanitizer +
# UndefinedBehaviorSanitizer, the concurrent tests (thread pool, engine, runtime, the HTTP server)
# under ThreadSanitizer, and each libFuzzer target briefly. Run scripts/setup.sh first.
# Environment: FUZZ_SECONDS (default 20 per target), SKIP_ASAN=1, SKIP_TSAN=1, SKIP_FUZZ=1,
# GEMMA_LOCAL_REQUIRE_REFERENCES=1 (tests needing ../shared or the llama.cpp harness fail instead
# of skipping; .ci/run sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
# The sanitizer builds: -O1 with line tables only (what the sanitizers' docs suggest), a quarter of
# -O2 -g's compile time on this code base; reports still name files and lines.
sanitizer_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")

echo "== Layer rules"
python3 scripts/check_layers.py

echo "== Release build and tests"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$jobs"
ctest --test-dir build/release --output-on-failure -j"$jobs"

if [ "${SKIP_ASAN:-0}" != "1" ]; then
  echo "== ASan+UBSan build and tests"
  cmake -S . -B build/asan -G Ninja "${sanitizer_flags[@]}" -DGEMMA_LOCAL_SANITIZE=ON \
    -DGEMMA_LOCAL_BUILD_BENCH=OFF -DGEMMA_LOCAL_BUILD_CONSISTENCY=OFF >/dev/null
  cmake --build build/asan -j"$jobs"
  # The comparisons against the references (label `consistency`: llama.cpp, Hugging Face, jinja2)
  # check numbers, which the Release pass above does; under the sanitizers they were half of the
  # suite's time, mostly spent in the references, so this build leaves them out. Our code on those
  # paths stays covered here by the unit, model and e2e tests and by the fuzzers.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan --output-on-failure -j"$jobs" -LE consistency
fi

if [ "${SKIP_TSAN:-0}" != "1" ]; then
  echo "== ThreadSanitizer build and the concurrent tests"
  cmake -S . -B build/tsan -G Ninja "${sanitizer_flags[@]}" -DGEMMA_LOCAL_TSAN=ON \
    -DGEMMA_LOCAL_BUILD_BENCH=OFF >/dev/null
  cmake --build build/tsan -j"$jobs" --target core_tests runtime_tests server_tests
  # Only the binaries built above: run them directly rather than through ctest's full list.
  for t in core_tests runtime_tests server_tests; do
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 "build/tsan/tests/$t"
  done
fi

if [ "${SKIP_FUZZ:-0}" != "1" ]; then
  echo "== Fuzzers (${FUZZ_SECONDS:-20} s each)"
  bash scripts/run_fuzzers.sh "${FUZZ_SECONDS:-20}"
fi
echo "== all tests passed"
