#!/usr/bin/env bash
# Build the five function packages (folder + reproducible zip each) into dist/functions.
# Locally: bash cloudbuild/steps/package.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/mlrelay ] || { python3 -m venv .venv && .venv/bin/pip install --quiet -e .; }
.venv/bin/mlrelay validate "${MLRELAY_REGISTRY:-pipelines/registry.yaml}"
.venv/bin/mlrelay package --all --out dist/functions \
  --registry "${MLRELAY_REGISTRY:-pipelines/registry.yaml}"
# the registry's schedules as Cloud Scheduler jobs, for Terraform (infra/ var.schedules_file)
.venv/bin/mlrelay schedules export --out dist/schedules.json \
  --registry "${MLRELAY_REGISTRY:-pipelines/registry.yaml}"
