/**
 * `--upload-repo`: publish a finished MLX model directory as a Hub model repo with the official
 * client: create the repo when it is missing (`--private`), then one commit of every file (large
 * files through LFS). Files are read lazily from disk (no whole-file buffering of the weights).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SwanError } from '../errors.js';
import { hubFailure } from './errors.js';
import { hubEndpoint, hubToken } from './token.js';

export interface UploadOptions {
  private?: boolean;
  env?: NodeJS.ProcessEnv;
  /** A file's upload progress (0..1), as the client reports it. */
  onProgress?: (file: string, fraction: number) => void;
}

/** Upload every file of `dir` (flat, as swan writes it) to `repoId`; returns the commit's URL. */
export async function uploadModelDir(dir: string, repoId: string, opts: UploadOptions = {}): Promise<{ url: string; files: string[] }> {
  const env = opts.env ?? process.env;
  const hub = { hubUrl: hubEndpoint(env), accessToken: hubToken(env) };
  if (!hub.accessToken) throw new SwanError(repoId, 'uploading needs a token with write access: set HF_TOKEN (or run `hf auth login`)');
  const credentials = { hubUrl: hub.hubUrl, accessToken: hub.accessToken };
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  const { createRepo, repoExists, uploadFilesWithProgress } = await import('@huggingface/hub');
  try {
    if (!(await repoExists({ ...credentials, repo: { type: 'model', name: repoId } }))) {
      try {
        await createRepo({ ...credentials, repo: { type: 'model', name: repoId }, private: opts.private ?? false });
      } catch (e) {
        // Created meanwhile by someone else: commit into it.
        if ((e as { statusCode?: number }).statusCode !== 409) throw e;
      }
    }
    let commitUrl = '';
    const it = uploadFilesWithProgress({
      ...credentials,
      repo: { type: 'model', name: repoId },
      files: files.map((f) => ({ path: f, content: pathToFileURL(join(dir, f)) })),
      commitTitle: 'Upload MLX model quantized with swan',
      useWebWorkers: false,
    });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        commitUrl = r.value?.commit.url ?? '';
        break;
      }
      const ev = r.value;
      if (ev.event === 'fileProgress' && ev.state === 'uploading') opts.onProgress?.(ev.path, ev.progress);
    }
    return { url: commitUrl || `${hub.hubUrl}/${repoId}`, files };
  } catch (e) {
    throw hubFailure(e, repoId, undefined, hub);
  }
}
