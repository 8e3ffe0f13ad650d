/**
 * MoE benchmark (docs/performance.md, "Mixture of experts"): on Qwen3-30B-A3B's layer shapes
 * (hidden 2048, experts of intermediate 768, 32×128 query / 4×128 kv heads; `--experts`, default
 * 128), generated with 1…N MoE layers (src/synth/families.ts, bf16):
 *  - peak RSS of `swan quantize --uniform` (the writer streaming expert by expert) per layer count:
 *    it should stay flat, and below one layer's stacked experts in float32;
 *  - seconds per GB of `swan quantize` (SWAN analysis + write) on one MoE layer against one dense
 *    layer of the same bytes (intermediate = experts × 768).
 * Experts share their values (writeFamilyCheckpoint's shareValues: sizes, not values, set memory
 * and time). Each run is a child process measured by /usr/bin/time -v. Usage:
 *   node dist/bench/moe-bench.js [--experts 128] [--layers 1,2,4] [--swan] [--dir /tmp/swan-moe-bench] [--out docs/performance-moe.md]
 * The tables are printed and written to --out with the date, machine and load.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
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
  if (!existsSync(join(dir, 'config.json'))) writeFamilyCheckpoint(dir, s, { seed: 1, shareValues: true });
  return dir;
}

const GB = 1e9;
const MiB = 2 ** 20;

const lines: string[] = [];
function out(line: string): void {
  console.log(line);
  lines.push(line);
}

function main(): void {
  const experts = Number(arg('experts', '128'));
  const layerCounts = arg('layers', '1,2,4').split(',').map(Number);
  const root = arg('dir', '/tmp/swan-moe-bench');
  const stackF32 = 3 * experts * 768 * 2048 * 4;
  out(`experts ${experts}; one layer's stacked experts in float32: ${(stackF32 / MiB).toFixed(0)} MiB`);
  out('| MoE layers | checkpoint GB | --uniform 4-bit: seconds | peak RSS MiB |');
  out('|---|---|---|---|');
  for (const layers of layerCounts) {
    const dir = checkpoint(join(root, `qwen3_moe-${experts}x${layers}`), qwen3MoeShape(layers, experts));
    const bytes = statSync(join(dir, 'model.safetensors')).size;
    const r = timed(dir, join(root, 'out'), ['--uniform', '--q-bits', '4']);
    out(`| ${layers} | ${(bytes / GB).toFixed(2)} | ${r.seconds.toFixed(1)} | ${(r.peakRss / MiB).toFixed(0)} |`);
  }
  if (process.argv.includes('--swan')) {
    out('\n| one layer | checkpoint GB | swan quantize (SWAN): seconds | s/GB | peak RSS MiB |');
    out('|---|---|---|---|---|');
    for (const [label, dir] of [
      [`MoE (${experts} experts × 768)`, checkpoint(join(root, `qwen3_moe-${experts}x1`), qwen3MoeShape(1, experts))],
      [`dense (intermediate ${experts * 768})`, checkpoint(join(root, `qwen3-dense-${experts}`), denseShape(experts))],
    ] as const) {
      const bytes = statSync(join(dir, 'model.safetensors')).size;
      const r = timed(dir, join(root, 'out'), []);
      out(`| ${label} | ${(bytes / GB).toFixed(2)} | ${r.seconds.toFixed(1)} | ${(r.seconds / (bytes / GB)).toFixed(1)} | ${(r.peakRss / MiB).toFixed(0)} |`);
    }
  }
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  const head = [
    '# Performance: mixture of experts',
    '',
    `Written by \`node dist/bench/moe-bench.js ${process.argv.slice(2).join(' ')}\` (bench/moe-bench.ts) on ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC;`,
    `${cpus().length} logical cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, load average at the end ${load} (other jobs share the machine: absolute seconds are load-affected, ratios measured side by side less so).`,
    'Qwen3-30B-A3B layer shapes (hidden 2048, experts of intermediate 768, 32×128 query and 4×128 kv heads), bf16, vocab 2048; experts share their values.',
    '',
  ];
  writeFileSync(arg('out', 'docs/performance-moe.md'), [...head, ...lines].join('\n') + '\n');
}

main();
