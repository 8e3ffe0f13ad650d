import { Command } from 'commander';
import { resolveModelArg } from '../model-arg.js';
import { writePrettyJson } from '../../io/json-stream.js';
import { inspectModel } from '../../pipeline/inspect.js';
import { textTableLines } from '../table.js';

/** Lines written a block at a time: a million-tensor listing need not fit in one string. */
function writeLines(lines: string[]): void {
  for (let i = 0; i < lines.length; i += 10_000) process.stdout.write(lines.slice(i, i + 10_000).join('\n') + '\n');
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('list the tensors, dtypes, shapes and quantization of an HF or MLX model directory')
    .argument('<model>', 'model directory (HF or MLX), or a Hub id (org/name)')
    .option('--json', 'print JSON instead of a table')
    .option('--revision <rev>', 'Hub branch, tag or commit of a Hub id (default: main)')
    .action(async (arg: string, flags: { json?: boolean; revision?: string }) => {
      const { dir } = await resolveModelArg(arg, { revision: flags.revision, show: true });
      const m = inspectModel(dir);
      if (flags.json) {
        const json = { model_type: m.modelType, tensors: m.tensors, total_bytes: m.totalBytes, total_params: m.totalParams };
        writePrettyJson(json, (chunk) => process.stdout.write(chunk));
        process.stdout.write('\n');
        return;
      }
      const table = textTableLines(
        ['tensor', 'dtype', 'shape', 'quantization', 'bytes'],
        m.tensors.map((r) => [r.name, r.dtype, r.shape.join('×'), r.quant, r.bytes.toLocaleString('en-US')]),
        [false, false, true, false, true],
      );
      const q = m.quantization;
      writeLines(table);
      process.stdout.write(
        `\nmodel_type ${String(m.modelType)} | ${m.tensors.length} tensors | ${m.files} file(s) | ` +
          `${m.totalParams.toLocaleString('en-US')} params | ${m.totalBytes.toLocaleString('en-US')} bytes | ` +
          `${((8 * m.totalBytes) / m.totalParams).toFixed(3)} bits per weight` +
          (q ? ` | quantization default ${q.bits}-bit g${q.group_size}` : '') +
          '\n',
      );
    });
}
