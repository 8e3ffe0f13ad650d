/**
 * MoE benchmark (docs/performance.md, "Mixture of experts"): on Qwen3-30B-A3B's layer shapes
 * (hidden 2048, experts of intermediate 768, 32×128 query / 4×128 kv heads; `--experts`, default
 * 128), generated with 1…N MoE layers (src/synth/families.ts, bf16):
 *  - peak RSS of `swan quantize --uniform` (the writer streaming expert by expert) per layer count:
 *    it should stay flat, and below one layer's stacked experts in float32;
 *  - seconds per GB of `swan quantize` (SWAN analysis + write) on one MoE layer against one dense
 *    layer of the same bytes (intermediate = experts × 768).
 * Each run is a child process measured by /usr/bin/time -v. Usage:
 *   node dist/bench/moe-bench.js [--experts 128] [--layers 1,2,4] [--swan] [--dir /tmp/swan-moe-bench]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyShape, writeFamilyCheckpoint, type FamilyShape } from '../src/synth/families.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

function qwen3MoeShape(layers: number, experts: number): FamilyShape {
  return tinyShape('qwen3_moe', { hidden: 2048, heads: 32, kvHeads: 4, headDim: 128, vocab: 2048, layers, experts, expertIntermediate: 768, intermediate: 6144, tied: true });
}

/** A dense qwen3 layer whose MLP has the bytes of the MoE layer's experts. */
function denseShape(experts: number): FamilyShape {
  return tinyShape('qwen3', { hidden: 2048, heads: 32, kvHeads: 4, headDim: 128, vocab: 2048, layers: 1, intermediate: experts * 768, tied: true });
}

/** Run swan quantize in a child under /usr/bin/time -v: wall seconds and peak RSS (bytes). */
function timed(src: string, out: string, args: string[]): { seconds: number; peakRss: number } {
  rmSync(out, { recursive: true, force: true });
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, CLI, 'quantize', src, '-o', out, ...args], { encoding: 'utf8' });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`swan quantize ${src} failed: ${r.stderr.slice(-2000)}`);
  const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  rmSync(out, { recursive: true, force: true });
  return { seconds, peakRss: kb ? Number(kb[1]) * 1024 : NaN };
}

function checkpoint(dir: string, s: FamilyShape): string {
  if (!existsSync(join(dir, 'config.json'))) writeFamilyCheckpoint(dir, s, { seed: 1 });
  return dir;
}

const GB = 1e9;
const MiB = 2 ** 20;

function main(): void {
  const experts = Number(arg('experts', '128'));
  const layerCounts = arg('layers', '1,2,4').split(',').map(Number);
  const root = arg('dir', '/tmp/swan-moe-bench');
  const stackF32 = 3 * experts * 768 * 2048 * 4;
  console.log(`experts ${experts}; one layer's stacked experts in float32: ${(stackF32 / MiB).toFixed(0)} MiB`);
  console.log('| MoE layers | checkpoint GB | --uniform 4-bit: seconds | peak RSS MiB |');
  console.log('|---|---|---|---|');
  for (const layers of layerCounts) {
    const dir = checkpoint(join(root, `qwen3_moe-${experts}x${layers}`), qwen3MoeShape(layers, experts));
    const bytes = statSync(join(dir, 'model.safetensors')).size;
    const r = timed(dir, join(root, 'out'), ['--uniform', '--q-bits', '4']);
    console.log(`| ${layers} | ${(bytes / GB).toFixed(2)} | ${r.seconds.toFixed(1)} | ${(r.peakRss / MiB).toFixed(0)} |`);
  }
  if (process.argv.includes('--swan')) {
    console.log('\n| one layer | checkpoint GB | swan quantize (SWAN): seconds | s/GB | peak RSS MiB |');
    console.log('|---|---|---|---|---|');
    for (const [label, dir] of [
      [`MoE (${experts} experts × 768)`, checkpoint(join(root, `qwen3_moe-${experts}x1`), qwen3MoeShape(1, experts))],
      [`dense (intermediate ${experts * 768})`, checkpoint(join(root, `qwen3-dense-${experts}`), denseShape(experts))],
    ] as const) {
      const bytes = statSync(join(dir, 'model.safetensors')).size;
      const r = timed(dir, join(root, 'out'), []);
      console.log(`| ${label} | ${(bytes / GB).toFixed(2)} | ${r.seconds.toFixed(1)} | ${(r.seconds / (bytes / GB)).toFixed(1)} | ${(r.peakRss / MiB).toFixed(0)} |`);
    }
  }
}

main();
