#!/usr/bin/env bash
# Installs the real daemons the tests share (see packages/testkit/src/services/README.md):
# Docker Engine, the Distribution registry, a static busybox for base images and htpasswd.
# Idempotent: installs only what is missing and runs `apt-get update` only when something is.
# Needs root (or sudo). Starts nothing: the vitest global set-up starts and stops each daemon.
set -euo pipefail

# openssl makes the token server's signing certificate.
packages=(docker.io docker-registry busybox-static apache2-utils openssl)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: ${packages[*]} already installed" >&2
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "install-deps: need root to install ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when there are none yet, or when they are too old to find a package.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  "${sudo_cmd[@]}" apt-get update
fi
if ! "${sudo_cmd[@]}" apt-get install -y "${missing[@]}"; then
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" apt-get install -y "${missing[@]}"
fi

for path in /usr/sbin/dockerd /usr/bin/docker-registry /bin/busybox /usr/bin/htpasswd /usr/bin/openssl; do
  [ -x "$path" ] || { echo "install-deps: $path is missing after the install" >&2; exit 1; }
done
echo "install-deps: done" >&2
