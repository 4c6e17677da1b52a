#!/usr/bin/env bash
# Run ckit's default validation with Keras 3 on the JAX backend on a CUDA machine that has JAX but no TensorFlow.
#
# Trains the tutorial model on digits28 with Keras 3 (jax), saves .weights.h5 and .keras, converts each with
# ckit into every format ckit writes without TensorFlow, reloads what Keras 3 can load, compares logits and
# accuracy with the baseline, and reports the TensorFlow-only rows as skipped.  Exit status: the validator's.
#
# The machine cannot download: bring ckit's dependencies as wheels in .whl/ (git-ignored), fetched beforehand
# from the repository root on a machine that reaches the package registry (Python 3.12, x86-64 CUDA image):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#     keras==3.15.1 namex optree h5py ml_dtypes crc32c cramjam click protobuf tensorboard safetensors
#
# (namex and optree are Keras 3's own needs that the CUDA image lacks; absl-py, rich and packaging are there.)
#
# Usage:  bash benchmarks/validate_gpu.sh [--device gpu|cpu|auto] [--backend jax|torch] [OUTDIR]
#   defaults: --device gpu --backend jax, OUTDIR = $OUT when set, else ./out/validate-gpu
#   PYTHON=...       interpreter to use (default python3, the one that holds JAX on the CUDA image)
#   CKIT_WHEELS=0    do not install .whl/ (a machine that has the dependencies already, e.g. a dev venv)
# Writes OUTDIR/report.json, OUTDIR/matrix.txt, OUTDIR/validate.log and TensorBoard scalars in OUTDIR/tb.
set -euo pipefail

device=gpu
backend=jax
outdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --backend) backend="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "validate_gpu.sh: unknown option $1 (expected --device, --backend or OUTDIR)" >&2; exit 2 ;;
    *) outdir="$1"; shift ;;
  esac
done
outdir="${outdir:-${OUT:-out/validate-gpu}}"
python="${PYTHON:-python3}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p "$outdir"

if [ "${CKIT_WHEELS:-1}" != 0 ]; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "validate_gpu.sh: no wheels in .whl/; fetch them with the pip download command in this script's header" >&2
    exit 2
  fi
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1

# What this machine offers, for the log: the point is a CUDA JAX and no TensorFlow.
"$python" - <<'EOF' 2>&1 | tee "$outdir/validate.log"
import importlib.util, platform
print("python", platform.python_version())
for name in ("tensorflow", "tf_keras", "jax", "torch", "keras"):
    print(f"{name}: {'installed' if importlib.util.find_spec(name) else 'absent'}")
try:
    import jax
    print("jax devices:", jax.devices())
except Exception as exc:  # the log says why rather than stopping the run
    print("jax devices: unavailable:", exc)
EOF

start=$(date +%s)
set +e
"$python" - "$device" "$backend" "$outdir" <<'EOF' 2>>"$outdir/validate.log" | tee "$outdir/matrix.txt"
import sys
from converters.validate import main_validate

device, backend, outdir = sys.argv[1:4]
sys.exit(main_validate(device=device, backend=backend, json_path=f"{outdir}/report.json", logdir=f"{outdir}/tb"))
EOF
status=${PIPESTATUS[0]}
set -e
echo "validate_gpu.sh: exit $status after $(( $(date +%s) - start )) s (--backend $backend --device $device)" | tee -a "$outdir/validate.log"
tail -n 3 "$outdir/validate.log" >&2
exit "$status"
