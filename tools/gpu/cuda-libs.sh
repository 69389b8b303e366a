# Sourced by the GPU scripts: puts the CUDA libraries that PyTorch's pip
# packages carry (cuBLAS, cuRAND, NVRTC…) on LD_LIBRARY_PATH for a squadlab
# binary built with `--features cuda`, and unpacks .device/squadlab.gz (device
# transfers are size-limited, so the binary travels gzipped).
libs=$(python3 - <<'PY'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for f in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(f))
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH="$libs:/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
if [ -f .device/squadlab.gz ]; then gunzip -f .device/squadlab.gz && chmod +x .device/squadlab; fi
