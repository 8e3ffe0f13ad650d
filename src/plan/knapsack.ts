/**
 * The byte-budget solver: one candidate per item, total bytes ≤ budget, total damage minimal
 * (a multiple-choice knapsack).
 *
 * 1. Each item's candidates are reduced to their lower convex hull in (bytes, damage); moving one
 *    hull vertex to the right is a "step" that buys damage at a price in bytes.
 * 2. Lagrangian relaxation: for a price λ every item takes the hull vertex minimising
 *    damage + λ·bytes; lowering λ takes the steps in decreasing order of damage saved per byte. So
 *    one sort of all steps walks λ down; a step that no longer fits blocks its item (later steps of
 *    that item build on it) and the walk continues with the others (greedy fill).
 * 3. The other rounding of the first blocked steps is tried (take the step, give back the cheapest
 *    taken ones); the bytes left over go to the single best-fitting change among all candidates
 *    (hull or not), repeatedly.
 * 4. Small problems (≤ PAIR_SEARCH_LIMIT candidates) add a pairwise-exchange pass and an exact
 *    branch and bound pruned by the LP (hull) bound: their answer is the optimum.
 *
 * Within the walk the result is optimal for the budget it uses (a Lagrangian solution); the fill
 * closes most of the rest. O(S log S) for S hull steps: 20,000 tensors take well under a second.
 */

export interface KnapsackItem {
  /** Candidate sizes; any order. */
  bytes: ArrayLike<number>;
  /** Candidate damages, same order. */
  damage: ArrayLike<number>;
}

export interface KnapsackSolution {
  /** Chosen candidate index per item. */
  choice: Int32Array;
  bytes: number;
  damage: number;
}

/** The budget cannot be met: below the smallest or above the largest possible total. */
export class BudgetError extends Error {
  constructor(
    message: string,
    readonly minBytes: number,
    readonly maxBytes: number,
  ) {
    super(message);
    this.name = 'BudgetError';
  }
}

/** Smallest and largest possible totals. */
export function sizeRange(items: KnapsackItem[]): { min: number; max: number } {
  let min = 0;
  let max = 0;
  for (const it of items) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let j = 0; j < it.bytes.length; j++) {
      lo = Math.min(lo, it.bytes[j]!);
      hi = Math.max(hi, it.bytes[j]!);
    }
    min += lo;
    max += hi;
  }
  return { min, max };
}

/** Lower convex hull of one item's candidates: indices by increasing bytes, strictly decreasing damage. */
export function lowerHull(it: KnapsackItem): number[] {
  const n = it.bytes.length;
  const idx = Array.from({ length: n }, (_, j) => j);
  idx.sort((a, b) => it.bytes[a]! - it.bytes[b]! || it.damage[a]! - it.damage[b]! || a - b);
  const hull: number[] = [];
  for (const p of idx) {
    // Pareto: a candidate is only worth more bytes if it has strictly less damage.
    if (hull.length > 0 && it.damage[p]! >= it.damage[hull[hull.length - 1]!]!) continue;
    while (hull.length >= 2) {
      const a = hull[hull.length - 2]!;
      const b = hull[hull.length - 1]!;
      // Drop b unless it lies strictly below the segment a→p.
      const lhs = (it.damage[b]! - it.damage[a]!) * (it.bytes[p]! - it.bytes[a]!);
      const rhs = (it.damage[p]! - it.damage[a]!) * (it.bytes[b]! - it.bytes[a]!);
      if (lhs >= rhs) hull.pop();
      else break;
    }
    hull.push(p);
  }
  return hull;
}

/** Small problems (this many candidates or fewer in all) also get the pairwise-exchange pass. */
const PAIR_SEARCH_LIMIT = 1000;
/** Blocked steps whose other rounding (take it, give back cheaper steps) is tried. */
const ROUNDING_TRIES = 8;

export function solveKnapsack(items: KnapsackItem[], budget: number): KnapsackSolution {
  const { min, max } = sizeRange(items);
  if (!(budget >= min)) {
    throw new BudgetError(`budget ${fmt(budget)} bytes is below the smallest possible size ${fmt(min)} bytes`, min, max);
  }
  if (budget > max) {
    throw new BudgetError(`budget ${fmt(budget)} bytes is above the largest possible size ${fmt(max)} bytes (everything in float)`, min, max);
  }
  const hulls = items.map(lowerHull);
  const pos = new Int32Array(items.length); // position on the item's hull
  let used = 0;
  let total = 0;
  for (let i = 0; i < items.length; i++) used += items[i]!.bytes[hulls[i]![0]!]!;

  // All hull steps, sorted by damage saved per byte (ties: item, then step order).
  for (const h of hulls) total += h.length - 1;
  const stepItem = new Int32Array(total);
  const slope = new Float64Array(total);
  let s = 0;
  for (let i = 0; i < items.length; i++) {
    const h = hulls[i]!;
    const it = items[i]!;
    for (let k = 1; k < h.length; k++) {
      stepItem[s] = i;
      slope[s] = (it.damage[h[k - 1]!]! - it.damage[h[k]!]!) / (it.bytes[h[k]!]! - it.bytes[h[k - 1]!]!);
      s++;
    }
  }
  const order = new Uint32Array(total).map((_, j) => j);
  order.sort((a, b) => slope[b]! - slope[a]! || stepItem[a]! - stepItem[b]! || a - b);

  const blocked = new Uint8Array(items.length);
  const tries = items.length <= 2000 ? ROUNDING_TRIES : 2;
  const taken: number[] = [];
  const blockers: number[] = []; // steps that did not fit, first ones first (the LP's fractional item)
  for (let o = 0; o < total; o++) {
    const st = order[o]!;
    const i = stepItem[st]!;
    if (blocked[i]) continue;
    const delta = stepBytes(items[i]!, hulls[i]!, pos[i]!);
    if (used + delta <= budget) {
      used += delta;
      pos[i]!++;
      taken.push(st);
    } else {
      blocked[i] = 1;
      if (blockers.length < tries) blockers.push(st);
    }
  }
  const toChoice = (p: Int32Array): Int32Array => Int32Array.from(hulls, (h, i) => h[p[i]!]!);
  let choice = toChoice(pos);
  used = fillSingles(items, choice, budget, used);
  let damage = totalDamage(items, choice);

  // The other rounding of a blocked step: take it, and give back the cheapest taken steps (lowest
  // damage per byte first, always an item's latest step) until the budget holds again.
  for (const st of blockers) {
    const i = stepItem[st]!;
    const p = Int32Array.from(pos);
    let u = used0(items, hulls, p) + stepBytes(items[i]!, hulls[i]!, p[i]!);
    p[i]!++;
    for (let t = taken.length - 1; t >= 0 && u > budget; t--) {
      const j = stepItem[taken[t]!]!;
      if (j === i) continue;
      p[j]!--;
      u -= stepBytes(items[j]!, hulls[j]!, p[j]!);
    }
    if (u > budget) continue;
    const c = toChoice(p);
    u = fillSingles(items, c, budget, u);
    const d = totalDamage(items, c);
    if (d < damage) {
      damage = d;
      choice = c;
      used = u;
    }
  }
  const candidates = items.reduce((a, it) => a + it.bytes.length, 0);
  if (candidates <= PAIR_SEARCH_LIMIT) {
    used = exchangePairs(items, choice, budget, used);
    const exact = branchAndBound(items, hulls, budget, choice);
    if (exact) {
      choice = exact;
      used = totalBytes(items, choice);
    }
  }

  return { choice, bytes: used, damage: totalDamage(items, choice) };
}

/** Node limit of the exact search; beyond it the heuristic answer stands. */
const BB_NODE_LIMIT = 200_000;

/**
 * Small problems: depth-first branch and bound over each item's Pareto candidates, pruned with the
 * LP (convex-hull) bound of the remaining items. Returns a strictly better choice than
 * `incumbent`, or null when none exists or the node limit is hit first.
 */
function branchAndBound(items: KnapsackItem[], hulls: number[][], budget: number, incumbent: Int32Array): Int32Array | null {
  const n = items.length;
  const pareto = items.map((it) => {
    // Fewest damage first: the first leaf reached is a good solution.
    const idx = Array.from({ length: it.bytes.length }, (_, j) => j).sort((a, b) => it.bytes[a]! - it.bytes[b]! || it.damage[a]! - it.damage[b]! || a - b);
    const front: number[] = [];
    for (const j of idx) if (front.length === 0 || it.damage[j]! < it.damage[front[front.length - 1]!]!) front.push(j);
    return front.reverse();
  });
  // Hull steps of all items, by decreasing slope, for the bound.
  const steps: { item: number; bytes: number; saved: number; slope: number }[] = [];
  hulls.forEach((h, i) => {
    const it = items[i]!;
    for (let k = 1; k < h.length; k++) {
      const bytes = it.bytes[h[k]!]! - it.bytes[h[k - 1]!]!;
      const saved = it.damage[h[k - 1]!]! - it.damage[h[k]!]!;
      steps.push({ item: i, bytes, saved, slope: saved / bytes });
    }
  });
  steps.sort((a, b) => b.slope - a.slope || a.item - b.item);
  const minBytes = items.map((it) => Math.min(...Array.from(it.bytes)));
  const hullDamage = hulls.map((h, i) => items[i]!.damage[h[0]!]!);
  const suffixMin = new Float64Array(n + 1);
  const suffixDamage = new Float64Array(n + 1);
  for (let i = n - 1; i >= 0; i--) {
    suffixMin[i] = suffixMin[i + 1]! + minBytes[i]!;
    suffixDamage[i] = suffixDamage[i + 1]! + hullDamage[i]!;
  }
  // LP lower bound on the damage of items ≥ k given `room` bytes beyond their minimum.
  const bound = (k: number, room: number): number => {
    let d = suffixDamage[k]!;
    for (const s of steps) {
      if (s.item < k) continue;
      if (s.bytes <= room) {
        room -= s.bytes;
        d -= s.saved;
      } else {
        d -= s.slope * room;
        break;
      }
    }
    return d;
  };
  let best = totalDamage(items, incumbent);
  const tol = 1e-12 * Math.max(best, 1e-300);
  const cur = new Int32Array(n);
  let found: Int32Array | null = null;
  let nodes = 0;
  const dfs = (k: number, bytes: number, damage: number): boolean => {
    if (++nodes > BB_NODE_LIMIT) return false;
    if (k === n) {
      if (damage < best - tol) {
        best = damage;
        found = Int32Array.from(cur);
      }
      return true;
    }
    const it = items[k]!;
    for (const j of pareto[k]!) {
      const b = bytes + it.bytes[j]!;
      const room = budget - b - suffixMin[k + 1]!;
      if (room < 0) continue;
      const d = damage + it.damage[j]!;
      if (d + bound(k + 1, room) >= best - tol) continue;
      cur[k] = j;
      if (!dfs(k + 1, b, d)) return false;
    }
    return true;
  };
  const complete = dfs(0, 0, 0);
  return complete || found ? found : null;
}

/** Bytes of moving one item from hull vertex k to k + 1. */
function stepBytes(it: KnapsackItem, hull: number[], k: number): number {
  return it.bytes[hull[k + 1]!]! - it.bytes[hull[k]!]!;
}

function used0(items: KnapsackItem[], hulls: number[][], pos: Int32Array): number {
  let u = 0;
  for (let i = 0; i < items.length; i++) u += items[i]!.bytes[hulls[i]![pos[i]!]!]!;
  return u;
}

function totalBytes(items: KnapsackItem[], choice: Int32Array): number {
  let b = 0;
  for (let i = 0; i < items.length; i++) b += items[i]!.bytes[choice[i]!]!;
  return b;
}

function totalDamage(items: KnapsackItem[], choice: Int32Array): number {
  let d = 0;
  for (let i = 0; i < items.length; i++) d += items[i]!.damage[choice[i]!]!;
  return d;
}

/** Repeatedly apply the single change with the largest damage reduction that still fits. */
function fillSingles(items: KnapsackItem[], choice: Int32Array, budget: number, used: number): number {
  for (let iter = 0; iter < 256; iter++) {
    let bestGain = 0;
    let bestI = -1;
    let bestJ = -1;
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const c = choice[i]!;
      const room = budget - used + it.bytes[c]!;
      for (let j = 0; j < it.bytes.length; j++) {
        const gain = it.damage[c]! - it.damage[j]!;
        if (gain > bestGain && it.bytes[j]! <= room) {
          bestGain = gain;
          bestI = i;
          bestJ = j;
        }
      }
    }
    if (bestI < 0) return used;
    used += items[bestI]!.bytes[bestJ]! - items[bestI]!.bytes[choice[bestI]!]!;
    choice[bestI] = bestJ;
  }
  return used;
}

/** Small problems: apply the best change of two items at once (e.g. one down, one up) while one helps. */
function exchangePairs(items: KnapsackItem[], choice: Int32Array, budget: number, used: number): number {
  for (let iter = 0; iter < 1000; iter++) {
    let bestGain = 1e-300;
    let best: [number, number, number, number] | null = null;
    for (let i = 0; i < items.length; i++) {
      const a = items[i]!;
      const ci = choice[i]!;
      for (let ji = 0; ji < a.bytes.length; ji++) {
        if (ji === ci) continue;
        const gainI = a.damage[ci]! - a.damage[ji]!;
        const usedI = used - a.bytes[ci]! + a.bytes[ji]!;
        for (let k = i + 1; k < items.length; k++) {
          const b = items[k]!;
          const ck = choice[k]!;
          const room = budget - usedI + b.bytes[ck]!;
          for (let jk = 0; jk < b.bytes.length; jk++) {
            if (jk === ck || b.bytes[jk]! > room) continue;
            const gain = gainI + b.damage[ck]! - b.damage[jk]!;
            if (gain > bestGain) {
              bestGain = gain;
              best = [i, ji, k, jk];
            }
          }
        }
      }
    }
    if (!best) break;
    const [i, ji, k, jk] = best;
    used += items[i]!.bytes[ji]! - items[i]!.bytes[choice[i]!]! + items[k]!.bytes[jk]! - items[k]!.bytes[choice[k]!]!;
    choice[i] = ji;
    choice[k] = jk;
    used = fillSingles(items, choice, budget, used);
  }
  return used;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
