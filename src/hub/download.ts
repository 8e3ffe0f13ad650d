/**
 * A Hub model id as a local directory: the snapshot folder of the Hugging Face cache (cache.ts),
 * downloaded with the official client (@huggingface/hub) when the cache lacks it. Only the files a
 * conversion needs (files.ts); each is streamed into blobs/<etag>.incomplete (resumed from its
 * length after an interruption), its content hash checked against the Hub's (LFS sha256, or the git
 * blob sha1 of a small file) before it becomes blobs/<etag>, then linked into snapshots/<sha>/.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, statfsSync, truncateSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
// The client is imported when a download is needed: a local run does not pay its start-up.
import type { ListFileEntry } from '@huggingface/hub';
import { SwanError } from '../errors.js';
import { blobPath, cachedSnapshot, hubCacheDir, hubOffline, linkSnapshotFile, repoFolder, writeRef } from './cache.js';
import { hubFailure } from './errors.js';
import { metadataFiles, weightFiles } from './files.js';
import { hubEndpoint, hubToken } from './token.js';

export interface ResolveOptions {
  revision?: string;
  env?: NodeJS.ProcessEnv;
  /** Bytes present and needed, and the file being fetched (called often; the CLI draws a bar). */
  onProgress?: (doneBytes: number, totalBytes: number, file: string) => void;
}

export interface ResolvedModel {
  /** The snapshot folder: snapshots/<sha>/ of the repo in the cache. */
  dir: string;
  repoId: string;
  commit: string;
  /** Bytes fetched from the Hub by this call (0: the cache had everything). */
  downloaded: number;
}

/** A path with the home directory written as ~ (messages never show a user's home). */
export function tildePath(p: string): string {
  const home = homedir();
  return home && p.startsWith(home + '/') ? `~${p.slice(home.length)}` : p;
}

/** Resolve `repoId` at `revision` (default main) to a complete snapshot folder, downloading what is missing. */
export async function resolveHubModel(repoId: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = opts.env ?? process.env;
  const revision = opts.revision ?? 'main';
  const cache = hubCacheDir(env);
  const cached = cachedSnapshot(cache, repoId, revision);
  if (cached.dir) return { dir: cached.dir, repoId, commit: cached.dir.slice(-40), downloaded: 0 };
  if (hubOffline(env)) {
    throw new SwanError(repoId, `not in the Hugging Face cache ${tildePath(cache)} at revision ${revision} (${cached.missing}) and HF_HUB_OFFLINE=1 allows no download; unset HF_HUB_OFFLINE or download it first`);
  }
  const hub = { hubUrl: hubEndpoint(env), accessToken: hubToken(env) };
  const { listFiles, modelInfo } = await import('@huggingface/hub');
  try {
    const info = await modelInfo({ ...hub, name: repoId, revision, additionalFields: ['sha'] });
    const commit = (info as { sha?: string }).sha;
    if (!commit || !/^[0-9a-f]{40}$/.test(commit)) throw new SwanError(repoId, `the Hub gave no commit for revision ${revision}`);
    const listing = new Map<string, ListFileEntry>();
    for await (const e of listFiles({ ...hub, repo: repoId, revision: commit })) if (e.type === 'file') listing.set(e.path, e);
    const repo = repoFolder(cache, repoId);
    const fetcher = new BlobFetcher(repoId, repo, commit, hub, opts.onProgress);
    const meta = metadataFiles([...listing.keys()]).map((p) => listing.get(p)!);
    if (!meta.some((e) => e.path === 'config.json')) throw new SwanError(repoId, `has no config.json at revision ${revision}: not a transformers model repo`);
    const indexEntry = listing.get('model.safetensors.index.json');
    // The index names the shards, so it comes first; its size is tiny.
    let index: { weight_map?: Record<string, unknown> } | undefined;
    if (indexEntry) {
      fetcher.expect([indexEntry]);
      const file = await fetcher.fetch(indexEntry);
      index = JSON.parse(readFileSync(file, 'utf8')) as typeof index;
    }
    const weights = weightFiles([...listing.keys()], index);
    if (!weights.length) throw new SwanError(repoId, `has no *.safetensors at revision ${revision} (swan reads safetensors only, never pickles)`);
    const missing = weights.filter((w) => !listing.has(w));
    if (missing.length) throw new SwanError(repoId, `its index names ${missing.join(', ')}, which the repo does not have`);
    const rest = [...meta.filter((e) => e !== indexEntry), ...weights.map((w) => listing.get(w)!)];
    fetcher.expect(rest);
    checkDiskSpace(repoId, cache, fetcher.bytesToFetch(rest));
    for (const e of rest) await fetcher.fetch(e);
    writeRef(repo, revision, commit);
    return { dir: join(repo, 'snapshots', commit), repoId, commit, downloaded: fetcher.fetched };
  } catch (e) {
    throw hubFailure(e, repoId, revision, hub);
  }
}

/** Refuse before fetching when the cache's file system cannot hold what is left to download. */
function checkDiskSpace(repoId: string, cache: string, need: number): void {
  mkdirSync(cache, { recursive: true });
  const fs = statfsSync(cache);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (need > free) {
    const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
    throw new SwanError(repoId, `needs ${gb(need)} more in ${tildePath(cache)} but only ${gb(free)} is free; free space or set HF_HUB_CACHE to a larger disk`);
  }
}

/** What identifies a file's content on the Hub, and how to hash a download to compare. */
function contentId(e: ListFileEntry): { etag: string; hash: () => Hash; algo: string } {
  if (e.lfs) return { etag: e.lfs.oid, hash: () => createHash('sha256'), algo: 'sha256' };
  if (!e.oid) throw new Error(`the Hub gave no oid for ${e.path}`);
  // A git blob's id: sha1 over "blob <size>\0" and the content.
  return { etag: e.oid, hash: () => createHash('sha1').update(`blob ${e.size}\0`), algo: 'git sha1' };
}

class BlobFetcher {
  fetched = 0;
  private done = 0;
  private total = 0;
  constructor(
    private readonly repoId: string,
    private readonly repo: string,
    private readonly commit: string,
    private readonly hub: { hubUrl: string; accessToken?: string },
    private readonly onProgress?: ResolveOptions['onProgress'],
  ) {}

  expect(entries: ListFileEntry[]): void {
    for (const e of entries) this.total += e.size;
  }

  /** Bytes still to fetch: files whose blob is absent, less what their .incomplete holds. */
  bytesToFetch(entries: ListFileEntry[]): number {
    let n = 0;
    for (const e of entries) {
      const blob = blobPath(this.repo, contentId(e).etag);
      if (existsSync(blob)) continue;
      const part = existsSync(`${blob}.incomplete`) ? statSync(`${blob}.incomplete`).size : 0;
      n += Math.max(0, e.size - part);
    }
    return n;
  }

  /** The snapshot path of `e` once its blob is complete and checked. */
  async fetch(e: ListFileEntry): Promise<string> {
    const { etag, hash, algo } = contentId(e);
    const blob = blobPath(this.repo, etag);
    const link = join(this.repo, 'snapshots', this.commit, e.path);
    if (!existsSync(blob)) await this.download(e, blob, hash(), algo, etag);
    else this.progress(e.size, e.path);
    linkSnapshotFile(this.repo, this.commit, e.path, etag);
    return link;
  }

  private progress(bytes: number, file: string): void {
    this.done += bytes;
    this.onProgress?.(this.done, this.total, file);
  }

  private async download(e: ListFileEntry, blob: string, h: Hash, algo: string, expected: string): Promise<void> {
    mkdirSync(join(this.repo, 'blobs'), { recursive: true });
    const partial = `${blob}.incomplete`;
    let have = existsSync(partial) ? statSync(partial).size : 0;
    if (have > e.size) {
      truncateSync(partial, 0);
      have = 0;
    }
    // Resume: hash what an interrupted run left, then ask for the rest only.
    if (have > 0) {
      for await (const chunk of createReadStream(partial)) h.update(chunk as Buffer);
      this.progress(have, e.path);
    }
    if (have < e.size) {
      const { downloadFile } = await import('@huggingface/hub');
      const remote = await downloadFile({ ...this.hub, repo: this.repoId, path: e.path, revision: this.commit });
      if (!remote) throw new SwanError(`${this.repoId}/${e.path}`, 'listed by the Hub but not served (404)');
      const body = Readable.fromWeb((have > 0 ? remote.slice(have) : remote).stream() as WebReadableStream<Uint8Array>);
      const fd = openSync(partial, 'a');
      try {
        for await (const chunk of body) {
          const buf = chunk as Buffer;
          h.update(buf);
          writeSync(fd, buf);
          have += buf.length;
          this.fetched += buf.length;
          this.progress(buf.length, e.path);
          if (have > e.size) break;
        }
      } catch (err) {
        if (err instanceof SwanError) throw err;
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
        throw new SwanError(`${this.repoId}/${e.path}`, `download interrupted after ${have} of ${e.size} bytes (${cause}); run the command again to resume`);
      } finally {
        closeSync(fd);
      }
    }
    const got = h.digest('hex');
    if (have !== e.size || got !== expected) {
      rmSync(partial, { force: true });
      const what = have !== e.size ? `${have} bytes received, ${e.size} expected` : `${algo} ${got} does not match the Hub's ${expected}`;
      throw new SwanError(`${this.repoId}/${e.path}`, `download refused: ${what}; the partial file was removed, run the command again`);
    }
    renameSync(partial, blob);
  }
}
