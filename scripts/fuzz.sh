#!/usr/bin/env bash
# Runs every Fuzz target of the module for FUZZTIME each (default 5s).
# Its seed corpus has already run as a unit test in `go test ./...`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
status=0
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    echo "fuzz $pkg $target for $fuzztime"
    if ! go test -run="^$" -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime=1s "$pkg" >/tmp/ctfed-fuzz.log 2>&1; then
      cat /tmp/ctfed-fuzz.log
      status=1
    fi
  done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | sort)
exit $status
