#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for rxslirp, as root: the Debian
# packages the tests and the benchmark use, /dev/net/tun usable by
# unprivileged users (mode 0666, as most distributions ship it), and the
# npm dependencies, whose install builds the native addon and the
# TypeScript (npm ci runs node-gyp and tsc).
set -euo pipefail

# The one prerequisite: Node.js 20 or newer (Debian 12's nodejs is 18).
# Checked first, before anything is installed.
need_node() {
  echo "setup.sh: rxslirp needs Node.js 20 or newer (with npm) on PATH; $1." >&2
  echo "Debian 12's nodejs package is version 18: install Node 20+ first." >&2
  exit 1
}
command -v node >/dev/null 2>&1 || need_node "node was not found"
node_version=$(node -p 'process.versions.node' 2>/dev/null) || need_node "node does not run"
node_major=${node_version%%.*}
if ! [[ $node_major =~ ^[0-9]+$ ]] || [ "$node_major" -lt 20 ]; then
  need_node "found version $node_version"
fi

cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
packages=(
  iproute2 iputils-ping util-linux procps python3 # namespaces, ping, the flood test
  tshark                                          # reads our pcap files in the tests
  curl wget git iperf3                            # TCP tests: clients in the namespace
  dnsutils busybox                                # DNS and DHCP tests: dig, nslookup, udhcpc
  rootlesskit uidmap                              # rxslirp in slirp4netns's place under rootlesskit
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
