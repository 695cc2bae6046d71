#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/*_fuzz.cc) with clang and runs each for N seconds
# (default 20) from its seed corpus (tests/fuzz/seeds/<target>/, if present). Any crash, leak or
# sanitizer report fails the run; the reproducer is left in build/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
if ! command -v clang++ >/dev/null 2>&1; then
  echo "run_fuzzers: clang++ not found (scripts/setup.sh installs it)"; exit 1
fi
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  -DGEMMA_LOCAL_FUZZ=ON -DGEMMA_LOCAL_BUILD_TESTS=OFF >/dev/null
targets=()
for src in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$src" .cc)"); done
cmake --build build/fuzz -j"$(nproc)" --target "${targets[@]}"
root="$(pwd)"
out="$root/build/fuzz/tests/fuzz"
for t in "${targets[@]}"; do
  corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  args=(-max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1)
  [ -f "$root/tests/fuzz/${t%_fuzz}.dict" ] && args+=(-dict="$root/tests/fuzz/${t%_fuzz}.dict")
  seeds=()
  [ -d "$root/tests/fuzz/seeds/$t" ] && seeds+=("$root/tests/fuzz/seeds/$t")
  # The official chat templates are test data in ../shared (never copied into the repo).
  [ "$t" = jinja_fuzz ] && [ -d "$root/../shared/testdata/chat-templates" ] && seeds+=("$root/../shared/testdata/chat-templates")
  echo "run_fuzzers: $t for ${seconds}s"
  # Crash reproducers land in $out (the working directory).
  if ! (cd "$out" && "./$t" "${args[@]}" "$corpus" "${seeds[@]}" > "$t.log" 2>&1); then
    tail -n 40 "$out/$t.log"
    echo "run_fuzzers: $t FAILED"
    exit 1
  fi
  grep -E "^(stat::number_of_executed_units|Done)" "$out/$t.log" || tail -n 2 "$out/$t.log"
done
echo "run_fuzzers: all targets ran clean"
