#!/usr/bin/env bash
# A separate environment with Topaz (topaz-em, its pretrained resnet16 picker inside the wheel) for
# benchmarks/bench_cryoem.py --topaz and benchmarks/bench_topaz_general.py: never a deepscope dependency.
#
#   bash benchmarks/make_topaz_env.sh /tmp/topaz_venv    # then --topaz /tmp/topaz_venv/bin/topaz
#
# It reuses this machine's CPU torch (--system-site-packages, pinned by constraints-cpu.txt). The
# registry's torchvision wheels are built for CUDA torch and fail to load beside the CPU build; Topaz
# imports torchvision only for training's augmentation, so a stand-in that raises if called replaces
# it (`topaz extract` and `topaz preprocess` never call it).
set -euo pipefail
venv=${1:?usage: make_topaz_env.sh VENV_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
python -m venv --system-site-packages "$venv"
"$venv/bin/pip" install -q topaz-em -c "$root/constraints-cpu.txt"
"$venv/bin/pip" uninstall -q -y torchvision
site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
mkdir -p "$site/torchvision/transforms"
printf '"""Stand-in: topaz extract and preprocess never call torchvision (make_topaz_env.sh)."""\n' \
    > "$site/torchvision/__init__.py"
printf 'from . import functional  # noqa: F401\n' > "$site/torchvision/transforms/__init__.py"
cat > "$site/torchvision/transforms/functional.py" <<'PY'
def _missing(*args, **kwargs):
    raise RuntimeError("torchvision is not installed in this Topaz benchmark environment (make_topaz_env.sh)")


rotate = hflip = vflip = _missing
PY
"$venv/bin/topaz" extract --help > /dev/null
echo "$venv/bin/topaz: $("$venv/bin/python" -c 'import topaz; print("topaz", topaz.__version__)')"
