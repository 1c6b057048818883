variable "name" {
  description = "Name of the integration (and prefix of its key alias)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags for every taggable resource; must contain a non-empty \"creator\" tag."
  type        = map(string)

  validation {
    condition     = try(length(trimspace(var.tags["creator"])) > 0, false)
    error_message = "tags must contain a non-empty \"creator\" tag (who owns these resources)."
  }
}

variable "source_arn" {
  description = "ARN of the RDS for PostgreSQL DB instance to replicate."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:db:[a-z][a-z0-9-]*$", var.source_arn))
    error_message = "source_arn must be the ARN of an RDS DB instance (arn:aws:rds:<region>:<account>:db:<identifier>)."
  }
}

variable "target_arn" {
  description = "ARN of the Redshift Serverless namespace that receives the data."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:redshift-serverless:[a-z0-9-]+:[0-9]{12}:namespace/[0-9a-f-]+$", var.target_arn))
    error_message = "target_arn must be the ARN of a Redshift Serverless namespace (arn:aws:redshift-serverless:<region>:<account>:namespace/<id>)."
  }
}

variable "data_filter" {
  description = "Which source tables the integration replicates: comma-separated include:/exclude: expressions of database.schema.table (RDS for PostgreSQL sources require one)."
  type        = string
  default     = "include: storefront.public.*"

  validation {
    condition = length(var.data_filter) <= 25600 && alltrue([
      for expression in split(",", var.data_filter) :
      can(regex("^\\s*(include|exclude):\\s*[^.\\s]+\\.[^.\\s]+\\.[^.\\s]+\\s*$", expression))
    ])
    error_message = "data_filter must be comma-separated expressions like \"include: storefront.public.*\" (include: or exclude:, then database.schema.table, * allowed)."
  }
}

variable "encryption_context" {
  description = "Additional KMS encryption context for the integration (non-secret key-value pairs)."
  type        = map(string)
  default     = { application = "zetl" }
}
