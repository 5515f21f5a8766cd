#!/usr/bin/env bash
# Robustness: every route on the same Fashion-MNIST questions under each corruption at severities 1..5 (and clean),
# in three processes (each holds the routes' models: ~2.5 GB), then the merged file the report reads. The agent is
# left out: it runs the same tools as the converter at ~3x its cost per question (two or three LM turns).
#   bash research/tool-routes/robustness.sh [N_QUESTIONS]
set -eu
n=${1:-12}
export OMP_NUM_THREADS=1 PYTHONPATH=${PYTHONPATH:-src}
py=${PYTHON:-python}
routes=converter-labels,converter,llava,qformer
mkdir -p runs/tool-routes
k=0
for group in "none gaussian_noise" "blur jpeg" "brightness occlusion"; do
  k=$((k + 1))
  (for c in $group; do
    $py research/tool-routes/compare.py --routes $routes --sets fashion --n "$n" --corrupt "$c" \
      --out "runs/tool-routes/robust-$k.jsonl"
  done) > "runs/tool-routes/robust-$k.log" 2>&1 &
done
wait
cat runs/tool-routes/robust-[123].jsonl > runs/tool-routes/robust.jsonl
