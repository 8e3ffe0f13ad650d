import { Command, CommanderError } from 'commander';
import { escapeControl, SwanError } from '../errors.js';
import { closeBackend, installBestBackend, type BackendChoice } from '../kernels/select.js';
import { SWAN_VERSION } from '../options.js';
import { analyzeCommand } from './commands/analyze.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { imatrixCommand } from './commands/imatrix.js';
import { inspectCommand } from './commands/inspect.js';
import { quantizeCommand } from './commands/quantize.js';
import { reportCommand } from './commands/report.js';

function program(): Command {
  const root = new Command('swan')
    .description('data-free mixed-precision quantization of HuggingFace LLMs into MLX format (SWAN)')
    .version(SWAN_VERSION)
    // The kernel backend (WebAssembly worker threads) lives for one command.
    .hook('preAction', (_program, action) => {
      const o = action.opts() as { backend?: BackendChoice; threads?: number };
      installBestBackend({ backend: o.backend ?? 'auto', threads: o.threads });
    })
    .hook('postAction', () => closeBackend())
    .exitOverride();
  // Usage errors throw instead of exiting the process, in every subcommand too.
  for (const cmd of [analyzeCommand(), quantizeCommand(), inspectCommand(), evalCommand(), imatrixCommand(), demoCommand(), reportCommand()]) root.addCommand(cmd.exitOverride());
  return root;
}

/**
 * Run one swan command line (`argv` as process.argv: node, script, args…) and return its exit
 * code. Errors become one line on stderr naming the file and the problem; the stack only with
 * SWAN_DEBUG. The fuzz test runs this in-process, many times. Async: a Hub id is downloaded before
 * the (synchronous) work starts.
 */
export async function runCli(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (e) {
    closeBackend();
    // Commander has printed its own message (usage errors) or the help/version text.
    if (e instanceof CommanderError) return e.exitCode;
    const msg = e instanceof SwanError ? e.message : escapeControl((e as Error).message?.split('\n')[0] ?? String(e));
    process.stderr.write(`swan: error: ${msg}\n`);
    if (process.env.SWAN_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}
