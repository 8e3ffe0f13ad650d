/**
 * The Hugging Face cache as Python's huggingface_hub lays it out, so that swan, mlx-lm and
 * transformers share one download:
 *
 *   <cache>/models--<org>--<name>/refs/<revision>        the commit sha a branch or tag pointed to
 *   <cache>/models--<org>--<name>/snapshots/<sha>/<path> a relative symlink to ../../blobs/<etag>
 *   <cache>/models--<org>--<name>/blobs/<etag>           the bytes, named by content (LFS sha256 or git sha1)
 *   <cache>/models--<org>--<name>/blobs/<etag>.incomplete a download in progress (resumed from its length)
 *
 * <cache> is HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub (huggingface_hub's constants).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { modelFiles } from './files.js';

/** huggingface_hub's HF_HOME: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
}

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HUB_CACHE || join(hfHome(env), 'hub');
}

/** `HF_HUB_OFFLINE` as huggingface_hub reads it (1, true, yes, on). */
export function hubOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

export const COMMIT_SHA = /^[0-9a-f]{40}$/;

/** models--org--name, as huggingface_hub's repo_folder_name. */
export function repoFolder(cache: string, repoId: string): string {
  return join(cache, `models--${repoId.split('/').join('--')}`);
}

/** The commit a revision names in the cache: itself when it is a sha, else refs/<revision>'s content. */
export function cachedCommit(repo: string, revision: string): string | undefined {
  if (COMMIT_SHA.test(revision)) return revision;
  const ref = join(repo, 'refs', revision);
  if (!existsSync(ref)) return undefined;
  const sha = readFileSync(ref, 'utf8').trim();
  return COMMIT_SHA.test(sha) ? sha : undefined;
}

/**
 * The snapshot folder of `repoId` at `revision` when the cache holds every file a conversion
 * needs (config.json and every weight shard, through links that resolve); else undefined, with
 * `missing` saying what is absent.
 */
export function cachedSnapshot(cache: string, repoId: string, revision: string): { dir?: string; missing: string } {
  const repo = repoFolder(cache, repoId);
  const sha = cachedCommit(repo, revision);
  if (!sha) return { missing: `no snapshot of revision ${revision}` };
  const dir = join(repo, 'snapshots', sha);
  if (!existsSync(join(dir, 'config.json'))) return { missing: `snapshot ${sha.slice(0, 12)} has no config.json` };
  let names: string[];
  try {
    names = modelFiles(dir);
  } catch (e) {
    return { missing: (e as Error).message };
  }
  const absent = names.filter((n) => !existsSync(join(dir, n)));
  if (absent.length) return { missing: `snapshot ${sha.slice(0, 12)} lacks ${absent.join(', ')}` };
  return { dir, missing: '' };
}

export function blobPath(repo: string, etag: string): string {
  return join(repo, 'blobs', etag);
}

/** Link snapshots/<sha>/<path> to ../../blobs/<etag> (relative, as huggingface_hub does on POSIX). */
export function linkSnapshotFile(repo: string, sha: string, path: string, etag: string): void {
  const link = join(repo, 'snapshots', sha, path);
  mkdirSync(dirname(link), { recursive: true });
  rmSync(link, { force: true });
  symlinkSync(relative(dirname(link), blobPath(repo, etag)), link);
}

/** Write refs/<revision> = sha (a branch or tag; a sha needs no ref), replacing it atomically. */
export function writeRef(repo: string, revision: string, sha: string): void {
  if (COMMIT_SHA.test(revision)) return;
  const ref = join(repo, 'refs', revision);
  mkdirSync(dirname(ref), { recursive: true });
  writeFileSync(`${ref}.tmp`, sha);
  renameSync(`${ref}.tmp`, ref);
}
