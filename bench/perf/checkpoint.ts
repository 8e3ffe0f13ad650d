/** Checkpoint files for the end-to-end runs. */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { readSafetensorsHeader, readTensorBytes } from '../../src/io/safetensors.js';
import { SafetensorsWriter } from '../../src/io/safetensors-writer.js';

/** A copy of `src` holding only its first `layers` layers (plus embedding and norms): no regeneration. */
export function layerSubset(src: string, dst: string, layers: number): void {
  mkdirSync(dst, { recursive: true });
  const header = readSafetensorsHeader(join(src, 'model.safetensors'));
  const keep = header.tensors.filter((t) => {
    const m = /layers\.(\d+)\./.exec(t.name);
    return !m || Number(m[1]) < layers;
  });
  const w = new SafetensorsWriter(join(dst, 'model.safetensors'), keep, { format: 'pt' });
  for (const t of keep) w.write(t.name, readTensorBytes(t));
  w.close();
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  config.num_hidden_layers = layers;
  writeFileSync(join(dst, 'config.json'), JSON.stringify(config, null, 2));
}

export function dirBytes(dir: string): number {
  return statSync(join(dir, 'model.safetensors')).size;
}
