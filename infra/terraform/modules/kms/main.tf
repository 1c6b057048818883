# One customer-managed KMS key with rotation and an explicit policy: the account administers it
# (the AWS default statement, so IAM policies govern it), and each service grant names the
# AWS services that may use it and the one condition that scopes them to this stack.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  root_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.key.json

  tags = var.tags
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" is this key alone; the account-root statement is the AWS default that lets IAM policies govern the key.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" is this key alone; write access is limited to this account and the named services.
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" is this key alone (key policies cannot name their own ARN before creation).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.root_arn]
    }
  }

  dynamic "statement" {
    for_each = var.service_grants
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = ["*"]
      principals {
        type        = "Service"
        identifiers = statement.value.services
      }
      condition {
        test     = statement.value.condition.test
        variable = statement.value.condition.variable
        values   = statement.value.condition.values
      }
    }
  }
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}
