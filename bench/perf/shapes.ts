/**
 * What the benchmark measures on: the Qwen3-8B tensor shapes (and their --quick scale-down), the
 * small checkpoint of --quick, and the seeded heavy-tailed matrices generated for each shape.
 */
import { sketchRoute } from '../../src/metrics/svd.js';
import { Rng } from '../../src/rng.js';
import type { SynthShape } from '../../src/synth/checkpoint.js';

export const SEED = 20261126;
/** Tail weight of the generated matrices: excess kurtosis ≈ 3e^{4a²} − 3 ≈ 1.3, like Qwen3-8B's mean. */
export const TAIL = 0.3;
/** Sketch width and power iterations of swan's randomized SVD. */
export const RANK = 256;
const NITER = 2;

export interface ShapeSpec {
  label: string;
  /** Which Qwen3-8B tensors have it, and how many (36 layers, untied embedding and head). */
  tensors: string;
  count: number;
  rows: number;
  cols: number;
  /** Rows actually generated and measured (a row slice of the embedding when memory is short). */
  measureRows?: number;
  repeats: number;
}

export const FULL_SHAPES: ShapeSpec[] = [
  { label: '4096×4096', tensors: 'q_proj, o_proj', count: 72, rows: 4096, cols: 4096, repeats: 3 },
  { label: '1024×4096', tensors: 'k_proj, v_proj', count: 72, rows: 1024, cols: 4096, repeats: 3 },
  { label: '12288×4096', tensors: 'gate_proj, up_proj', count: 72, rows: 12288, cols: 4096, repeats: 3 },
  { label: '4096×12288', tensors: 'down_proj', count: 36, rows: 4096, cols: 12288, repeats: 3 },
  { label: '151936×4096', tensors: 'embed_tokens, lm_head', count: 2, rows: 151936, cols: 4096, repeats: 1 },
];

/** --quick: every dimension ÷4 (the embedding's rows ÷18), one repeat. */
export const QUICK_SHAPES: ShapeSpec[] = [
  { label: '1024×1024', tensors: 'q_proj, o_proj (÷4)', count: 72, rows: 1024, cols: 1024, repeats: 1 },
  { label: '256×1024', tensors: 'k_proj, v_proj (÷4)', count: 72, rows: 256, cols: 1024, repeats: 1 },
  { label: '3072×1024', tensors: 'gate_proj, up_proj (÷4)', count: 72, rows: 3072, cols: 1024, repeats: 1 },
  { label: '1024×3072', tensors: 'down_proj (÷4)', count: 36, rows: 1024, cols: 3072, repeats: 1 },
  { label: '8192×1024', tensors: 'embed_tokens, lm_head (÷18, ÷4)', count: 2, rows: 8192, cols: 1024, repeats: 1 },
];

/** Qwen3-8B parameters outside the matrices above: 36 × 2 + 1 RMSNorm gains of 4096, 36 × 2 q/k norms of 128. */
export const QWEN3_8B_VECTOR_PARAMS = (36 * 2 + 1) * 4096 + 36 * 2 * 128;

/** A small qwen3 for --quick whose square tensors still take the randomized-SVD path (min dim > 512). */
export const QUICK_MODEL: SynthShape = {
  modelType: 'qwen3', hidden: 640, intermediate: 1280, layers: 2, heads: 5, kvHeads: 1, headDim: 128, vocab: 2048, tied: true,
};

/**
 * Flops of the randomized SVD as swan runs it (q = 256, niter = 2; src/metrics/svd.ts sketchRoute
 * picks the route). A GEMM counts 2·m·n·k, a float32 Gram half that, a Cholesky-QR pass 2·rows·q²
 * (its Gram and the triangular solve Y·R⁻¹).
 */
export function rsvdFlops(m: number, n: number): number {
  const q = Math.min(RANK, m, n);
  if (Math.min(m, n) <= 2 * RANK) return 0; // exact path: a float64 Gram, not GEMM
  const pass = (rows: number): number => 2 * rows * q * q;
  if (sketchRoute(m, n, q, NITER) === 'direct') {
    const big = 2 * m * n * q * (2 * NITER + 2); // WᵀR, niter × (W·Q, Wᵀ·Q), B = W·Q
    // n-panels 1 + (niter−1) + 2 passes, m-panels niter; the final BᵀB a full GEMM.
    return big + pass(n) * (NITER + 2) + pass(m) * NITER + 2 * m * q * q;
  }
  const s = Math.min(m, n), l = Math.max(m, n);
  const gram = s * s * l; // WᵀW or W·Wᵀ
  const products = 2 * s * s * q * (NITER + 1); // niter × G·Q, then the final G·Q (or Y = H·P)
  return n <= m
    ? gram + 2 * m * n * q + products + pass(s) * (NITER + 2) + 2 * s * q * q // + WᵀR, Qᵀ·(G·Q)
    : gram + products + pass(s) * NITER + 2 * s * q * q + s * q * q + 2 * s * q * q; // + Pᵀ·Y, Y·C⁻¹, BᵀB
}

/**
 * Copies of `specs` whose shapes that do not fit in `availableBytes` get a row slice (measureRows):
 * swan holds W twice (JS + backend memory) plus panels; the reference's output-noise step holds W,
 * E and W+E at once. Returns the copies and a note per sliced shape.
 */
export function fitToMemory(specs: ShapeSpec[], availableBytes: number): { shapes: ShapeSpec[]; notes: string[] } {
  const shapes = specs.map((s) => ({ ...s }));
  const notes: string[] = [];
  for (const s of shapes) {
    const bytes = s.rows * s.cols * 4;
    const need = bytes * 4.5 + 2 ** 30;
    if (need > availableBytes) {
      s.measureRows = Math.max(8, Math.floor((s.rows * (availableBytes - 2 ** 30)) / 4.5 / bytes / 8) * 8);
      notes.push(`${s.label}: ${(availableBytes / 2 ** 30).toFixed(1)} GiB available, measuring ${s.measureRows} rows and scaling`);
    }
  }
  return { shapes, notes };
}

/** w = z·exp(a·z')·norm, float32, seeded. Scale factors come from a table of 2¹⁶ draws (cheap). */
export function heavyTailed(rows: number, cols: number, seed: number): Float32Array {
  const n = rows * cols;
  const out = new Float32Array(n);
  const rng = new Rng(seed);
  const table = new Float64Array(1 << 16);
  const norm = Math.exp(-TAIL * TAIL) / Math.sqrt(cols);
  for (let i = 0; i < table.length; i++) table[i] = Math.exp(TAIL * rng.normal()) * norm;
  for (let i = 0; i < n; i += 2) {
    const u1 = (rng.nextU32() + 1) / 4294967297;
    const t = (2 * Math.PI * rng.nextU32()) / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1));
    const k = rng.nextU32();
    out[i] = r * Math.cos(t) * table[k & 0xffff]!;
    if (i + 1 < n) out[i + 1] = r * Math.sin(t) * table[k >>> 16]!;
  }
  return out;
}
