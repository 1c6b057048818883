variable "name" {
  description = "Name prefix of the ECR repositories, the ECS cluster, roles and log group."
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

variable "images" {
  description = "The platform's images, one ECR repository each (keys: lowercase names)."
  type        = set(string)
  default     = ["loader", "generator", "transform"]

  validation {
    condition     = length(var.images) > 0 && alltrue([for i in var.images : can(regex("^[a-z][a-z0-9-]{0,30}$", i))])
    error_message = "images must be a non-empty set of lowercase names (letters, digits, hyphens)."
  }
}

variable "image_tag" {
  description = "Tag of the images the task definitions run (the deploy pushes this tag)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid Docker tag."
  }
}

variable "tasks" {
  description = "One-off and long-running tasks: which image, which command (the image's entrypoint is kept), CPU units and memory MiB."
  type = map(object({
    image   = string
    command = list(string)
    cpu     = optional(number, 256)
    memory  = optional(number, 512)
    target  = string # "source" or "warehouse": which database the task talks to
  }))
  nullable = false
  default = {
    migrate   = { image = "loader", command = ["migrate"], target = "source" }
    loader    = { image = "loader", command = ["load", "/data/raw"], target = "source" }
    generator = { image = "generator", command = ["generate", "--rate", "5"], target = "source" }
    transform = { image = "transform", command = ["build", "--target", "aws"], target = "warehouse", cpu = 512, memory = 1024 }
  }

  validation {
    condition     = alltrue([for t in values(var.tasks) : contains(["source", "warehouse"], t.target)])
    error_message = "every task's target must be \"source\" or \"warehouse\"."
  }

  validation {
    condition     = alltrue([for t in values(var.tasks) : contains([256, 512, 1024, 2048, 4096], t.cpu) && t.memory >= 512 && t.memory <= 30720])
    error_message = "every task's cpu must be a Fargate size (256, 512, 1024, 2048, 4096) and memory 512-30720 MiB."
  }
}

variable "service_tasks" {
  description = "Tasks that also run as a long-lived ECS service (started by the deploy after the load)."
  type        = set(string)
  default     = ["generator"]
}

variable "subnet_ids" {
  description = "Private subnets the tasks run in."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids must hold at least one subnet."
  }
}

variable "security_group_ids" {
  description = "Security groups of the tasks (the one the databases admit)."
  type        = list(string)
}

variable "source_database" {
  description = "Connection details of the source database (no password: it comes from the secret)."
  type = object({
    host       = string
    port       = number
    database   = string
    username   = string
    secret_arn = string
    kms_arn    = string
  })
}

variable "warehouse" {
  description = "Connection details of the warehouse (no password: it comes from the secret)."
  type = object({
    host             = string
    port             = number
    database         = string
    username         = string
    secret_arn       = string
    kms_arn          = string
    replica_database = string
  })
}

variable "log_retention_days" {
  description = "Days to keep the tasks' logs."
  type        = number
  default     = 14

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "container_insights" {
  description = "Turn on ECS Container Insights (extra CloudWatch metrics, billed)."
  type        = bool
  default     = false
}

variable "force_delete_repositories" {
  description = "Let `terraform destroy` delete ECR repositories that still hold images."
  type        = bool
  default     = true
}
