#!/usr/bin/env bash
# A real `terraform plan` of infra/terraform with no AWS account: the provider's endpoints
# point at a moto server on 127.0.0.1 (it answers the data sources: caller identity,
# availability zones), then check_plan.py asserts the zero-ETL wiring on the planned values,
# for the default variables and for a source with a public allow-list; and two inputs the
# validation blocks must refuse are tried. Needs terraform and the AWS provider (registry,
# or a mirror in TF_PLUGIN_DIR); says so and stops when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

TF_DIR=infra/terraform
MOTO_VENV=${MOTO_VENV:-.venv-moto}
PYTHON=${PYTHON:-python3}
CREATOR=plan-offline@example.com

command -v terraform >/dev/null || { echo "plan-offline skipped: terraform is not installed"; exit 0; }

if [[ ! -x $MOTO_VENV/bin/moto_server ]]; then
  "$PYTHON" -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install --quiet --upgrade pip
  "$MOTO_VENV/bin/pip" install --quiet 'moto[server]>=5,<6'
fi

work=$(mktemp -d)
moto_pid=
cleanup() {
  [[ -n $moto_pid ]] && kill "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
  sleep 0.2
done

# The copy keeps the repository's layout: the stack reads zetl's one list of zero-ETL versions
# from services/common.
stack="$work/repo/infra/terraform"
mkdir -p "$stack" "$work/repo/services/common/src/zetl"
cp -r "$TF_DIR"/. "$stack"
cp services/common/src/zetl/zero_etl_versions.json "$work/repo/services/common/src/zetl/"
rm -rf "$stack/.terraform" "$stack/.terraform.lock.hcl" "$stack/backend.tf" \
  "$stack/terraform.tfvars"
endpoint="http://127.0.0.1:$port"
# An *_override.tf file merges into the stack's provider block.
cat >"$stack/offline_override.tf" <<HCL
# Written by plan-offline.sh: the provider talks to moto, never to AWS.
provider "aws" {
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    sts                = "$endpoint"
    ec2                = "$endpoint"
    iam                = "$endpoint"
    kms                = "$endpoint"
    rds                = "$endpoint"
    redshift           = "$endpoint"
    redshiftserverless = "$endpoint"
    ecr                = "$endpoint"
    ecs                = "$endpoint"
    logs               = "$endpoint"
  }
}
HCL

init=(terraform -chdir="$stack" init -backend=false -input=false -no-color)
plugin_dir=${TF_PLUGIN_DIR:-}
if [[ -z $plugin_dir && -d /opt/tf-plugins ]]; then plugin_dir=/opt/tf-plugins; fi
if [[ -n $plugin_dir ]]; then init+=(-plugin-dir="$plugin_dir"); fi
if ! "${init[@]}" >"$work/init.log" 2>&1; then
  echo "plan-offline skipped: the AWS provider cannot be installed (no registry, no mirror)"
  exit 0
fi

plan() { # scenario, extra terraform arguments...
  local scenario=$1
  shift
  terraform -chdir="$stack" plan -input=false -no-color -var "creator=$CREATOR" \
    -out="$work/$scenario.tfplan" "$@" >"$work/$scenario.log" 2>&1 \
    || { tail -30 "$work/$scenario.log"; echo "plan ($scenario) failed" >&2; return 1; }
  grep '^Plan:' "$work/$scenario.log"
  terraform -chdir="$stack" show -json "$work/$scenario.tfplan" >"$work/$scenario.json"
  "$PYTHON" infra/scripts/check_plan.py "$work/$scenario.json" "$scenario" "$CREATOR"
}

refused() { # what, expected message, terraform arguments...
  local what=$1 message=$2
  shift 2
  if terraform -chdir="$stack" plan -input=false -no-color -var "creator=$CREATOR" "$@" \
    >"$work/refused.log" 2>&1; then
    echo "plan accepted $what" >&2
    return 1
  fi
  grep -q "$message" "$work/refused.log" || { tail -20 "$work/refused.log"; return 1; }
  echo "refused: $what"
}

plan default
plan public -var 'source_public_access_cidrs=["203.0.113.10/32"]'
refused "a source open to 0.0.0.0/0" "never the whole internet" \
  -var 'source_public_access_cidrs=["0.0.0.0/0"]'
refused "PostgreSQL 15.4 (no zero-ETL)" "RDS zero-ETL supports PostgreSQL" \
  -var 'source_engine_version=15.4'
