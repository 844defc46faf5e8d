#!/usr/bin/env bash
# Packages the stack with `sls package` offline — no AWS credentials, no AWS calls — and gates the
# CloudFormation template with cfn-lint (no errors, no warnings), checkov (no failed checks;
# skips only where the template says why) and parliament, through scripts/lint_policies.py, on
# every IAM policy document (no findings against AWS's Service Authorization Reference;
# suppressions only with their reason, in scripts/policy_lint.yaml).
#
#   scripts/package.sh [all|package|check]     (default: all)
#   STAGE=dev REGION=us-east-1 scripts/package.sh
#
# Needs node_modules (npm ci), .venv (the wheel build) and .venv-lint (cfn-lint, checkov, parliament):
# `make package` sets them up first.
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE="${STAGE:-dev}"
REGION="${REGION:-us-east-1}"
LINT_VENV="${LINT_VENV:-.venv-lint}"
TEMPLATE=.serverless/cloudformation-template-update-stack.json

# No credentials can leak in and none are needed: packaging must work on a laptop without AWS.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
      AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_SHARED_CREDENTIALS_FILE=/nonexistent/credentials AWS_CONFIG_FILE=/nonexistent/config
export AWS_EC2_METADATA_DISABLED=true SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off

# npx runs sls on the Node that npm ci put in node_modules/.bin (the `node` package, Node 24 LTS),
# whatever Node runs npx itself: stop here if that is not Node 24.
node_24() {
  local version
  version="$(npx --no-install node --version 2>/dev/null || true)"
  [[ "$version" == v24.* ]] || {
    echo "sls runs on node_modules/.bin/node, which is '${version:-missing}', not Node 24: run npm ci" >&2
    return 1
  }
}

package() {
  node_24
  npx --no-install sls package --stage "$STAGE" --region "$REGION"
}

check() {
  echo "cfn-lint $TEMPLATE"
  "$LINT_VENV/bin/cfn-lint" "$TEMPLATE"
  echo "checkov $TEMPLATE"
  "$LINT_VENV/bin/checkov" --skip-download --quiet --compact \
    --framework cloudformation -f "$TEMPLATE"
  echo "parliament (scripts/lint_policies.py) $TEMPLATE"
  "$LINT_VENV/bin/python" scripts/lint_policies.py "$TEMPLATE"
}

case "${1:-all}" in
  package) package ;;
  check) check ;;
  all) package && check ;;
  *) echo "usage: $0 [all|package|check]" >&2; exit 2 ;;
esac
