import { Command } from 'commander';
import { inspectModel } from '../../pipeline/inspect.js';
import { textTable } from '../table.js';

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('list the tensors, dtypes, shapes and quantization of an HF or MLX model directory')
    .argument('<dir>', 'model directory')
    .option('--json', 'print JSON instead of a table')
    .action((dir: string, flags: { json?: boolean }) => {
      const m = inspectModel(dir);
      if (flags.json) {
        process.stdout.write(JSON.stringify({ model_type: m.modelType, tensors: m.tensors, total_bytes: m.totalBytes, total_params: m.totalParams }, null, 2) + '\n');
        return;
      }
      const table = textTable(
        ['tensor', 'dtype', 'shape', 'quantization', 'bytes'],
        m.tensors.map((r) => [r.name, r.dtype, r.shape.join('×'), r.quant, r.bytes.toLocaleString('en-US')]),
        [false, false, true, false, true],
      );
      const q = m.quantization;
      process.stdout.write(
        `${table}\n\nmodel_type ${String(m.modelType)} | ${m.tensors.length} tensors | ${m.files} file(s) | ` +
          `${m.totalParams.toLocaleString('en-US')} params | ${m.totalBytes.toLocaleString('en-US')} bytes | ` +
          `${((8 * m.totalBytes) / m.totalParams).toFixed(3)} bits per weight` +
          (q ? ` | quantization default ${q.bits}-bit g${q.group_size}` : '') +
          '\n',
      );
    });
}
