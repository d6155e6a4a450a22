#!/bin/sh
# Builds Mailkeep and the benchmark in release mode and runs the benchmark.
#   scripts/bench.sh                 # all scenarios, full sizes (about 30-40 minutes)
#   scripts/bench.sh all --quick     # small sizes, a few minutes
#   scripts/bench.sh idle --idle 1000,5000 --dovecot-only
# Needs root (Dovecot runs as root with mail uid 8) and Dovecot 2.3 in /usr/sbin.
# Results go to docs/bench/ (results*.md, results*.json, *.svg). See docs/benchmarks.md.
set -eu
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then set -- all; fi
if cargo build --release -p mailkeep; then
    echo "built target/release/mailkeep"
else
    echo "warning: building mailkeep failed; the benchmark will run against Dovecot only" >&2
fi
cargo build --release -p mailkeep-bench
exec target/release/mailkeep-bench "$@"
