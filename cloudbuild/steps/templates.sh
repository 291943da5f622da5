#!/usr/bin/env bash
# Compile the pipeline templates (failing if the committed YAML is stale) and, when
# TEMPLATE_BUCKET is set, upload them to gs://$TEMPLATE_BUCKET/templates/<name>/<sha256>.yaml.
# Locally: bash cloudbuild/steps/templates.sh   (TEMPLATE_BUCKET unset: compile and check only)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install --quiet -e .; }
for compile in pipelines/*/compile.py; do
  .venv/bin/python "$compile" --check
done
if [ -n "${TEMPLATE_BUCKET:-}" ]; then
  for template in pipelines/*/*_pipeline.yaml; do
    name=$(basename "$template" .yaml)
    digest=$(sha256sum "$template" | cut -c1-16)
    gcloud storage cp --no-clobber "$template" "gs://$TEMPLATE_BUCKET/templates/$name/$digest.yaml"
  done
fi
