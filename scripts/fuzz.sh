#!/usr/bin/env bash
# Builds the `fuzz` preset and runs every libFuzzer target for FUZZ_SECONDS
# (default 60) over a copy of its committed seed corpus. Exits non-zero when a
# target crashes, naming the reproducer. Usage: scripts/fuzz.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
build=build/fuzz

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (apt-get install clang, or bash scripts/bootstrap.sh full)" >&2
  exit 2
fi
cmake --preset fuzz >/dev/null
nice -n 10 cmake --build --preset fuzz

read -r -a all <"$build/fuzzers.txt"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

status=0
for target in "${targets[@]}"; do
  binary="$build/cpp/fuzz/${target}_fuzz"
  [ -x "$binary" ] || { echo "fuzz: no target $target (have: ${all[*]})" >&2; exit 2; }
  corpus="$build/corpus/$target"
  artifacts="$build/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  # Work on a copy: the fuzzer adds inputs to its corpus directory.
  [ -d "cpp/fuzz/corpus/$target" ] && cp -n "cpp/fuzz/corpus/$target"/* "$corpus"/ 2>/dev/null || true
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [ -f "cpp/fuzz/$target.dict" ] && args+=(-dict="cpp/fuzz/$target.dict")
  log="$build/$target.log"
  echo "fuzz: $target for ${seconds}s"
  regressions=()
  [ -d "cpp/fuzz/regressions/$target" ] && regressions=("cpp/fuzz/regressions/$target")
  if [ ${#regressions[@]} -gt 0 ] && ! "$binary" -runs=0 "${regressions[@]}" >"$log.regressions" 2>&1; then
    echo "fuzz: $target fails on a committed regression input; see $log.regressions" >&2
    status=1
    continue
  fi
  if ! "$binary" "${args[@]}" "$corpus" >"$log" 2>&1; then
    status=1
    tail -n 40 "$log" >&2
    crash=$(ls -t "$artifacts" 2>/dev/null | head -n 1)
    echo "fuzz: $target FAILED; reproducer: $artifacts/$crash (log $log)" >&2
    echo "fuzz: replay with $binary $artifacts/$crash" >&2
  else
    grep -E "stat::number_of_executed_units|cov:" "$log" | tail -n 2 | sed "s/^/  /"
  fi
done
exit $status
