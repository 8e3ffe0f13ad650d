import { existsSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { SwanError } from '../../errors.js';
import type { Manifest } from '../../manifest.js';
import { renderReport } from '../../report/html.js';

const MANIFEST_NAME = 'swan-manifest.json';

/** The manifest of `input`: a manifest file, or an MLX directory written by swan (its swan-manifest.json). */
export function readReportManifest(input: string): { manifest: Manifest; file: string } {
  if (!existsSync(input)) throw new SwanError(input, 'no such file or directory');
  let file = input;
  if (statSync(input).isDirectory()) {
    file = join(input, MANIFEST_NAME);
    if (!existsSync(file)) throw new SwanError(input, `has no ${MANIFEST_NAME} (not a directory written by swan quantize?)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SwanError(file, `not a valid manifest: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SwanError(file, 'not a SWAN manifest (not a JSON object)');
  const m = parsed as Record<string, unknown>;
  const shards = m.shards;
  if (!shards || typeof shards !== 'object' || Array.isArray(shards)) throw new SwanError(file, 'not a SWAN manifest (no "shards" object)');
  for (const [key, shard] of Object.entries(shards as Record<string, unknown>)) {
    const tensors = (shard as { tensors?: unknown } | null)?.tensors;
    if (!tensors || typeof tensors !== 'object' || Array.isArray(tensors)) throw new SwanError(file, `not a SWAN manifest (shard "${key}" has no "tensors" object)`);
    for (const [name, t] of Object.entries(tensors as Record<string, unknown>)) {
      if (!t || typeof t !== 'object' || !Array.isArray((t as { shape?: unknown }).shape)) {
        throw new SwanError(file, `not a SWAN manifest (tensor "${name}" has no shape)`);
      }
    }
  }
  if (m.summary !== undefined && (typeof m.summary !== 'object' || m.summary === null)) throw new SwanError(file, 'not a SWAN manifest ("summary" is not an object)');
  return { manifest: parsed as Manifest, file };
}

/** Write `text` to `target` through a temporary sibling renamed into place. */
function writeAtomic(target: string, text: string): void {
  const abs = resolve(target);
  const dir = dirname(abs);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SwanError(target, `directory ${dirname(target)} does not exist`);
  if (existsSync(abs) && statSync(abs).isDirectory()) throw new SwanError(target, 'is a directory; name the HTML file to write');
  const tmp = join(dir, `.${basename(abs)}.swan-tmp-${process.pid}`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, abs);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing left behind
    }
    throw new SwanError(target, `cannot write: ${(err as Error).message.split('\n')[0]}`);
  }
}

export function reportCommand(): Command {
  return new Command('report')
    .description('write a self-contained HTML report of a swan manifest: sizes, formats, layer × module heat-maps, every tensor')
    .argument('<manifest-or-mlx-dir>', `a ${MANIFEST_NAME} (or \`swan analyze\` output), or an MLX directory written by swan`)
    .option('-o, --output <file>', 'HTML file to write', 'swan-report.html')
    .action((input: string, flags: { output: string }) => {
      const { manifest, file } = readReportManifest(input);
      const html = renderReport(manifest, { source: basename(file) });
      writeAtomic(flags.output, html);
      process.stdout.write(`wrote ${flags.output} (${Buffer.byteLength(html).toLocaleString('en-US')} bytes) from ${file}\n`);
    });
}
