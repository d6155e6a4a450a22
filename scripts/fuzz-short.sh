#!/usr/bin/env bash
# Short fuzz runs for CI: each cargo-fuzz target for FUZZ_SECONDS (default 40) from the committed
# seeds. cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 enables them on the stable toolchain.
# `--build-only`: build every target and stop.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
if [ "${1:-}" = --build-only ]; then
  # Every target built, nothing run (scripts/test.sh builds them while other tests run).
  exec cargo fuzz build --release
fi
secs=${FUZZ_SECONDS:-40}
for target in parse_command session oracle mime scram protocols; do
  case "$target" in
    parse_command|oracle) seeds=seeds ;;
    *) seeds="seeds-$target" ;;
  esac
  mkdir -p "corpus/$target"
  rm -rf "artifacts/$target"
  echo "-- fuzz $target for ${secs}s"
  # Build first, outside the filter below: a target that no longer compiles must fail CI.
  cargo fuzz build --release "$target"
  cargo fuzz run --release "$target" "corpus/$target" "$seeds" -- -max_total_time="$secs" -rss_limit_mb=4096 -detect_leaks=0 2>&1 \
    | grep -E "^(Done|==|INFO: -max_total_time|SUMMARY)|panicked|ERROR" || true
  # A crash leaves an artifact and a non-zero status; pipefail is defeated by grep, so check.
  if ls "artifacts/$target"/crash-* "artifacts/$target"/oom-* "artifacts/$target"/timeout-* >/dev/null 2>&1; then
    echo "fuzz $target found a failing input:"; ls "artifacts/$target"
    exit 1
  fi
done
