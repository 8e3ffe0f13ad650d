import { basename } from 'node:path';
import { Command } from 'commander';
import { resolveModelArg } from '../model-arg.js';
import { writeFileAtomic } from '../../io/atomic-file.js';
import { readManifestOf } from '../../manifest/read.js';
import { MANIFEST_FILE } from '../../manifest/schema.js';
import { renderReport, REPORT_GENERATOR } from '../../report/html.js';

export function reportCommand(): Command {
  return new Command('report')
    .description('write a self-contained HTML report of a swan manifest: sizes, formats, layer × module heat-maps, every tensor')
    .argument('<manifest-or-mlx-dir>', `a ${MANIFEST_FILE} (or \`swan analyze\` output), an MLX directory written by swan, or the Hub id of one`)
    .option('--revision <rev>', 'Hub branch, tag or commit of a Hub id (default: main)')
    .option('-o, --output <file>', 'HTML file to write', 'swan-report.html')
    .action(async (arg: string, flags: { output: string; revision?: string }) => {
      const { dir: input } = await resolveModelArg(arg, { revision: flags.revision, show: true });
      const { manifest, file } = readManifestOf(input);
      const html = renderReport(manifest, { source: basename(file) });
      writeFileAtomic(flags.output, html, { replaces: (head) => head.includes(REPORT_GENERATOR) });
      process.stdout.write(`wrote ${flags.output} (${Buffer.byteLength(html).toLocaleString('en-US')} bytes) from ${file}\n`);
    });
}
