/** The commands, run by the working process that src/cli/main.ts starts; importing this module runs them. */
import { runCli } from './run.js';

process.exitCode = await runCli(process.argv);
