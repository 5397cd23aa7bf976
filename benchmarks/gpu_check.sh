#!/bin/bash
# One short GPU lease's measurements (GPU training speed, then StoryGAN at the official width), in the order of their value, each
# part time-boxed so that a lease of about 10 minutes returns every part it reached.
#
#   OUT=/tmp/out bash benchmarks/gpu_check.sh [SECONDS]      # from the repository root; default 540
#
# 1. ours on the GPU, every family at the official sizes: fp32, bf16, and runtime.compile=reduce-overhead
#    (torch.compile with CUDA graphs), the lever the first GPU run (benchmarks/README.md) points to;
# 2. StoryGAN on the shapes stories at the official CLEVR width (GF 192, DF 96) for what time is left,
#    stopped by SIGTERM (a graceful checkpoint), then scored by benchmarks/storygan_shapes.py.
# Results land in $OUT: ours.md / ours.json, storygan_eval.md, storygan_metrics.jsonl, progress.txt.
# The official codes are not run here: they live outside the repository (benchmarks/README.md says how
# they were run).
set -u
BUDGET=${1:-540}
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src:benchmarks
PY=${PYTHON:-python3}  # the GPU image's python3 holds PyTorch
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
log() { echo "[$(elapsed) s] $*" | tee -a "$OUT/progress.txt"; }

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  $PY -c "import torch; print(torch.__version__, torch.version.cuda, torch.backends.cudnn.version())"
} > "$OUT/env.txt" 2>&1
log "env: $(tr '\n' ' ' < "$OUT/env.txt")"

VARIANTS="runtime.channels_last=false;runtime.precision=bf16 runtime.channels_last=false;\
runtime.channels_last=false runtime.compile=reduce-overhead;\
runtime.precision=bf16 runtime.channels_last=false runtime.compile=reduce-overhead"
log "ours"
timeout $(( BUDGET / 2 )) $PY benchmarks/speed.py --in-process --workers 8 --steps 6 --warmup 3 \
  --precisions fp32 --variants "$VARIANTS" --json "$OUT/ours.json" runtime.device=cuda \
  --only stargan --only starganv2 --only biggan --only storygan --only wgan_gp_official_nets \
  > "$OUT/ours.md" 2> "$OUT/ours.err"
log "ours done: $(( $(wc -l < "$OUT/ours.md") - 2 )) rows"

LEFT=$(( BUDGET - $(elapsed) - 60 ))
if [ "$LEFT" -gt 60 ]; then
  log "storygan at the official width for $LEFT s"
  timeout -k 30 -s TERM "$LEFT" $PY -m ganforge train storygan/shapes name=wide out_dir=/tmp/gpu_check_runs \
    model.gf_dim=192 model.df_dim=96 runtime.device=cuda data.num_workers=8 train.steps=100000 \
    train.ckpt_every=1000 train.sample_every=1000 train.keep_last=100 train.log_every=100 > /tmp/gpu_check_train.log 2>&1
  cp /tmp/gpu_check_runs/wide/metrics.jsonl "$OUT/storygan_metrics.jsonl"
  timeout $(( BUDGET - $(elapsed) )) $PY benchmarks/storygan_shapes.py --run /tmp/gpu_check_runs/wide --n 200 \
    --device cuda > "$OUT/storygan_eval.md" 2>&1
fi
log "done"
