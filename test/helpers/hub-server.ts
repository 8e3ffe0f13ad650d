/**
 * A small Hugging Face Hub on 127.0.0.1 for the tests: the API routes that @huggingface/hub and
 * Python's huggingface_hub call to download (model info at a revision, tree, paths-info, resolve
 * with ETag / X-Repo-Commit / X-Linked-Etag / X-Linked-Size and Range) and to upload (create repo,
 * preupload, LFS batch + basic PUT, commit). Repos are held in memory; tokens decide access like
 * the Hub (no token on a private/gated repo: 401; a token without access to a gated repo: 403;
 * an unknown repo: 404). It records every request and every received file, and can cut a download
 * after N bytes or serve corrupted bytes, for the resume and hash tests.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface HubFile {
  content: Buffer;
  /** git blob sha1 */
  oid: string;
  /** sha256 when stored through LFS */
  lfs?: string;
}

export interface HubRepo {
  private: boolean;
  gated: boolean;
  refs: Map<string, string>;
  commits: Map<string, Map<string, HubFile>>;
}

export const GOOD_TOKEN = 'hf_swan_test_good';
/** Valid, but not granted the gated repos. */
export const UNGRANTED_TOKEN = 'hf_swan_test_ungranted';

export function hubFile(content: Buffer, path: string): HubFile {
  const oid = createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
  const isLfs = path.endsWith('.safetensors') || content.length > 1_000_000;
  return { content, oid, ...(isLfs ? { lfs: createHash('sha256').update(content).digest('hex') } : {}) };
}

function commitSha(files: Map<string, HubFile>, parent: string): string {
  const h = createHash('sha1').update(parent);
  for (const [p, f] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(`${p}\0${f.oid}\n`);
  return h.digest('hex');
}

export class HubServer {
  readonly repos = new Map<string, HubRepo>();
  readonly requests: { method: string; url: string; range?: string; auth?: string }[] = [];
  /** Cut the next download of these paths after this many bytes (the socket is destroyed). */
  readonly cutAfter = new Map<string, number>();
  /** Serve these paths with their first byte flipped (the advertised hashes stay right). */
  readonly corrupt = new Set<string>();
  /** Advertise these sizes in tree listings (a huge model, for the disk-space check). */
  readonly advertisedSize = new Map<string, number>();
  /** Every LFS object and commit received, by repo: path → bytes. */
  readonly received = new Map<string, Map<string, Buffer>>();
  private readonly lfsObjects = new Map<string, Buffer>();
  private server!: Server;
  url = '';

  /** Add a repo at `branch` (default main) from the files of a directory (flat); returns the commit sha. */
  addRepoFromDir(id: string, dir: string, opts: { branch?: string; private?: boolean; gated?: boolean; edit?: (files: Map<string, Buffer>) => void } = {}): string {
    const raw = new Map<string, Buffer>();
    for (const f of readdirSync(dir).sort()) if (statSync(join(dir, f)).isFile()) raw.set(f, readFileSync(join(dir, f)));
    opts.edit?.(raw);
    return this.commit(id, new Map([...raw].map(([p, c]) => [p, hubFile(c, p)])), opts.branch ?? 'main', opts);
  }

  commit(id: string, files: Map<string, HubFile>, branch: string, opts: { private?: boolean; gated?: boolean } = {}): string {
    let repo = this.repos.get(id);
    if (!repo) {
      repo = { private: opts.private ?? false, gated: opts.gated ?? false, refs: new Map(), commits: new Map() };
      this.repos.set(id, repo);
    }
    const parent = repo.refs.get(branch) ?? '';
    const merged = new Map([...(parent ? repo.commits.get(parent)! : new Map<string, HubFile>()), ...files]);
    const sha = commitSha(merged, parent);
    repo.commits.set(sha, merged);
    repo.refs.set(branch, sha);
    return sha;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) this.json(res, 500, { error: String(e) });
        else res.destroy();
      });
    });
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private async body(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** null when access is granted, else the status the Hub gives. */
  private denied(req: IncomingMessage, id: string): { status: number; code: string; message: string } | null {
    const repo = this.repos.get(id);
    const auth = req.headers.authorization?.replace(/^Bearer /, '');
    const valid = auth === GOOD_TOKEN || auth === UNGRANTED_TOKEN;
    if (auth && !valid) return { status: 401, code: 'InvalidCredentials', message: 'Invalid credentials in Authorization header' };
    if (!repo) return { status: 404, code: 'RepoNotFound', message: 'Repository not found' };
    if ((repo.private || repo.gated) && !auth) return { status: 401, code: repo.gated ? 'GatedRepo' : 'RepoNotFound', message: 'Authentication required' };
    if (repo.private && auth !== GOOD_TOKEN) return { status: 404, code: 'RepoNotFound', message: 'Repository not found' };
    if (repo.gated && auth !== GOOD_TOKEN) return { status: 403, code: 'GatedRepo', message: `Access to model ${id} is restricted and you are not in the authorized list` };
    return null;
  }

  private commitOf(repo: HubRepo, rev: string): string | undefined {
    if (rev === 'HEAD') rev = 'main';
    if (repo.commits.has(rev)) return rev;
    return repo.refs.get(rev);
  }

  private treeEntry(path: string, f: HubFile) {
    const size = this.advertisedSize.get(path) ?? f.content.length;
    return { type: 'file', oid: f.oid, size, path, ...(f.lfs ? { lfs: { oid: f.lfs, size, pointerSize: 134 } } : {}) };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url!, this.url);
    const path = decodeURIComponent(url.pathname);
    this.requests.push({ method: req.method!, url: path, range: req.headers.range, auth: req.headers.authorization ? 'yes' : undefined });
    let m: RegExpMatchArray | null;

    if (req.method === 'POST' && path === '/api/repos/create') {
      if (!req.headers.authorization?.endsWith(GOOD_TOKEN)) return this.json(res, 401, { error: 'Invalid username or password.' });
      const b = JSON.parse((await this.body(req)).toString()) as { name: string; organization?: string; private?: boolean; visibility?: string };
      const id = `${b.organization}/${b.name}`;
      if (this.repos.has(id)) return this.json(res, 409, { error: 'You already created this model repo', url: `${this.url}/${id}` });
      this.repos.set(id, { private: b.private === true || b.visibility === 'private', gated: false, refs: new Map(), commits: new Map() });
      return this.json(res, 200, { url: `${this.url}/${id}`, name: id });
    }
    if (req.method === 'PUT' && (m = path.match(/^\/lfs-upload\/([^/]+\/[^/]+)\/([0-9a-f]{64})$/))) {
      const data = await this.body(req);
      if (createHash('sha256').update(data).digest('hex') !== m[2]) return this.json(res, 400, { error: 'sha256 mismatch' });
      this.lfsObjects.set(m[2]!, data);
      res.writeHead(200, { ETag: `"${m[2]}"` }).end();
      return;
    }
    if ((m = path.match(/^\/api\/models\/([^/]+\/[^/]+)(?:\/(revision|tree|paths-info|preupload|commit)(?:\/([^/]+))?(\/.*)?)?$/))) {
      const [, id, op, rev = 'main'] = m as unknown as [string, string, string | undefined, string | undefined];
      const write = op === 'preupload' || op === 'commit';
      const deny = write ? (req.headers.authorization?.endsWith(GOOD_TOKEN) ? (this.repos.has(id) ? null : { status: 404, code: 'RepoNotFound', message: 'Repository not found' }) : { status: 401, code: 'Unauthorized', message: 'Unauthorized' }) : this.denied(req, id);
      if (deny) return this.json(res, deny.status, { error: deny.message }, { 'X-Error-Code': deny.code });
      const repo = this.repos.get(id)!;
      if (op === 'preupload') {
        const b = JSON.parse((await this.body(req)).toString()) as { files: { path: string; size: number }[] };
        return this.json(res, 200, { files: b.files.map((f) => ({ path: f.path, uploadMode: f.path.endsWith('.safetensors') || f.size > 1_000_000 ? 'lfs' : 'regular', shouldIgnore: false })) });
      }
      if (op === 'commit') return this.applyCommit(req, res, id, rev);
      const sha = this.commitOf(repo, rev);
      if (!sha) return this.json(res, 404, { error: `Invalid rev id: ${rev}` }, { 'X-Error-Code': 'RevisionNotFound' });
      const files = repo.commits.get(sha)!;
      if (op === 'tree') return this.json(res, 200, [...files].filter(([p]) => url.searchParams.get('recursive') === 'true' || !p.includes('/')).map(([p, f]) => this.treeEntry(p, f)));
      if (op === 'paths-info') {
        const text = (await this.body(req)).toString();
        const paths = req.headers['content-type']?.includes('json') ? (JSON.parse(text) as { paths: string[] }).paths : new URLSearchParams(text).getAll('paths');
        return this.json(res, 200, paths.filter((p) => files.has(p)).map((p) => ({ ...this.treeEntry(p, files.get(p)!), lastCommit: { id: sha, title: 'c', date: new Date(0).toISOString() } })));
      }
      return this.json(res, 200, {
        _id: id,
        id,
        modelId: id,
        sha,
        private: repo.private,
        gated: repo.gated ? 'auto' : false,
        disabled: false,
        downloads: 0,
        likes: 0,
        tags: [],
        pipeline_tag: 'text-generation',
        library_name: 'transformers',
        createdAt: new Date(0).toISOString(),
        lastModified: new Date(0).toISOString(),
        siblings: [...files.keys()].map((rfilename) => ({ rfilename })),
      });
    }
    if (req.method === 'POST' && (m = path.match(/^\/([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/))) {
      if (!req.headers.authorization?.endsWith(GOOD_TOKEN)) return this.json(res, 401, { message: 'Unauthorized' });
      const b = JSON.parse((await this.body(req)).toString()) as { objects: { oid: string; size: number }[] };
      return this.json(
        res,
        200,
        {
          transfer: 'basic',
          objects: b.objects.map((o) => ({ oid: o.oid, size: o.size, authenticated: true, actions: { upload: { href: `${this.url}/lfs-upload/${m![1]}/${o.oid}` } } })),
        },
        { 'Content-Type': 'application/vnd.git-lfs+json' },
      );
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && (m = path.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/))) {
      const [, id, rev, file] = m as unknown as [string, string, string, string];
      const deny = this.denied(req, id);
      if (deny) return this.json(res, deny.status, { error: deny.message }, { 'X-Error-Code': deny.code });
      const repo = this.repos.get(id)!;
      const sha = this.commitOf(repo, rev);
      if (!sha) return this.json(res, 404, { error: 'Revision not found' }, { 'X-Error-Code': 'RevisionNotFound' });
      const f = repo.commits.get(sha)!.get(file);
      if (!f) return this.json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      let content = f.content;
      if (this.corrupt.has(file)) {
        content = Buffer.from(content);
        content[content.length >> 1]! ^= 0xff;
      }
      const etag = f.lfs ?? f.oid;
      const headers: Record<string, string> = { ETag: `"${etag}"`, 'X-Repo-Commit': sha, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
      if (f.lfs) Object.assign(headers, { 'X-Linked-Etag': `"${f.lfs}"`, 'X-Linked-Size': String(f.content.length) });
      let start = 0;
      let end = content.length - 1;
      const range = req.headers.range?.match(/^bytes=(\d+)-(\d*)$/);
      if (range) {
        start = Number(range[1]);
        end = range[2] ? Math.min(Number(range[2]), end) : end;
        if (start > end) {
          res.writeHead(416, { 'Content-Range': `bytes */${content.length}` }).end();
          return;
        }
        headers['Content-Range'] = `bytes ${start}-${end}/${content.length}`;
      }
      headers['Content-Length'] = String(end - start + 1);
      res.writeHead(range ? 206 : 200, headers);
      if (req.method === 'HEAD') return void res.end();
      const body = content.subarray(start, end + 1);
      const cut = this.cutAfter.get(file);
      if (cut !== undefined && end - start + 1 > cut) {
        this.cutAfter.delete(file);
        res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      res.end(body);
      return;
    }
    this.json(res, 404, { error: `no route ${req.method} ${path}` });
  }

  private async applyCommit(req: IncomingMessage, res: ServerResponse, id: string, branch: string): Promise<void> {
    const lines = (await this.body(req)).toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { key: string; value: Record<string, unknown> });
    const files = new Map<string, HubFile>();
    for (const { key, value } of lines) {
      if (key === 'file') files.set(value.path as string, hubFile(Buffer.from(value.content as string, 'base64'), value.path as string));
      else if (key === 'lfsFile') {
        const data = this.lfsObjects.get(value.oid as string);
        if (!data) return this.json(res, 400, { error: `LFS object ${value.oid as string} was not uploaded` });
        files.set(value.path as string, hubFile(data, value.path as string));
      }
    }
    const got = this.received.get(id) ?? new Map<string, Buffer>();
    for (const [p, f] of files) got.set(p, f.content);
    this.received.set(id, got);
    const sha = this.commit(id, files, branch);
    this.json(res, 200, { commitOid: sha, commitUrl: `${this.url}/${id}/commit/${sha}` });
  }
}
