#!/usr/bin/env bash
# Run ckit's default validation with Keras 3 on JAX and on PyTorch, one after the other, on a CUDA machine
# that has JAX and PyTorch but neither TensorFlow nor Keras.  Made to fit one 5-minute device command.
#
# Without TensorFlow the sources are the tutorial model as tf_keras trained and saved it in the four Keras 2
# formats (fixtures/seed/tf_keras, committed) with the logits tf_keras recorded on digits28 on a CPU
# (fixtures/validation/), plus .weights.h5 and .keras saved here by Keras 3 from the same weights.  Each is
# converted with ckit into every format ckit writes without TensorFlow, reloaded with Keras 3's own loaders
# on the GPU, and compared with the recorded baseline: same accuracy, every logit within 1e-4.  Rows that
# need TensorFlow are skipped with the reason; a backend whose package is absent is skipped and logged.
# Exit status: 0 when every backend that ran passed.
#
# The machine cannot download: bring ckit's dependencies as wheels in .whl/ (git-ignored; pass it in the
# device call's `carry`), fetched beforehand from the repository root on a machine that reaches the package
# registry (Python 3.12, x86-64 CUDA image):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#     keras==3.15.1 namex optree h5py ml_dtypes crc32c cramjam click protobuf tensorboard safetensors pyyaml
#
# (namex and optree are Keras 3's own needs that the CUDA image lacks; absl-py, rich and packaging are there.)
#
# Usage:  bash benchmarks/validate_gpu.sh [--device gpu|cpu|auto] [--backend all|jax|torch] [OUTDIR]
#   defaults: --device gpu --backend all, OUTDIR = $OUT when set, else ./out/validate-gpu
#   PYTHON=...       interpreter to use (default python3, the one that holds JAX and PyTorch on the CUDA image)
#   CKIT_WHEELS=0    do not install .whl/ (a machine that has the dependencies already, e.g. a dev venv)
# Writes into OUTDIR (8 files at most, as the device tool returns them): device.txt (what the machine offers),
# report-BACKEND.json and matrix-BACKEND.txt per backend, timings.txt (one line per backend: exit status,
# wall seconds, the worker's peak RSS) and validate.log (progress and framework messages).
set -euo pipefail

device=gpu
backend=all
outdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --backend) backend="$2"; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    -*) echo "validate_gpu.sh: unknown option $1 (expected --device, --backend or OUTDIR)" >&2; exit 2 ;;
    *) outdir="$1"; shift ;;
  esac
done
case "$backend" in
  all) backends="jax torch" ;;
  jax|torch) backends="$backend" ;;
  *) echo "validate_gpu.sh: --backend $backend is not one of all, jax, torch" >&2; exit 2 ;;
esac
outdir="${outdir:-${OUT:-out/validate-gpu}}"
python="${PYTHON:-python3}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"

if [ "${CKIT_WHEELS:-1}" != 0 ]; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "validate_gpu.sh: no wheels in .whl/; fetch them with the pip download command in this script's header" >&2
    exit 2
  fi
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1

# What this machine offers: the point is CUDA builds of JAX and PyTorch, and no TensorFlow.
{
  (command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader) \
    || echo "nvidia-smi: absent"
  "$python" - <<'EOF'
import importlib.metadata, importlib.util, platform
print("python", platform.python_version(), platform.machine())
for name in ("tensorflow", "tf_keras", "keras", "jax", "jaxlib", "torch"):
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = "installed" if importlib.util.find_spec(name) else "absent"
    print(f"{name}: {version}")
try:
    import jax
    print("jax devices:", jax.devices())
except Exception as exc:  # the file says why rather than stopping the run
    print("jax devices: unavailable:", exc)
try:
    import torch
    print("torch cuda:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as exc:
    print("torch: unavailable:", exc)
EOF
} > "$outdir/device.txt" 2>&1
cat "$outdir/device.txt" >&2

: > "$outdir/timings.txt"
: > "$outdir/validate.log"
overall=0
for b in $backends; do
  if ! "$python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$b') is None)"; then
    echo "$b: skipped (the $b package is not installed here)" | tee -a "$outdir/timings.txt" >&2
    continue
  fi
  start=$(date +%s%N)
  set +e
  "$python" - "$device" "$b" "$outdir" <<'EOF' 2>>"$outdir/validate.log" >"$outdir/matrix-$b.txt"
import resource, sys
from converters.validate import main_validate

device, backend, outdir = sys.argv[1:4]
code = main_validate(device=device, backend=backend, json_path=f"{outdir}/report-{backend}.json")
# The worker is this process's child: its peak resident set is the validation's.
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"validate_gpu.sh: worker peak RSS {peak:.0f} MB", file=sys.stderr)
with open(f"{outdir}/peak-{backend}", "w") as handle:
    handle.write(f"{peak:.0f}")
sys.exit(code)
EOF
  status=$?
  set -e
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  seconds="$((ms / 1000)).$(( (ms % 1000) / 100 ))"
  peak=$(cat "$outdir/peak-$b" 2>/dev/null || echo "?"); rm -f "$outdir/peak-$b"
  echo "$b: exit $status, ${seconds} s, worker peak RSS ${peak} MB (--device $device)" | tee -a "$outdir/timings.txt" >&2
  tail -n 3 "$outdir/matrix-$b.txt" >&2
  [ "$status" = 0 ] || overall=1
done
exit "$overall"
