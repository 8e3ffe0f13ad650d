import { basename } from 'node:path';
import { Command } from 'commander';
import { writeFileAtomic } from '../../io/atomic-file.js';
import { readManifestOf } from '../../manifest/read.js';
import { MANIFEST_FILE } from '../../manifest/schema.js';
import { renderReport, REPORT_GENERATOR } from '../../report/html.js';

export function reportCommand(): Command {
  return new Command('report')
    .description('write a self-contained HTML report of a swan manifest: sizes, formats, layer × module heat-maps, every tensor')
    .argument('<manifest-or-mlx-dir>', `a ${MANIFEST_FILE} (or \`swan analyze\` output), or an MLX directory written by swan`)
    .option('-o, --output <file>', 'HTML file to write', 'swan-report.html')
    .action((input: string, flags: { output: string }) => {
      const { manifest, file } = readManifestOf(input);
      const html = renderReport(manifest, { source: basename(file) });
      writeFileAtomic(flags.output, html, { replaces: (head) => head.includes(REPORT_GENERATOR) });
      process.stdout.write(`wrote ${flags.output} (${Buffer.byteLength(html).toLocaleString('en-US')} bytes) from ${file}\n`);
    });
}
