#!/usr/bin/env bash
# WebGPU backend prerequisites (the webgpu tests and `--backend webgpu` on a machine without a GPU):
# Debian's Vulkan loader and Mesa's Vulkan drivers, whose software rasteriser (llvmpipe) Dawn accepts
# as an adapter. Bookworm's Mesa 22.3 is refused by Dawn ("shaderUniform*ArrayDynamicIndexing
# required"), so mesa-vulkan-drivers (Mesa 25) and the newer libdrm it needs come from
# bookworm-backports; an apt pin keeps every other package on bookworm. Idempotent: does nothing once
# a Mesa >= 23 Vulkan driver is installed. Skips (exit 0, with a message) where it cannot run: not
# root, no apt-get, or not Debian bookworm; the webgpu tests then skip and print why.
set -euo pipefail

installed_mesa() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }

version="$(installed_mesa)"
if dpkg -s libvulkan1 >/dev/null 2>&1 && [ -n "$version" ] && dpkg --compare-versions "$version" ge 23; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "webgpu prerequisites: not root or no apt-get; install libvulkan1 and a Vulkan driver (Mesa >= 23) yourself" >&2
  exit 0
fi
codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
if [ "$codename" != bookworm ]; then
  echo "webgpu prerequisites: written for Debian bookworm, found '${codename:-unknown}'; install libvulkan1 and mesa-vulkan-drivers (Mesa >= 23) yourself" >&2
  exit 0
fi

cat >/etc/apt/sources.list.d/vswin-bookworm-backports.sources <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# Nothing comes from backports unless named here: Mesa's Vulkan drivers and the libdrm they need.
cat >/etc/apt/preferences.d/vswin-bookworm-backports <<'PINS'
Package: *
Pin: release n=bookworm-backports
Pin-Priority: 1

Package: mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 libdrm-common
Pin: release n=bookworm-backports
Pin-Priority: 500
PINS

apt-get -o DPkg::Lock::Timeout=600 update
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends libvulkan1 mesa-vulkan-drivers
version="$(installed_mesa)"
if ! dpkg --compare-versions "$version" ge 23; then
  echo "webgpu prerequisites: mesa-vulkan-drivers $version was installed, Dawn needs Mesa >= 23 (bookworm-backports)" >&2
  exit 1
fi
