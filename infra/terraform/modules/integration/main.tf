# The zero-ETL integration: its own KMS key (usable by RDS and Redshift on this account's
# behalf), the Redshift resource policy that authorizes the source database to replicate into
# the namespace, and the integration itself with a data filter.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  root_arn   = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"
}

# Both ends of the integration take grants on the key: RDS encrypts what it sends,
# Redshift decrypts what it receives. Only for this account's resources.
module "key" {
  source      = "../kms"
  name        = "${var.name}-integration"
  description = "${var.name}: zero-ETL integration from RDS to Redshift Serverless"
  tags        = var.tags
  service_grants = [{
    sid      = "ZeroEtlServicesUseKey"
    actions  = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*"]
    services = ["rds.amazonaws.com", "redshift.amazonaws.com"]
    condition = {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }]
}

# Authorizes the source on the target (AWS: "Configure authorization for your Amazon Redshift
# data warehouse"): Redshift may accept an inbound integration from exactly this DB instance,
# and principals of this account may create it.
data "aws_iam_policy_document" "target" {
  statement {
    sid       = "AuthorizeSourceDatabase"
    actions   = ["redshift:AuthorizeInboundIntegration"]
    resources = [var.target_arn]
    principals {
      type        = "Service"
      identifiers = ["redshift.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [var.source_arn]
    }
  }

  statement {
    sid       = "AccountCreatesIntegration"
    actions   = ["redshift:CreateInboundIntegration"]
    resources = [var.target_arn]
    principals {
      type        = "AWS"
      identifiers = [local.root_arn]
    }
  }
}

resource "aws_redshift_resource_policy" "this" {
  resource_arn = var.target_arn
  policy       = data.aws_iam_policy_document.target.json
}

resource "aws_rds_integration" "this" {
  integration_name = var.name
  source_arn       = var.source_arn
  target_arn       = var.target_arn
  data_filter      = var.data_filter

  kms_key_id                    = module.key.arn
  additional_encryption_context = var.encryption_context

  tags = var.tags

  # The target must trust the source before RDS asks it to.
  depends_on = [aws_redshift_resource_policy.this]
}
