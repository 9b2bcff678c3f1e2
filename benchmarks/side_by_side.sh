#!/usr/bin/env bash
# couchpy vs pouchdb-server vs bare aiohttp with shared/bench/couchbench.py; see docs/benchmarks.md.
#   benchmarks/side_by_side.sh --scale medium [--servers ceiling,pouchdb,couchpy] [--only w1,w2]
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m benchmarks.side_by_side "$@"
