#!/usr/bin/env bash
# Robustness: every route on the same Fashion-MNIST questions under each corruption at severities 1..5 (and clean),
# in three processes (each holds the routes' models: ~2.5 GB), then the merged file the report reads. The tool route
# is the converter with the labels tool (the one that knows Fashion-MNIST); the ImageNet-tagger routes are left out
# (their tagger does not read Fashion-MNIST at all), the agent also for its ~3x cost per question.
# A rerun skips the rows its output files already hold.
#   bash research/tool-routes/robustness.sh [N_QUESTIONS]
set -eu
n=${1:-12}
export OMP_NUM_THREADS=1 PYTHONPATH=${PYTHONPATH:-src}
py=${PYTHON:-python}
routes=converter-labels,llava,qformer
mkdir -p runs/tool-routes
k=0
for group in "none gaussian_noise" "blur jpeg" "brightness occlusion"; do
  k=$((k + 1))
  (for c in $group; do  # appends: rows already measured are skipped
    $py research/tool-routes/compare.py --routes $routes --sets fashion --n "$n" --corrupt "$c" \
      --out "runs/tool-routes/robust-$k.jsonl"
  done) > "runs/tool-routes/robust-$k.log" 2>&1 &
done
wait
cat runs/tool-routes/robust-[123].jsonl > runs/tool-routes/robust.jsonl
