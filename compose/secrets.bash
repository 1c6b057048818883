# export_secret NAME...: each NAME from its *_FILE variant when that is set (as the official
# Postgres image reads POSTGRES_PASSWORD_FILE); a missing secret stops the init with its name.
export_secret() {
  local name file
  for name in "$@"; do
    file="${name}_FILE"
    if [[ -n "${!file:-}" ]]; then
      export "$name"="$(<"${!file}")"
    elif [[ -z "${!name:-}" ]]; then
      echo "zetl roles: set $name or $file" >&2
      return 1
    else
      export "${name?}"
    fi
  done
}
