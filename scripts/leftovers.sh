#!/usr/bin/env bash
# Fails when tests left anything behind on the host: network namespaces,
# links, nftables tables, cgroups, pinned BPF objects or temporary files
# made by lvs-node's tests.
#   leftovers.sh start   marks the start of a test run
#   leftovers.sh         checks; namespaces, cgroups, pins and files count only
#                        when made after the mark (older ones are not ours)
set -u
mark="$(dirname "$0")/../.test-start"
if [ "${1:-}" = start ]; then touch "$mark"; exit 0; fi
newer=()
[ -e "$mark" ] && newer=(-newer "$mark")
bad=0
report() { echo "left behind: $*" >&2; bad=1; }

for ns in $(find /run/netns -maxdepth 1 -mindepth 1 "${newer[@]}" 2>/dev/null); do
  case "$(basename "$ns")" in lvslab-*|lvs-*|lvstest*) report "network namespace $ns";; esac
done
links=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^(lvs|tunl0|v[0-9]+@|br[0-9]+$)' || true)
[ -n "$links" ] && report "links in the host namespace: $links"
if command -v nft >/dev/null 2>&1; then
  tables=$(nft list tables 2>/dev/null | grep -E 'lvs' || true)
  [ -n "$tables" ] && report "nftables tables: $tables"
fi
cg=$(find /sys/fs/cgroup -maxdepth 3 -type d -name '*lvs*' "${newer[@]}" 2>/dev/null || true)
[ -n "$cg" ] && report "cgroups: $cg"
pins=$(find /sys/fs/bpf -maxdepth 3 -name '*lvs*' "${newer[@]}" 2>/dev/null || true)
[ -n "$pins" ] && report "pinned BPF objects: $pins"
tmp=$(find "${TMPDIR:-/tmp}" -maxdepth 1 \( -name 'lvs-node-*' -o -name 'lvs-node-lab-*' -o -name 'lvs-node-e2e-*' \) "${newer[@]}" 2>/dev/null || true)
[ -n "$tmp" ] && report "temporary files: $tmp"
rm -f "$mark"
if [ $bad -eq 0 ]; then echo "host is clean: no namespaces, links, nftables tables, cgroups, BPF pins or temp files left"; fi
exit $bad
