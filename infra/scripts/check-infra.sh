#!/usr/bin/env bash
# make check-infra: static checks of infra/terraform that need no AWS account.
#   1. checkov (own virtualenv, .venv-checkov: its pins clash with the main one) must report
#      no failed check; deliberate exceptions are inline `#checkov:skip=CKV_...:reason`.
#   2. where terraform is installed: `terraform fmt -check`, and `terraform validate` and a
#      real plan against moto (plan-offline.sh) once the AWS provider can be installed
#      (registry, or a local mirror in TF_PLUGIN_DIR).
# Prints what it could not run, and why; fails on any failed check.
set -euo pipefail
cd "$(dirname "$0")/../.."

TF_DIR=infra/terraform
CHECKOV_VENV=${CHECKOV_VENV:-.venv-checkov}
CHECKOV_SPEC='checkov>=3.2,<4'
PYTHON=${PYTHON:-python3}

step() { printf '\n--- %s\n' "$*"; }

step "checkov"
if [[ ! -x $CHECKOV_VENV/bin/checkov ]]; then
  "$PYTHON" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install --quiet --upgrade pip
  "$CHECKOV_VENV/bin/pip" install --quiet "$CHECKOV_SPEC"
fi
# --skip-download: no calls to the vendor's platform (no network here, no account anyway).
"$CHECKOV_VENV/bin/checkov" --directory "$TF_DIR" --framework terraform --quiet --compact \
  --skip-download --output cli

if ! command -v terraform >/dev/null; then
  step "terraform: not installed, fmt and validate skipped (CI's workflow runs them)"
  exit 0
fi

step "terraform fmt -check"
terraform fmt -check -recursive -diff "$TF_DIR"

step "terraform validate"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The copy keeps the repository's layout: the stack reads zetl's one list of zero-ETL versions
# from services/common.
stack="$work/infra/terraform"
mkdir -p "$stack" "$work/services/common/src/zetl"
cp -r "$TF_DIR"/. "$stack"/
cp services/common/src/zetl/zero_etl_versions.json "$work/services/common/src/zetl/"
rm -rf "$stack/.terraform" "$stack/.terraform.lock.hcl" "$stack/backend.tf"
init=(terraform -chdir="$stack" init -backend=false -input=false -no-color)
plugin_dir=${TF_PLUGIN_DIR:-}
if [[ -z $plugin_dir && -d /opt/tf-plugins ]]; then plugin_dir=/opt/tf-plugins; fi
if [[ -n $plugin_dir ]]; then init+=(-plugin-dir="$plugin_dir"); fi
if ! "${init[@]}" >"$work/init.log" 2>&1; then
  echo "validate skipped: terraform init could not install the AWS provider (no registry" \
    "and no usable mirror${plugin_dir:+ in $plugin_dir}):"
  grep -E 'Error|provider' "$work/init.log" | head -5 || true
  exit 0
fi
grep -E '^- (Installing|Using) hashicorp/aws' "$work/init.log" || true
terraform -chdir="$stack" validate -no-color

step "terraform plan against moto"
bash infra/scripts/plan-offline.sh
