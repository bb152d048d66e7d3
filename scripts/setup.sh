#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for rxslirp, as root: the Debian
# packages the tests and the benchmark use, /dev/net/tun usable by
# unprivileged users (mode 0666, as most distributions ship it), and the
# npm dependencies, whose install builds the native addon and the
# TypeScript (npm ci runs node-gyp and tsc).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
packages=(
  iproute2 iputils-ping util-linux procps python3 # namespaces, ping, the flood test
  tshark                                          # reads our pcap files in the tests
  curl wget git iperf3                            # TCP tests: clients in the namespace
  dnsutils busybox                                # DNS and DHCP tests: dig, nslookup, udhcpc
  g++ make                                        # the native addon
)
if [ "${RXSLIRP_BENCH:-0}" = 1 ]; then
  packages+=(slirp4netns sockperf apache2-utils) # bench/ only, never the tests
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  chmod 0666 /dev/net/tun
fi

npm ci --no-audit --no-fund
