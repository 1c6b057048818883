#!/usr/bin/env bash
# Builds the offline stand-ins for the official base images, for machines where no container
# registry answers (docker pull fails) but Debian mirrors do:
#
#   zetl/debian:bookworm       debootstrap --variant=minbase, then docker import
#   zetl/python:3.11-bookworm  Debian's python3 in a venv on PATH  (stands in for python:3.x-slim)
#   zetl/postgres:15-bookworm  Debian's postgresql-15 + an entrypoint with the official contract
#                              (stands in for postgres:17)
#
# and records them in .env (POSTGRES_IMAGE, PYTHON_IMAGE, TESTCONTAINERS_RYUK_DISABLED) so that
# docker-compose, the Makefile and the tests use them.
#
# Usage: bash compose/offline/build.sh      (from any directory)
#   FORCE=1 (or all)               rebuild every image even if its tag exists
#   FORCE="postgres python"        rebuild only those (debian, python, postgres)
#   DEBIAN_MIRROR=http://...       use this mirror instead of the one in the machine's apt sources
#   DEBIAN_SECURITY_MIRROR=...     likewise for the bookworm-security archive
# An image rebuilt in this run also rebuilds the images built on top of it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

DEBIAN_IMAGE=zetl/debian:bookworm
PYTHON_IMAGE=zetl/python:3.11-bookworm
POSTGRES_IMAGE=zetl/postgres:15-bookworm
SUITE=bookworm
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# The classic builder is the only one on the machines this script is for (no buildx).
export DOCKER_BUILDKIT=0

log() { printf '[offline] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Temporary files and directories, removed on any exit. debootstrap mounts /proc and /sys
# inside its target while it runs; if it dies half way those mounts are still there, and rm -rf
# must not walk into the host's /proc or /sys through them, hence the unmount and
# --one-file-system.
tmp_paths=()
cleanup() {
    local path mnt
    for path in "${tmp_paths[@]}"; do
        [[ -e "$path" ]] || continue
        # Deepest mounts first; /proc/mounts escapes spaces, which mktemp names never contain.
        while read -r mnt; do
            umount -l "$mnt" 2>/dev/null || true
        done < <(awk -v d="$path/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
        rm -rf --one-file-system "$path"
    done
}
trap cleanup EXIT
# Ctrl-C or a kill goes through exit, so the EXIT trap cleans up in those cases too.
trap 'exit 130' INT
trap 'exit 143' TERM

# run_quietly WHAT COMMAND...: runs COMMAND with its (long) output kept in a log that is shown
# only when it fails, so a successful build prints just the progress lines.
run_quietly() {
    local what="$1" log_file
    shift
    log_file="$(mktemp "${TMPDIR:-/tmp}/zetl-offline-log.XXXXXX")"
    tmp_paths+=("$log_file")
    if ! "$@" >"$log_file" 2>&1; then
        tail -n 60 "$log_file" >&2
        rm -f "$log_file"
        die "$what failed (output above)"
    fi
    rm -f "$log_file"
}

# new_tmp_dir VAR LABEL: a fresh directory, its path stored in VAR. Not "$(new_tmp_dir)": a
# command substitution is a subshell, and the directory would never reach the cleanup list.
new_tmp_dir() {
    local dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/zetl-offline-$2.XXXXXX")"
    tmp_paths+=("$dir")
    printf -v "$1" '%s' "$dir"
}

# apt_source_uri SUITE_REGEX: the first URI of the first enabled "Types: deb" entry of the
# machine's apt sources whose suites match SUITE_REGEX (awk ERE; "" matches any), looking at
# /etc/apt/sources.list.d/*.sources (deb822) first, then /etc/apt/sources.list. Prints nothing
# when none matches. Read at run time so the repository never names a mirror host.
apt_source_uri() {
    local pattern="$1" file uri
    for file in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$file" ]] || continue
        uri="$(awk -v pattern="$pattern" '
            BEGIN { RS = ""; FS = "\n" }   # paragraph mode: one record per stanza
            {
                is_deb = 0; enabled = 1; uri = ""; suites = ""
                for (i = 1; i <= NF; i++) {
                    line = $i
                    if (line ~ /^[ \t]*#/) continue
                    lower = tolower(line)
                    value = line; sub(/^[^:]*:[ \t]*/, "", value)
                    if (lower ~ /^types:/ && (" " value " ") ~ /[ \t]deb[ \t]/) is_deb = 1
                    else if (lower ~ /^enabled:[ \t]*no/) enabled = 0
                    else if (lower ~ /^uris:/) { split(value, parts, /[ \t]+/); uri = parts[1] }
                    else if (lower ~ /^suites:/) suites = value
                }
                if (is_deb && enabled && uri != "" && suites ~ pattern) { print uri; exit }
            }' "$file")"
        if [[ -n "$uri" ]]; then
            printf '%s\n' "$uri"
            return
        fi
    done
    if [[ -f /etc/apt/sources.list ]]; then
        # deb [arch=amd64 signed-by=...] URI suite components
        sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' \
            /etc/apt/sources.list | awk -v pattern="$pattern" '$2 ~ pattern { print $1; exit }'
    fi
}

# The mirror debootstrap uses: DEBIAN_MIRROR, else the first deb entry of the apt sources.
debian_mirror() {
    local uri="${DEBIAN_MIRROR:-}"
    if [[ -z "$uri" ]]; then
        uri="$(apt_source_uri '')"
    fi
    [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set DEBIAN_MIRROR"
    printf '%s\n' "$uri"
}

# FORCE=1/all/yes/true rebuilds everything; otherwise it may name images (debian python postgres).
forced() {
    local force=" ${FORCE:-} "
    force="${force//,/ }"
    case "$force" in
        *" 1 "* | *" all "* | *" yes "* | *" true "* | *" $1 "*) return 0 ;;
        *) return 1 ;;
    esac
}

# The image id TAG names now, or nothing.
image_id() {
    docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

# remove_if_orphaned OLD_ID: a rebuild moves the tag to a new image; the old one, if nothing
# else tags it, would linger as <none>. Removal fails harmlessly while a container or a child
# image still uses it.
remove_if_orphaned() {
    local old="$1" tags
    [[ -n "$old" ]] || return 0
    tags="$(docker image inspect --format '{{len .RepoTags}}' "$old" 2>/dev/null || echo gone)"
    if [[ "$tags" == 0 ]]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
}

# needs_build NAME TAG BASE_WAS_REBUILT
needs_build() {
    if forced "$1" || [[ "$3" == 1 ]]; then
        return 0
    fi
    if docker image inspect "$2" >/dev/null 2>&1; then
        log "$2 exists, skipping (FORCE=$1 or FORCE=1 rebuilds it)"
        return 1
    fi
    return 0
}

build_debian() {
    local mirror security rootfs
    mirror="$(debian_mirror)"
    new_tmp_dir rootfs rootfs
    log "building $DEBIAN_IMAGE: debootstrap --variant=minbase $SUITE from $mirror ..."
    run_quietly debootstrap debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror"

    # Make the tree look like the official debian:bookworm-slim, which python:*-slim and
    # postgres:17 are built on: no documentation or man pages installed by later apt runs,
    # downloaded .debs and apt lists not kept in layers, and none of the host's identity
    # (debootstrap copies the host's resolv.conf and hostname; docker provides its own).
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# As in debian:*-slim: keep images small, keep the licences.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    # As in the official image: -updates from the same mirror, and -security from wherever
    # this machine gets it (it is a separate archive), so Postgres and Python come with the
    # current point releases. Without a security entry on the machine, the image has none.
    security="${DEBIAN_SECURITY_MIRROR:-$(apt_source_uri "(^| )$SUITE-security( |\$)")}"
    {
        printf 'deb %s %s main\n' "$mirror" "$SUITE"
        printf 'deb %s %s-updates main\n' "$mirror" "$SUITE"
        if [[ -n "$security" ]]; then
            printf 'deb %s %s-security main\n' "$security" "$SUITE"
        fi
    } >"$rootfs/etc/apt/sources.list"
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs/usr/share/man/"* "$rootfs/usr/share/info/"* \
        "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin \
        "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/log/"*.log
    : >"$rootfs/etc/resolv.conf"
    : >"$rootfs/etc/hostname"

    log "importing $DEBIAN_IMAGE ..."
    tar --numeric-owner -C "$rootfs" -c . \
        | docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' \
            --change 'LABEL org.opencontainers.image.description="zetl offline stand-in for debian:bookworm-slim"' \
            - "$DEBIAN_IMAGE" >/dev/null
}

build_python() {
    local context
    new_tmp_dir context python
    log "building $PYTHON_IMAGE ..."
    [[ -r "$HOST_CA_BUNDLE" ]] || die "$HOST_CA_BUNDLE not readable: pip inside the image needs it"
    # The context is a temporary directory so the host's CA bundle (which may carry a proxy's
    # CA) reaches the image without ever being written into the repository.
    cp "$here/python/Dockerfile" "$context/Dockerfile"
    cp "$HOST_CA_BUNDLE" "$context/host-ca-bundle.crt"
    run_quietly "docker build $PYTHON_IMAGE" docker build --tag "$PYTHON_IMAGE" "$context"
}

build_postgres() {
    log "building $POSTGRES_IMAGE ..."
    run_quietly "docker build $POSTGRES_IMAGE" docker build --tag "$POSTGRES_IMAGE" "$here/postgres"
}

# Sets KEY=VALUE in the repository's .env: replaces every line that assigns KEY (with or
# without a leading "export"), appends it when none does, and leaves every other line as it is.
set_env_keys() {
    local env_file="$root/.env" tmp
    if [[ ! -f "$env_file" ]]; then
        if [[ -f "$root/.env.example" ]]; then
            cp "$root/.env.example" "$env_file"
            log "created .env from .env.example"
        else
            : >"$env_file"
            log "created an empty .env"
        fi
    fi
    tmp="$(mktemp "$root/.env.XXXXXX")"
    tmp_paths+=("$tmp")
    awk -v assignments="$(printf '%s\n' "$@")" '
        BEGIN {
            n = split(assignments, lines, "\n")
            for (i = 1; i <= n; i++) {
                if (lines[i] == "") continue
                key = substr(lines[i], 1, index(lines[i], "=") - 1)
                value[key] = lines[i]; order[++count] = key
            }
        }
        {
            line = $0
            sub(/^[ \t]*(export[ \t]+)?/, "", line)
            key = substr(line, 1, index(line, "=") - 1)
            if (index(line, "=") > 0 && (key in value)) { print value[key]; seen[key] = 1; next }
            print
        }
        END { for (i = 1; i <= count; i++) if (!(order[i] in seen)) print value[order[i]] }
    ' "$env_file" >"$tmp"
    # cat rather than mv: keeps the existing file's owner and mode.
    cat "$tmp" >"$env_file"
    rm -f "$tmp"
    log "wrote $env_file:"
    printf '%s\n' "$@"
}

main() {
    local start rebuilt=0 old old_debian=""
    start=$SECONDS
    command -v docker >/dev/null || die "docker is not installed"
    docker info >/dev/null 2>&1 || die "no Docker engine answers (start it: nohup dockerd >/tmp/dockerd.log 2>&1 &)"

    if needs_build debian "$DEBIAN_IMAGE" 0; then
        command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
        [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
        old_debian="$(image_id "$DEBIAN_IMAGE")"
        build_debian
        rebuilt=1
    fi
    # python and postgres both sit directly on the Debian image.
    if needs_build python "$PYTHON_IMAGE" "$rebuilt"; then
        old="$(image_id "$PYTHON_IMAGE")"
        build_python
        remove_if_orphaned "$old"
    fi
    if needs_build postgres "$POSTGRES_IMAGE" "$rebuilt"; then
        old="$(image_id "$POSTGRES_IMAGE")"
        build_postgres
        remove_if_orphaned "$old"
    fi
    # Last: the old Debian image can go only once no image built on it is left.
    remove_if_orphaned "$old_debian"

    set_env_keys \
        "POSTGRES_IMAGE=$POSTGRES_IMAGE" \
        "PYTHON_IMAGE=$PYTHON_IMAGE" \
        "TESTCONTAINERS_RYUK_DISABLED=true"
    log "done in $((SECONDS - start)) s"
}

main "$@"
