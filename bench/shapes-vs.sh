#!/usr/bin/env bash
# Qwen3-8B's 4096×4096 and 4096×12288 shapes, all four metrics: an earlier swan checkout against
# this one, alternately (twice each), then the Python baseline, on the same machine. Both checkouts
# must be built (npm ci && npm run build). Writes the children's JSON and logs to OUT.
#   bash bench/shapes-vs.sh OLD_CHECKOUT [OUT]       (bench venv: SWAN_BENCH_VENV, else .venv-bench)
set -euo pipefail
old=$(cd "$1" && pwd); here=$(cd "$(dirname "$0")/.." && pwd); out=${2:-shapes-vs}; mkdir -p "$out"
py=${SWAN_BENCH_VENV:-$here/.venv-bench}/bin/python
S='{"shapes":[{"label":"4096×4096","tensors":"q_proj, o_proj","count":72,"rows":4096,"cols":4096,"repeats":3},{"label":"4096×12288","tensors":"down_proj","count":36,"rows":4096,"cols":12288,"repeats":3}],"backend":"auto","threads":2}'
B='{"seed":20261126,"shapes":[{"label":"4096×4096","rows":4096,"cols":4096,"measure_rows":4096,"repeats":3},{"label":"4096×12288","rows":4096,"cols":12288,"measure_rows":4096,"repeats":3}]}'
uptime > "$out/load-start.txt"
for round in 1 2; do
  (cd "$old" && node dist/bench/bench.js --child shapes "$S" > "$out/old-$round.json" 2> "$out/old-$round.log")
  (cd "$here" && node dist/bench/bench.js --child shapes "$S" > "$out/new-$round.json" 2> "$out/new-$round.log")
done
(cd "$here" && PYTHONUNBUFFERED=1 "$py" bench/py/baseline.py "$B" > "$out/torch.json" 2> "$out/torch.log")
uptime > "$out/load-end.txt"
for f in old-1 new-1 old-2 new-2; do
  node -e "const o=JSON.parse(require('fs').readFileSync(process.argv[1],'utf8').trim().split('\n').pop()); console.log(process.argv[2], o.results.map((r) => r.label + ' ' + r.total.toFixed(3) + ' s').join(', '))" "$out/$f.json" "$f"
done
grep '"shape"' "$out/torch.json" | node -e "let s='';process.stdin.on('data',(d)=>(s+=d)).on('end',()=>{for(const l of s.trim().split('\n')){const o=JSON.parse(l);console.log('baseline', o.label, o.total.toFixed(3), 's')}})"
