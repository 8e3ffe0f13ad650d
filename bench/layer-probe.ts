/**
 * Analysis seconds per tensor and peak RSS for one decoder layer of a given shape (default
 * Qwen3-0.6B: hidden 1024, intermediate 3072, 16 q / 8 kv heads of 128), generated on the fly.
 * Usage: node dist/bench/layer-probe.js [--backend js|wasm] [--threads N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeModel } from '../src/measure/analyze.js';
import { qwen3_0_6B, writeSynthCheckpoint } from '../src/synth/checkpoint.js';
import { installBestBackend } from '../src/kernels/select.js';

const args = process.argv.slice(2);
const backendArg = args.includes('--backend') ? args[args.indexOf('--backend') + 1] : 'auto';
const threads = args.includes('--threads') ? Number(args[args.indexOf('--threads') + 1]) : undefined;
const name = await installBestBackend({ backend: backendArg as 'auto' | 'js' | 'wasm', threads });

const dir = mkdtempSync(join(tmpdir(), 'swan-layer-'));
try {
  // One layer, with a small vocabulary so that the embedding does not dominate the probe.
  writeSynthCheckpoint(dir, { ...qwen3_0_6B(1), vocab: 1024 });
  // The four metrics (what `swan quantize --all-metrics` computes per tensor).
  const a = analyzeModel(dir, { measureCandidates: false });
  // As `swan analyze` does: plus the 18 candidate formats' errors (RTN and rounding search) for budget re-plans.
  const b = analyzeModel(dir);
  const rows = a.tensors.filter((t) => t.record.layer === 0 && t.raw);
  const withCandidates = new Map(b.tensors.map((t) => [t.name, t.seconds]));
  console.log(`backend ${name}`);
  console.log('| tensor | shape | four metrics s | metrics + candidate errors s (swan analyze) |');
  console.log('|---|---|---:|---:|');
  let total = 0;
  let totalB = 0;
  for (const t of rows) {
    total += t.seconds;
    totalB += withCandidates.get(t.name)!;
    console.log(`| ${t.name} | ${t.shape.join('×')} | ${t.seconds.toFixed(3)} | ${withCandidates.get(t.name)!.toFixed(3)} |`);
  }
  console.log(`| **layer total** | | ${total.toFixed(3)} | ${totalB.toFixed(3)} |`);
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
