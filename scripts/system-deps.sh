#!/usr/bin/env bash
# Install the Debian packages voxserve needs, only those missing.
#   scripts/system-deps.sh run    espeak-ng (the robotic voices for ~100 languages)
#   scripts/system-deps.sh test   + chromium and its driver (web page test), redis-server (cache
#                                 tests), prometheus (promtool and a real scraper), nodejs
#                                 and npm (the openai npm client's test) unless node is there
#   scripts/system-deps.sh containers
#                                 + docker.io (a private dockerd for the container tests),
#                                 debootstrap (the stand-in base image), iptables
set -euo pipefail
profile=${1:-run}
packages=(espeak-ng)
if [ "$profile" = test ]; then
  packages+=(chromium chromium-driver redis-server prometheus)
  # A node from elsewhere (nodesource, nvm) bundles npm and conflicts with Debian's npm.
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi
if [ "$profile" = containers ]; then
  packages+=(docker.io debootstrap iptables debian-archive-keyring)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$profile" = containers ] && [ "$(id -u)" -ne 0 ]; then
  # Its tests start a private dockerd, which needs root anyway: they skip, saying so.
  echo "voxserve: not root: the container stage's engine tests will be skipped;" \
    "its packages (${missing[*]}) are left uninstalled" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "voxserve: please install these packages with your package manager: ${missing[*]}" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
