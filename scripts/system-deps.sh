#!/usr/bin/env bash
# Install the Debian packages voxserve needs, only those missing.
#   scripts/system-deps.sh run    espeak-ng (the robotic voices for ~100 languages)
#   scripts/system-deps.sh test   + chromium and its driver (web page test), redis-server (cache
#                                 tests), prometheus (promtool and a real scraper), nodejs
#                                 and npm (the openai npm client's test) unless node is there
#   scripts/system-deps.sh containers
#                                 + docker.io (a private dockerd for the container tests),
#                                 debootstrap (the stand-in base image), iptables,
#                                 qemu-user-static and binfmt-support (the arm64 image is
#                                 built and run under emulation); as root it also registers
#                                 the emulator with the kernel (binfmt_misc), every time
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
  # linux/arm64 on another machine: Debian's static QEMU, registered with binfmt_misc's
  # fix-binary flag, so it runs arm64 programs in chroots and containers too.
  [ "$(dpkg --print-architecture)" = arm64 ] || packages+=(qemu-user-static binfmt-support)
fi

# The kernel runs arm64 programs through qemu-aarch64-static once binfmt_misc knows it.
# A reboot or a fresh container forgets it, so this runs even when nothing is missing.
register_arm64_emulator() {
  [ "$profile" = containers ] && [ "$(id -u)" -eq 0 ] || return 0
  [ "$(dpkg --print-architecture)" != arm64 ] || return 0
  command -v update-binfmts >/dev/null || return 0
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || {
      echo "voxserve: cannot mount binfmt_misc: the arm64 image tests will be skipped" >&2
      return 0
    }
  fi
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 || {
    echo "voxserve: cannot register qemu-aarch64: the arm64 image tests will be skipped" >&2
    return 0
  }
}
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  register_arm64_emulator
  exit 0
fi
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
register_arm64_emulator
