#!/usr/bin/env bash
# Installs what building and testing lvs-node needs on Debian or Ubuntu:
# qemu (the lab VM), a Debian kernel with IPVS and IPIP modules for the VM,
# busybox-static (the VM's init and shell), ipvsadm and iproute2 (cross-checks
# inside the VM), keepalived (benchmarks, the HA lab tests, and the importer tests run keepalived -t),
# bird2 (BIRD and birdc: VIP announcement, on the host and in the HA lab tests),
# haproxy (polls the real-server agent in a test), netbase (/etc/services: port
# names of ipvsadm-save), nftables and kmod, the pinned clang with libbpf's
# headers that make generate (and its check) uses; for the package tests
# lintian, rpm and systemd (systemd-analyze), and promtool, taken alone from
# Debian's prometheus package (the server itself is not installed).
# As root it installs what is missing with apt-get; otherwise it prints the
# command to run and fails.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ]; }
have qemu-system-x86_64 || need+=(qemu-system-x86)
[ -e /bin/busybox ] || need+=(busybox-static)
have /usr/sbin/ipvsadm || need+=(ipvsadm)
have /usr/sbin/keepalived || need+=(keepalived)
have /usr/sbin/bird || need+=(bird2)
have /usr/sbin/birdc || need+=(bird2)
have /etc/services || need+=(netbase)
have /usr/sbin/haproxy || need+=(haproxy)
have /sbin/ip || need+=(iproute2)
have /usr/sbin/nft || need+=(nftables)
have modprobe || need+=(kmod)
have nsenter || need+=(util-linux)
have ldd || need+=(libc-bin)
have make || need+=(make)
have clang-19 || need+=(clang-19)
have llvm-strip-19 || need+=(llvm-19)
have /usr/include/bpf/bpf_helpers.h || need+=(libbpf-dev)
have lintian || need+=(lintian)
have rpm || need+=(rpm)
have systemd-analyze || need+=(systemd)
have chroot || need+=(coreutils)
if ! ls /lib/modules/*/kernel/net/netfilter/ipvs/ip_vs.ko >/dev/null 2>&1 || ! ls /boot/vmlinuz-* >/dev/null 2>&1; then
  need+=(linux-image-amd64)
fi
# busybox (dynamic) cannot run as /init: the static build is required.
if [ -e /bin/busybox ] && ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi

mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u | sed '/^$/d')
if [ ${#need[@]} -gt 0 ]; then
  cmd="apt-get install -y --no-install-recommends ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "lvs-node needs these packages; as root, run:" >&2
    echo "  apt-get update && $cmd" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends ${need[*]}
fi

# promtool: only the one binary out of Debian's prometheus package, whose
# server, service and user the tests do not want.
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "lvs-node's tests need promtool; as root, run: bash scripts/install-deps.sh" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "installing: promtool (from Debian's prometheus package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root prometheus)
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
  install -m 0755 "$tmp/usr/bin/promtool" /usr/local/bin/promtool
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "lvs-node needs Go 1.26 or newer (https://go.dev/doc/install) on PATH" >&2
  exit 1
fi
