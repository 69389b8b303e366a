#!/usr/bin/env bash
# Runs a command as if this CPU's caches had other sizes. gemm sizes its
# packing buffers and its per-thread L2 slab from
# /sys/devices/system/cpu/cpu*/cache, so a check that leans on them can be
# tried here with another machine's caches: the size files are bind-mounted
# over in a private mount namespace, seen by this command alone. Needs root.
#
#   tools/cache-sizes.sh L2 L3 -- COMMAND...
#   tools/cache-sizes.sh 2048K 491520K -- cargo test --release --test serial memory_plan
#
# L2 is per core; L3 is the whole shared cache (the kernel's own notation,
# e.g. 1024K or 32768K).
set -euo pipefail
if [ $# -lt 4 ] || [ "$3" != "--" ]; then
    echo "usage: $0 L2 L3 -- COMMAND..." >&2
    exit 2
fi
l2=$1 l3=$2
shift 3
if [ "${SQUADLAB_IN_CACHE_NS:-}" != 1 ]; then
    exec env SQUADLAB_IN_CACHE_NS=1 unshare --mount --propagation private "$0" "$l2" "$l3" -- "$@"
fi
fake=$(mktemp -d)
echo "$l2" >"$fake/l2"
echo "$l3" >"$fake/l3"
for index in /sys/devices/system/cpu/cpu[0-9]*/cache/index[0-9]*; do
    case "$(cat "$index/level")" in
        2) mount --bind "$fake/l2" "$index/size" ;;
        3) mount --bind "$fake/l3" "$index/size" ;;
    esac
done
echo "cache-sizes: L2 $(cat /sys/devices/system/cpu/cpu0/cache/index2/size)," \
    "L3 $(cat /sys/devices/system/cpu/cpu0/cache/index3/size 2>/dev/null || echo none)" >&2
unset SQUADLAB_IN_CACHE_NS
exec "$@"
