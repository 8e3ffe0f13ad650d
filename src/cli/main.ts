#!/usr/bin/env node
import { Command } from 'commander';
import { escapeControl, SwanError } from '../errors.js';
import { SWAN_VERSION } from '../options.js';
import { closeBackend, installBestBackend, type BackendChoice } from '../kernels/select.js';
import { analyzeCommand } from './commands/analyze.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { inspectCommand } from './commands/inspect.js';
import { quantizeCommand } from './commands/quantize.js';
import { reportCommand } from './commands/report.js';

const program = new Command('swan')
  .description('data-free mixed-precision quantization of HuggingFace LLMs into MLX format (SWAN)')
  .version(SWAN_VERSION)
  .addCommand(analyzeCommand())
  .addCommand(quantizeCommand())
  .addCommand(inspectCommand())
  .addCommand(evalCommand())
  .addCommand(demoCommand())
  .addCommand(reportCommand())
  // The kernel backend (WebAssembly worker threads) lives for one command.
  .hook('preAction', (_program, action) => {
    const o = action.opts() as { backend?: BackendChoice; threads?: number };
    installBestBackend({ backend: o.backend ?? 'auto', threads: o.threads });
  })
  .hook('postAction', () => closeBackend());

try {
  program.parse();
} catch (e) {
  // One line naming the file and the problem; the stack only on request.
  const msg = e instanceof SwanError ? e.message : escapeControl((e as Error).message?.split('\n')[0] ?? String(e));
  closeBackend();
  process.stderr.write(`swan: error: ${msg}\n`);
  if (process.env.SWAN_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
}
