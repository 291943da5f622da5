#!/usr/bin/env bash
# Lint, types and tests: exactly what CI runs (`.ci/run` installs, then runs the README's test
# command). Locally: bash cloudbuild/steps/checks.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/run
