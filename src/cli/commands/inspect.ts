import { Command } from 'commander';
import { openHfModel } from '../../io/hf-model.js';
import { numel } from '../../plan/format.js';
import { textTable } from '../table.js';

interface LayerQuant {
  bits: number;
  group_size: number;
  mode?: string;
}

/** The quantization of each module of an MLX directory, as mlx-lm's loader would decide it. */
function quantOf(config: Record<string, unknown>, module: string, hasScales: boolean): LayerQuant | undefined {
  const q = config.quantization as (Record<string, unknown> & LayerQuant) | undefined;
  if (!q) return undefined;
  const own = q[module];
  if (own && typeof own === 'object') {
    const o = own as Partial<LayerQuant>;
    return { bits: o.bits ?? q.bits, group_size: o.group_size ?? q.group_size, mode: o.mode ?? q.mode };
  }
  if (own === false) return undefined;
  return hasScales ? { bits: q.bits, group_size: q.group_size, mode: q.mode } : undefined;
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('list the tensors, dtypes, shapes and quantization of an HF or MLX model directory')
    .argument('<dir>', 'model directory')
    .option('--json', 'print JSON instead of a table')
    .action((dir: string, flags: { json?: boolean }) => {
      const model = openHfModel(dir);
      const names = new Set(model.tensors.map((t) => t.name));
      const rows: { name: string; dtype: string; shape: number[]; quant: string; params: number; bytes: number }[] = [];
      let totalBytes = 0;
      let totalParams = 0;
      for (const t of model.tensors) {
        totalBytes += t.byteLength;
        if (/\.(scales|biases)$/.test(t.name) && names.has(t.name.replace(/\.(scales|biases)$/, '.weight'))) continue;
        const module = t.name.replace(/\.(weight|bias)$/, '');
        const q = t.name.endsWith('.weight') ? quantOf(model.config, module, names.has(`${module}.scales`)) : undefined;
        let shape = t.shape;
        let quant = '-';
        let bytes = t.byteLength;
        if (q && t.dtype === 'U32') {
          shape = [...t.shape.slice(0, -1), (t.shape[t.shape.length - 1]! * 32) / q.bits];
          quant = `${q.mode && q.mode !== 'affine' ? q.mode + ' ' : ''}${q.bits}-bit g${q.group_size}`;
          for (const s of ['scales', 'biases']) bytes += model.tensors.find((x) => x.name === `${module}.${s}`)?.byteLength ?? 0;
        }
        const params = numel(shape);
        totalParams += params;
        rows.push({ name: t.name, dtype: t.dtype, shape, quant, params, bytes });
      }
      if (flags.json) {
        process.stdout.write(JSON.stringify({ model_type: model.config.model_type, tensors: rows, total_bytes: totalBytes, total_params: totalParams }, null, 2) + '\n');
        return;
      }
      const table = textTable(
        ['tensor', 'dtype', 'shape', 'quantization', 'bytes'],
        rows.map((r) => [r.name, r.dtype, r.shape.join('×'), r.quant, r.bytes.toLocaleString('en-US')]),
        [false, false, true, false, true],
      );
      const q = model.config.quantization as LayerQuant | undefined;
      process.stdout.write(
        `${table}\n\nmodel_type ${String(model.config.model_type)} | ${rows.length} tensors | ${model.files.length} file(s) | ` +
          `${totalParams.toLocaleString('en-US')} params | ${totalBytes.toLocaleString('en-US')} bytes | ` +
          `${((8 * totalBytes) / totalParams).toFixed(3)} bits per weight` +
          (q ? ` | quantization default ${q.bits}-bit g${q.group_size}` : '') +
          '\n',
      );
    });
}
