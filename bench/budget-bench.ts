/**
 * Timing of the byte-budget solver (src/plan/budget.ts) on synthetic candidate sets shaped like real
 * ones: N tensors × 19 candidates (float + 6 bit widths × 3 groups), several budgets.
 * `npm run bench:budget` (the unit test only asserts loosely).
 */
import { sizeRange, solveKnapsack, type KnapsackItem } from '../src/plan/knapsack.js';
import { Rng } from '../src/rng.js';

function items(n: number, rng: Rng): KnapsackItem[] {
  const out: KnapsackItem[] = [];
  for (let i = 0; i < n; i++) {
    const params = 32 * Math.floor(1 + rng.uniform() * 300_000);
    const weight = 0.5 + 3 * rng.uniform();
    const bytes = [2 * params];
    const damage = [0];
    for (const b of [2, 3, 4, 5, 6, 8]) {
      for (const g of [32, 64, 128]) {
        bytes.push((params * b) / 8 + (params / g) * 4);
        damage.push(weight * 4 ** -b * (1 + g / 128) * (0.8 + 0.4 * rng.uniform()));
      }
    }
    out.push({ bytes, damage });
  }
  return out;
}

for (const n of [1_000, 5_000, 20_000, 50_000]) {
  const set = items(n, new Rng(n));
  const { min, max } = sizeRange(set);
  const rows: string[] = [];
  for (const f of [0.02, 0.15, 0.3, 0.6]) {
    const budget = Math.floor(min + (max - min) * f);
    const t0 = performance.now();
    const s = solveKnapsack(set, budget);
    const ms = performance.now() - t0;
    rows.push(`budget ${(f * 100).toFixed(0).padStart(2)}%: ${ms.toFixed(0).padStart(5)} ms, ${((100 * s.bytes) / budget).toFixed(4)}% of budget`);
  }
  console.log(`${String(n).padStart(6)} tensors × 19 candidates\n  ${rows.join('\n  ')}`);
}
