variable "name" {
  description = "The key's alias, without the alias/ prefix (<stack name>-<purpose>)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,62}[a-z0-9]$", var.name))
    error_message = "name must be 3-64 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags for the key; must contain a non-empty \"creator\" tag."
  type        = map(string)

  validation {
    condition     = try(length(trimspace(var.tags["creator"])) > 0, false)
    error_message = "tags must contain a non-empty \"creator\" tag (who owns these resources)."
  }
}

variable "description" {
  description = "What the key encrypts, shown in the KMS console."
  type        = string

  validation {
    condition     = length(trimspace(var.description)) > 0
    error_message = "description must say what the key encrypts."
  }
}

variable "service_grants" {
  description = "Statements that let AWS services use the key, each scoped by one condition (sid, actions, services, condition {test, variable, values})."
  type = list(object({
    sid      = string
    actions  = list(string)
    services = list(string)
    condition = object({
      test     = string
      variable = string
      values   = list(string)
    })
  }))
  default = []

  validation {
    condition     = alltrue([for g in var.service_grants : length(g.services) > 0 && length(g.condition.values) > 0])
    error_message = "every service grant names at least one service and is scoped by a condition with values."
  }
}
