#!/usr/bin/env bash
# Robustness: every route on the same Fashion-MNIST questions under each corruption at severities 1..5, one process
# per corruption (they share nothing but the machine), then the figure.
#   bash research/tool-routes/robustness.sh [N_QUESTIONS]
set -eu
n=${1:-16}
export OMP_NUM_THREADS=1 PYTHONPATH=${PYTHONPATH:-src}
py=${PYTHON:-python}
mkdir -p runs/tool-routes
for c in none gaussian_noise blur jpeg brightness occlusion; do  # none: severity 0, the same questions clean
  $py research/tool-routes/compare.py --routes converter-labels,converter,agent,llava,qformer --sets fashion \
    --n "$n" --corrupt "$c" --out "runs/tool-routes/robust-$c.jsonl" > "runs/tool-routes/robust-$c.log" 2>&1 &
done
wait
cat runs/tool-routes/robust-*.jsonl > runs/tool-routes/robust.jsonl
