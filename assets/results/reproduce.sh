#!/usr/bin/env bash
# Re-runs every measurement quoted in README.md and writes the JSON reports into this folder.
# Run from the repository root, with the project installed and ../shared/data present
# (the data sets described in the README); on 2 CPU cores it takes about 15 minutes.
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=assets/results

# m23init: condition number, signal propagation, initialization speed.
python -c "import m23init; print('condition number', round(m23init.condition_number(), 3))"
python -m m23init.bench --propagation
m23 bench init --sizes 1024 4096 8192 --repeats 3 --json "$OUT/bench_init.json"
m23 bench models --json "$OUT/models.json"
m23 bench engines --threads 1 2 --json "$OUT/bench_engines.json"
m23 bench --quick --json "$OUT/bench_pipeline.json"

# Frame interpolation: the shipped ONNX model against repeat, blend and DIS.
for set in middlebury_other ucf101_small davis; do
  m23 eval interp --data "$DATA/vfi/$set" --threads 1 --json "$OUT/interp_${set}_x2.json"
done
m23 eval interp --data "$DATA/vfi/vimeo_septuplet" --factor 4 --threads 1 --json "$OUT/interp_vimeo_septuplet_x4.json"

# Super-resolution: the shipped ONNX models against bicubic, bilinear and Lanczos.
for scale in 2 4; do
  for set in Set5 Set14; do
    m23 eval sr --data "$DATA/sr/$set/HR" --scale "$scale" --threads 1 --json "$OUT/sr_${set}_x${scale}.json"
  done
done

# Ablation: the shipped model untrained (its classical part: DIS at a finer level, bicubic
# warps, an even blend), and how much a better fusion mask could gain (bounds that use the truth).
for set in middlebury_other ucf101_small; do
  m23 eval interp --data "$DATA/vfi/$set" --model interp_occ4 --untrained --no-baselines \
    --json "$OUT/interp_${set}_x2_untrained.json"
  python assets/results/interp_headroom.py --data "$DATA/vfi/$set" --json "$OUT/headroom_${set}.json"
done

# Render and player figures (README: Render, bench and play).
for set in ucf101_small middlebury_other davis vimeo_septuplet; do
  python assets/results/interp_classical_variants.py --data "$DATA/vfi/$set" \
    --json "$OUT/classical_variants_${set}.json"
done
python assets/results/interp_profile.py --data "$DATA/vfi/davis" --json "$OUT/profile_davis.json"

TMP=$(mktemp -d)
python assets/results/make_player_clips.py "$DATA/video/bigbuckbunny_720p25_audio.mp4" "$TMP"
/usr/bin/time -f "wall %e s, max RSS %M KB" m23 render "$DATA/video/bigbuckbunny_720p25_audio.mp4" \
  "$TMP/bbb_2x_up2.mp4" --interpolate 2 --upscale 2 --no-progress
for r in 480 720; do
  QT_QPA_PLATFORM=offscreen m23 play "$TMP/bbb$r.mp4" --interpolate 2 --no-audio --frames 150 \
    --screenshot "$OUT/player_${r}p_2x.png"
done
