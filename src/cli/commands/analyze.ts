import { Command } from 'commander';
import { addRevisionOption, MODEL_ARG_HELP, resolveModelArg } from '../model-arg.js';
import { writeFileAtomic } from '../../io/atomic-file.js';
import { writePrettyJson, writePrettyJsonFd } from '../../io/json-stream.js';
import { isSwanManifestHead } from '../../manifest/schema.js';
import { analyzeToManifest } from '../../pipeline/quantize.js';
import type { QuantRules } from '../../options.js';
import { addAnalysisOptions, addRulesOption, swanConfigFrom, type AnalysisFlags } from '../options.js';
import { progressBar } from '../progress.js';
import { allocationSummary, nonFiniteWarning, printWarnings } from '../summary.js';

export function analyzeCommand(): Command {
  const cmd = new Command('analyze')
    .description('score every tensor with SWAN and write the manifest (scores, decisions, formats, sizes)')
    .argument('<model>', MODEL_ARG_HELP)
    .option('-o, --output <file>', 'manifest file to write (default: print the manifest JSON to stdout)')
    .option('-q, --quiet', 'no progress bar or summary')
    .option('--no-search-errors', 'skip measuring the error of --rounding search (faster; re-plans with it then need a new analysis)');
  addRevisionOption(cmd);
  addRulesOption(addAnalysisOptions(cmd), "rounding rules of MLX's quantize kernel whose errors are measured: metal (Apple GPU) or cpu (MLX CPU kernel)").action(
    async (arg: string, flags: AnalysisFlags & { output?: string; quiet?: boolean; mlxRules: QuantRules; searchErrors: boolean; revision?: string }) => {
      const { dir } = await resolveModelArg(arg, { revision: flags.revision, show: !flags.quiet });
      const bar = progressBar('analyze', !flags.quiet);
      const { analysis, plan, manifest } = analyzeToManifest(dir, {
        seed: flags.seed,
        swan: swanConfigFrom(flags),
        groupSize: flags.qGroupSize,
        keepFloat: flags.protect,
        atLeast8: flags.sensitive,
        dtype: flags.dtype,
        rules: flags.mlxRules,
        measureSearch: flags.searchErrors,
        weighting: flags.weighting,
        scoreProtected: flags.scoreProtected,
        allowNonFinite: flags.allowNonfinite,
        jobs: flags.jobs,
        onAnalyze: (done, total, a) => bar.update(done, total, a.name),
      });
      bar.stop();
      printWarnings([...analysis.source.warnings, ...nonFiniteWarning(analysis.nonfinite, plan.dtype)]);
      // Streamed: the manifest of a big model need not fit in one string.
      if (flags.output) writeFileAtomic(flags.output, (fd) => writePrettyJsonFd(fd, manifest), { replaces: isSwanManifestHead });
      else {
        writePrettyJson(manifest, (chunk) => process.stdout.write(chunk));
        process.stdout.write('\n');
      }
      if (!flags.quiet) {
        const scored = analysis.tensors.filter((a) => a.raw !== null).length;
        process.stderr.write(
          `${allocationSummary(plan)}\nanalysed ${analysis.tensors.length} tensors (${scored} scored) in ${analysis.seconds.toFixed(1)} s` +
            (flags.output ? `; manifest: ${flags.output}\n` : '\n'),
        );
      }
    },
  );
  return cmd;
}
