/**
 * A model argument: a local directory, or a Hub id (org/name) resolved to its snapshot folder in
 * the Hugging Face cache (src/hub/download.ts), with a download bar (bytes, speed, ETA) on stderr.
 */
import { existsSync } from 'node:fs';
import { type Command } from 'commander';
import { resolveHubModel } from '../hub/download.js';
import { bytesBar } from './progress.js';

/** org/name as the Hub spells repo ids (no path that exists locally). */
const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9_.-]+$/;

export function isHubId(arg: string): boolean {
  return !existsSync(arg) && HUB_ID.test(arg) && !arg.includes('..') && !arg.endsWith('.');
}

export const MODEL_ARG_HELP = 'a local HuggingFace model directory, or a Hub id (org/name: read from the HF cache, else downloaded into it)';

/** `--revision`, for commands whose model argument may be a Hub id. */
export function addRevisionOption(cmd: Command): Command {
  return cmd.option('--revision <rev>', 'Hub branch, tag or commit of a Hub id (default: main)');
}

export interface ModelArg {
  dir: string;
  /** The Hub id when the argument was one. */
  hubId?: string;
}

export async function resolveModelArg(arg: string, opts: { revision?: string; show: boolean; what?: string }): Promise<ModelArg> {
  if (!isHubId(arg)) {
    if (opts.revision !== undefined) throw new Error(`--revision applies to a Hub id (org/name), not to the local directory ${arg}`);
    return { dir: arg };
  }
  const bar = bytesBar(`download`, opts.show);
  try {
    const r = await resolveHubModel(arg, { revision: opts.revision, onProgress: (done, total, file) => bar.update(done, total, file) });
    return { dir: r.dir, hubId: arg };
  } finally {
    bar.stop();
  }
}
