#!/usr/bin/env bash
# terraform plan or apply for one environment of infra/envs.
#   bash cloudbuild/steps/terraform.sh plan  dev   -> writes infra/envs/dev/tfplan
#   bash cloudbuild/steps/terraform.sh apply dev   -> applies exactly that saved plan
# (Cloud Build carries tfplan between the two builds through gs://$TF_STATE_BUCKET/plans/.)
# Needs TF_STATE_BUCKET (the GCS bucket of the Terraform state) and PROJECT_ID.
set -euo pipefail
action=${1:?plan or apply}
env=${2:?dev or prod}
cd "$(dirname "$0")/../../infra/envs/$env"
: "${TF_STATE_BUCKET:?set TF_STATE_BUCKET}" "${PROJECT_ID:?set PROJECT_ID}"
terraform init -input=false -backend-config="bucket=$TF_STATE_BUCKET"
case "$action" in
  plan)
    terraform plan -input=false -var="project_id=$PROJECT_ID" -out=tfplan
    terraform show -no-color tfplan > tfplan.txt
    ;;
  apply)
    terraform apply -input=false tfplan
    ;;
  *) echo "unknown action $action: use plan or apply" >&2; exit 2 ;;
esac
