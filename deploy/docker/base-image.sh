#!/usr/bin/env bash
# Build a stand-in for the python:3.11-slim base image from Debian packages, for machines
# that reach a Debian mirror and PyPI but no container registry (air-gapped builds, this
# project's CI). The voxserve Dockerfile then builds unchanged.
#
#   deploy/docker/base-image.sh [TAG]          # default TAG: python:3.11-slim
#   ARCH=arm64 deploy/docker/base-image.sh     # default TAG: python:3.11-slim-arm64
#
# Environment:
#   ARCH              Debian architecture of the image (default: this machine's). Another
#                     one (arm64 on an amd64 machine) runs debootstrap's second stage and
#                     the image's programs through qemu-user-static, which must be
#                     registered with binfmt_misc: scripts/system-deps.sh containers does it
#   DOCKER            docker CLI to use (default: docker); DOCKER_HOST picks the engine
#   CONTAINER_CACHE   where the root filesystem tarball is kept between runs
#                     (default: .cache/containers); delete it to rebuild from scratch
#   DEBIAN_MIRROR     Debian mirror URL (default: the first one apt is configured with)
#
# Needs root (debootstrap, chroot) and Debian's debootstrap and archive keyring.
set -euo pipefail
host_arch=$(dpkg --print-architecture)
arch=${ARCH:-$host_arch}
docker=${DOCKER:-docker}
cache=${CONTAINER_CACHE:-.cache/containers}
suite=bookworm # Python 3.11, as in python:3.11-slim
if [ "$arch" = "$host_arch" ]; then
  tag=${1:-python:3.11-slim}
  tarball=$cache/base-$suite.tar
else
  # One tag holds one image in the engine's store: the foreign one gets a name of its own.
  tag=${1:-python:3.11-slim-$arch}
  tarball=$cache/base-$suite-$arch.tar
fi
# Docker's names for the architecture (an image's config), and the emulator's.
case "$arch" in
  arm64) image_arch=arm64 variant=v8 emulator=qemu-aarch64 ;;
  armhf) image_arch=arm variant=v7 emulator=qemu-arm ;;
  *) image_arch=$arch variant="" emulator=qemu-$arch ;;
esac
cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT
if [ "$arch" != "$host_arch" ] && [ ! -e "/proc/sys/fs/binfmt_misc/$emulator" ]; then
  echo "base-image.sh: this machine cannot run $arch programs: install qemu-user-static and" \
    "register it (as root: scripts/system-deps.sh containers)" >&2
  exit 1
fi

# The Debian mirror apt already uses: deb822 .sources files first, then sources.list lines.
# Security and -updates archives are skipped: debootstrap needs the main archive.
configured_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ \t]*/, "", suites) }
        }
        n = split(suites, s, /[ \t]+/)
        for (j = 1; j <= n; j++) if (s[j] != "" && s[j] !~ /[-\/]/ && uris !~ /security/) {
          split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) !~ /[-\/]/ && $i !~ /security/) { print $i; exit }
      }' "$f"
  done
}

if [ ! -s "$tarball" ]; then
  mirror=${DEBIAN_MIRROR:-$(configured_mirror | head -n 1)}
  if [ -z "$mirror" ]; then
    echo "base-image.sh: no Debian mirror found in apt's sources; set DEBIAN_MIRROR" >&2
    exit 1
  fi
  mkdir -p "$cache"
  root=$(mktemp -d "${TMPDIR:-/tmp}/voxserve-rootfs.XXXXXX")
  cleanup+=("$root")
  echo "base-image.sh: debootstrap $suite ($arch) from $mirror"
  debootstrap --variant=minbase --arch="$arch" \
    --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    exit 1
  }
  rm -f "$root.log"
  # pip may install into this image's system Python, as it may in python:3.11-slim.
  rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
  # Certificate authorities this machine added (a TLS-inspecting proxy, a company CA):
  # without them pip inside `docker build` cannot reach the package index.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
  fi
  # What Debian's official images configure: apt keeps no package caches, dpkg installs
  # no documentation (the "slim" part).
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*/ \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/log/bootstrap.log
  tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
fi

# Import once per tarball: the label ties the image to the tarball it came from.
stamp=$(stat -c '%s-%Y' "$tarball")
env_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
certs=/etc/ssl/certs/ca-certificates.crt
if [ "$("$docker" image inspect -f '{{ index .Config.Labels "org.voxserve.standin" }}' "$tag" 2>/dev/null)" = "$stamp" ]; then
  :
elif [ "$arch" = "$host_arch" ]; then
  "$docker" import \
    -c "LABEL org.voxserve.standin=$stamp" \
    -c "ENV PATH=$env_path" \
    -c 'ENV LANG=C.UTF-8' \
    -c "ENV SSL_CERT_FILE=$certs" \
    -c "ENV PIP_CERT=$certs" \
    -c 'CMD ["python3"]' \
    "$tarball" "$tag" >/dev/null
else
  # `docker import` records this machine's architecture whatever --platform says (Docker
  # 20.10), and builds for linux/arm64 then refuse the base. `docker load` takes an image
  # whose configuration says arm64 (variant v8, as the official images say): the same
  # single layer and settings as above, written out in `docker save`'s layout.
  load=$(mktemp -d "${TMPDIR:-/tmp}/voxserve-load.XXXXXX")
  cleanup+=("$load")
  ln "$tarball" "$load/layer.tar" 2>/dev/null || cp "$tarball" "$load/layer.tar"
  cat >"$load/config.json" <<JSON
{"architecture": "$image_arch", "variant": "$variant", "os": "linux",
 "created": "$(date -u -d "@$(stat -c %Y "$tarball")" +%Y-%m-%dT%H:%M:%SZ)",
 "config": {"Env": ["PATH=$env_path", "LANG=C.UTF-8", "SSL_CERT_FILE=$certs", "PIP_CERT=$certs"],
            "Cmd": ["python3"], "Labels": {"org.voxserve.standin": "$stamp"}},
 "rootfs": {"type": "layers", "diff_ids": ["sha256:$(sha256sum "$tarball" | cut -d' ' -f1)"]},
 "history": [{"created_by": "deploy/docker/base-image.sh: debootstrap $suite $arch"}]}
JSON
  printf '[{"Config": "config.json", "RepoTags": ["%s"], "Layers": ["layer.tar"]}]\n' "$tag" \
    >"$load/manifest.json"
  tar -C "$load" -cf - manifest.json config.json layer.tar | "$docker" load >/dev/null
fi
echo "$tag"
