#!/usr/bin/env bash
# The AWS promotion driver behind `make plan-aws`, `make deploy-aws` and `make destroy-aws`.
#
#   aws.sh plan      terraform plan only
#   aws.sh deploy    preflight, terraform apply, images to ECR, migrate, wait for the
#                    integration, create the replica database, load, start the generator,
#                    dbt (aws target), print the endpoints
#   aws.sh destroy   asks (or CONFIRM=yes), stops the generator, terraform destroy, lists
#                    what is left (final snapshot, log groups)
#
# Settings: infra/terraform/terraform.tfvars (copy terraform.tfvars.example), AWS credentials
# the usual way (AWS_PROFILE, SSO, OIDC in CI), AWS_REGION (defaults to the tfvars region),
# AUTO_APPROVE=yes to skip terraform's own prompt, IMAGE_TAG (default: the commit),
# TF_STATE_BUCKET (and TF_STATE_KEY) for remote state in S3.
set -euo pipefail
cd "$(dirname "$0")/../.."

TF_DIR=${ZETL_TF_DIR:-infra/terraform} # overridable for tests
ZETL=${ZETL:-.venv/bin/zetl}
export ZETL_AWS_OUTPUTS=$TF_DIR/.zetl/outputs.json

step() { printf '\n=== %s (%(%H:%M:%S)T)\n' "$*" -1; }
die() { echo "aws.sh: $*" >&2; exit 2; }

tfvar() { # the value of a simple `name = "value"` line in terraform.tfvars, if any
  [[ -f $TF_DIR/terraform.tfvars ]] || return 0
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$TF_DIR/terraform.tfvars" | tail -1
}

setup() {
  [[ -f $TF_DIR/terraform.tfvars ]] || [[ -n ${TF_VAR_creator:-} ]] \
    || die "no $TF_DIR/terraform.tfvars: copy terraform.tfvars.example and set creator"
  local tf_region
  tf_region=$(tfvar region)
  export AWS_REGION=${AWS_REGION:-${tf_region:-us-east-1}}
  if [[ -n $tf_region && $tf_region != "$AWS_REGION" ]]; then
    die "AWS_REGION=$AWS_REGION but terraform.tfvars says region = \"$tf_region\"; make them agree"
  fi
  export TF_VAR_region=$AWS_REGION
  if [[ -z ${IMAGE_TAG:-} ]]; then
    IMAGE_TAG=$(git rev-parse --short=12 HEAD)
    # Tags are immutable in ECR: uncommitted changes get a tag of their own.
    if [[ -n $(git status --porcelain -- services transform 2>/dev/null) ]]; then
      IMAGE_TAG="$IMAGE_TAG-dirty-$(date -u +%Y%m%d%H%M%S)"
    fi
  fi
  export TF_VAR_image_tag=$IMAGE_TAG
  approve=()
  [[ ${AUTO_APPROVE:-} == yes ]] && approve=(-auto-approve)
  return 0
}

terraform_init() {
  local args=(-input=false)
  # CI (and anyone sharing an environment) keeps the state in S3: TF_STATE_BUCKET turns on
  # the S3 backend with one state file per environment name, locked with an S3 lock file.
  if [[ -n ${TF_STATE_BUCKET:-} ]]; then
    [[ -f $TF_DIR/backend.tf ]] || printf 'terraform {\n  backend "s3" {}\n}\n' >"$TF_DIR/backend.tf"
    local name
    name=$(tfvar name)
    args+=(-backend-config="bucket=$TF_STATE_BUCKET"
      -backend-config="key=${TF_STATE_KEY:-zetl/${name:-zetl-dev}/terraform.tfstate}"
      -backend-config="region=$AWS_REGION" -backend-config=encrypt=true
      -backend-config=use_lockfile=true)
  fi
  terraform -chdir="$TF_DIR" init "${args[@]}"
}

save_outputs() {
  mkdir -p "$(dirname "$ZETL_AWS_OUTPUTS")"
  terraform -chdir="$TF_DIR" output -json >"$ZETL_AWS_OUTPUTS.tmp"
  mv "$ZETL_AWS_OUTPUTS.tmp" "$ZETL_AWS_OUTPUTS"
}

plan() {
  setup
  step "terraform plan ($AWS_REGION, image tag $IMAGE_TAG)"
  terraform_init
  terraform -chdir="$TF_DIR" plan -input=false
}

deploy() {
  setup
  local engine_version
  engine_version=$(tfvar source_engine_version)
  step "preflight"
  "$ZETL" aws preflight --region "$AWS_REGION" --engine-version "${engine_version:-17}"
  step "terraform apply ($AWS_REGION, image tag $IMAGE_TAG)"
  terraform_init
  terraform -chdir="$TF_DIR" apply -input=false "${approve[@]}"
  save_outputs
  step "images → ECR"
  "$ZETL" aws push-images
  step "migrate (ECS task)"
  "$ZETL" aws run-task migrate
  step "zero-ETL integration → active"
  "$ZETL" aws wait-integration
  step "replica database from the integration (Redshift Data API)"
  "$ZETL" aws create-database
  step "loader (ECS task)"
  "$ZETL" aws run-task loader
  step "generator (ECS service)"
  "$ZETL" aws scale-service generator 1
  step "dbt build --target aws (ECS task)"
  "$ZETL" aws run-task transform
  step "done: endpoints"
  "$ZETL" aws endpoints
}

destroy() {
  setup
  local name
  name=$(tfvar name)
  name=${name:-zetl-dev}
  if [[ ${CONFIRM:-} != yes ]]; then
    [[ -t 0 ]] || die "destroy needs CONFIRM=yes when there is no terminal to ask on"
    read -r -p "Destroy the AWS environment '$name' in $AWS_REGION? Type its name to confirm: " answer
    [[ $answer == "$name" ]] || die "not confirmed; nothing was destroyed"
  fi
  terraform_init
  if terraform -chdir="$TF_DIR" output -json >/dev/null 2>&1; then
    save_outputs
    step "stop the generator"
    "$ZETL" aws scale-service generator 0 || echo "(generator not scaled down: continuing)"
  fi
  # The integration goes first (it depends on both ends), then the namespace with the
  # replica database, the RDS instance (final snapshot unless source_final_snapshot = false),
  # the ECR repositories (force-deleted with their images), the network last.
  step "terraform destroy"
  terraform -chdir="$TF_DIR" destroy -input=false -auto-approve
  if [[ -f $ZETL_AWS_OUTPUTS ]]; then
    step "what is left"
    "$ZETL" aws leftovers
  fi
}

case "${1:-}" in
  plan | deploy | destroy) "$1" ;;
  *) die "usage: aws.sh plan|deploy|destroy" ;;
esac
