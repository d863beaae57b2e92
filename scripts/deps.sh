#!/usr/bin/env bash
# deps.sh: installs the Debian packages blockbox needs that are not installed yet.
# Used by the Quick start, the test command and CI; a no-op when all are present.
set -euo pipefail
packages=(build-essential libseccomp-dev libcurl4-openssl-dev libssl-dev libcjson-dev libcap-dev
          check pkg-config cmake libpython3-dev python3-numpy python3-opencv python3-shapely openssl zlib1g-dev
          libmicrohttpd-dev clang libclang-rt-14-dev
          python3-setuptools python3-pip python3-wheel
          ca-certificates)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "blockbox: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
