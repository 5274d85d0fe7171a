#!/usr/bin/env bash
# Installs what berthd and its tests need on a Debian machine (run as root), then the npm
# dependencies (which bring Node.js 24) and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(runc crun containerd docker-registry skopeo umoci busybox-static pigz zstd isal
  containernetworking-plugins iproute2 ca-certificates openssl apache2-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # docker-registry starts a system service on :5000; the tests run their own registries.
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

npm ci --no-audit --no-fund
npm run build
