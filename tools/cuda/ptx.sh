#!/usr/bin/env bash
# Compiles every crates/core/kernels/*.cu to PTX for compute_80 and
# compute_90 (the flags crates/core/build.rs uses), warnings as errors, and
# checks each PTX's ISA version is one the driver we ship for can JIT
# (PTX_MAX_VERSION, default 9.0: CUDA 13.0's).
#   tools/cuda/ptx.sh [OUT_DIR]     (default: a temporary directory)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
kernels=crates/core/kernels
max_version="${PTX_MAX_VERSION:-9.0}"
archs=(compute_80 compute_90)

if command -v nvcc >/dev/null 2>&1; then
    nvcc=nvcc
elif [[ -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/nvcc" ]]; then
    nvcc="$CUDA_HOME/bin/nvcc"
elif [[ -x /opt/cu13/nvidia/cu13/bin/nvcc ]]; then
    nvcc=/opt/cu13/nvidia/cu13/bin/nvcc
else
    echo "ptx: no nvcc on PATH, in \$CUDA_HOME/bin or /opt/cu13/nvidia/cu13/bin" >&2
    exit 1
fi
# ptxas beside nvcc assembles each PTX for its sm_XX too (nothing kept), so a
# PTX the driver's JIT would reject fails here.
ptxas="$(dirname "$(command -v "$nvcc")")/ptxas"
# As build.rs: the PyPI nvcc's nvcc.profile points at a targets/ folder the
# wheels lack; their headers sit beside bin/.
includes=(-I "$kernels")
toolkit_include="$(dirname "$(command -v "$nvcc")")/../include"
if [[ -f "$toolkit_include/cuda_runtime.h" ]]; then
    includes+=(-I "$(cd "$toolkit_include" && pwd)")
fi

if [[ $# -ge 1 ]]; then
    out="$1"
    mkdir -p "$out"
else
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi

shopt -s nullglob
sources=("$kernels"/*.cu)
if [[ ${#sources[@]} -eq 0 ]]; then
    echo "ptx: no .cu files in $kernels" >&2
    exit 1
fi

# "9.0" -> 9000 so that versions compare as integers.
version_key() {
    local major="${1%%.*}" minor="${1#*.}"
    [[ "$1" == *.* ]] || minor=0
    echo $((10#$major * 1000 + 10#$minor))
}
max_key="$(version_key "$max_version")"

echo "ptx: $("$nvcc" --version | tail -n 1)"
failed=0
ptxas_werror=--warning-as-error
for arch in "${archs[@]}"; do
    for src in "${sources[@]}"; do
        name="$(basename "$src" .cu)"
        ptx="$out/$name.$arch.ptx"
        if ! "$nvcc" -ptx -arch="$arch" -O3 -std=c++17 "${includes[@]}" \
            -Werror all-warnings "$src" -o "$ptx"; then
            echo "ptx: $src failed for $arch" >&2
            failed=1
            continue
        fi
        version="$(awk '$1 == ".version" { print $2; exit }' "$ptx")"
        target="$(awk '$1 == ".target" { print $2; exit }' "$ptx")"
        if [[ -z "$version" ]]; then
            echo "ptx: $ptx has no .version line" >&2
            failed=1
            continue
        fi
        if (( $(version_key "$version") > max_key )); then
            echo "ptx: $ptx is PTX ISA $version, above the maximum $max_version" >&2
            failed=1
        fi
        if [[ -x "$ptxas" ]] && ! "$ptxas" -arch="$target" "$ptxas_werror" "$ptx" -o /dev/null; then
            echo "ptx: ptxas rejects $ptx" >&2
            failed=1
        fi
        printf '%-28s %-10s %8d bytes  PTX %s  %s\n' "$name.cu" "$arch" \
            "$(wc -c <"$ptx")" "$version" "$target"
    done
done

if (( failed )); then
    echo "ptx: failed" >&2
    exit 1
fi
echo "ptx: ${#sources[@]} files compiled for ${archs[0]} and ${archs[1]}"
