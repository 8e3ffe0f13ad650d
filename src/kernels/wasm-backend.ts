/**
 * WebAssembly SIMD backend: a packed SGEMM compiled from assembly/gemm.ts (AssemblyScript) into
 * two builds, one with relaxed-SIMD FMA and one with plain SIMD128; the relaxed one is used when
 * the engine accepts it. All data lives in one shared WebAssembly.Memory so that
 *  - alloc() hands out Float32Array views the kernels read in place (no copy per GEMM), and the
 *    views stay valid when the memory grows (a shared buffer is never detached);
 *  - worker threads (see wasm-worker.ts) run the same module on the same memory.
 *
 * Threads take chunks of C's rows (or columns when C is wide) from a shared counter, so a thread
 * slowed by other load simply takes fewer chunks; the operand every chunk needs in full is packed
 * once, by all threads, before the chunks start. The kernel's summation order depends on k only,
 * so results are bit-identical for any thread count.
 *
 * Usage: `setBackend(createWasmBackend())`; allocate the big matrices with alloc() to skip the
 * copy into wasm memory that plain Float32Arrays cost on every call.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';

import type { KernelBackend } from './backend.js';
import { tridiagonalQL } from './linalg.js';

// lib ES2022 and @types/node 20 do not declare WebAssembly; these are the few parts used here.
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  grow(deltaPages: number): number;
}
export type WasmModule = object;
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { readonly exports: object };
  Memory: new (desc: { initial: number; maximum: number; shared: true }) => WasmMemory;
}
export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export type WasmVariant = 'relaxed' | 'simd';

export interface WasmBackendOptions {
  /** Threads for large GEMMs, the calling thread included. Default: os.availableParallelism(). */
  threads?: number;
  /** Force a build; default: relaxed when the engine supports it, else simd. */
  variant?: WasmVariant;
  /** Run the kernels once on small problems so V8 tiers them up before real work. Default true. */
  warmUp?: boolean;
}

export interface WasmBackend extends KernelBackend {
  readonly variant: WasmVariant;
  readonly threads: number;
  alloc(length: number): Float32Array;
  release(array: Float32Array): void;
  /** Chunks of threaded GEMMs that worker threads (not the caller) computed so far. */
  readonly workerChunks: number;
  /** Stops the worker threads. The backend must not be used afterwards. */
  close(): void;
}

/** The exports of gemm-*.wasm (pointers are byte offsets, passed as i32). */
export interface GemmExports {
  scratchBytes(): number;
  tileRows(): number;
  blockK(): number;
  gemm(
    transA: number, transB: number, m: number, n: number, k: number,
    a: number, lda: number, b: number, ldb: number, c: number, ldc: number,
    i0: number, i1: number, j0: number, j1: number, scratch: number, preA: number, preB: number,
    upperB: number,
  ): void;
  packAPanel(transA: number, a: number, lda: number, m: number, p0: number, p1: number, dst: number): void;
  packBPanel(transB: number, b: number, ldb: number, n: number, p0: number, p1: number, dst: number): void;
  // assembly/linalg.ts: float64 n×n row-major matrices at byte offsets.
  cholesky(a: number, n: number): number;
  invertUpper(r: number, x: number, n: number): void;
  mulUpper(a: number, b: number, c: number, n: number): void;
  tridiagonalize(a: number, n: number, d: number, e: number, v: number, p: number): void;
  gramChunk(v: number, s4: number, kc: number, g: number): void;
  // assembly/normal.ts
  normalPairs(state: number, out: number, pairs: number, scale: number, redo: number, cap: number, nredo: number): number;
  heapBase(): number;
}

/** Job kinds: prepack op(A) or op(B) for all threads, or compute chunks of C. */
export const JOB = { GEMM: 0, PACK_A: 1, PACK_B: 2 } as const;

/** Slots of the posted job's parameters: Int32 indices into the control block, from CTRL.PARAMS (8) on. */
const PARAM_SLOTS = [
  'KIND', 'TRANS_A', 'TRANS_B', 'M', 'N', 'K', 'A', 'LDA', 'B', 'LDB', 'C',
  'PRE_A', 'PRE_B', 'BY_ROWS', 'EXTENT', 'CHUNK', 'UPPER_B',
] as const;
export const PARAM = Object.fromEntries(PARAM_SLOTS.map((name, i) => [name, 8 + i])) as Record<
  (typeof PARAM_SLOTS)[number],
  number
>;

/** Layout of the control block shared with the workers (Int32 indices). */
export const CTRL = {
  /** (generation << 12) | next chunk index; workers futex-wait on it. */
  CLAIM: 0,
  /** Chunks finished in the current job; the caller waits on it. */
  DONE: 1,
  NCHUNKS: 2,
  STOP: 3,
  /** Set by a worker whose kernel threw (a bug); the caller then fails instead of waiting. */
  ERROR: 4,
  /** Chunks computed by worker threads so far (diagnostics). */
  WORKER_CHUNKS: 5,
  /** First slot of the job parameters (read as Uint32; see PARAM). */
  PARAMS: 8,
  WORDS: 32,
} as const;

const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit; must match --maximumMemory in build-wasm.mjs
const PAGE = 65536;
const ALIGN = 64;
/**
 * Below: the control block. From here: the module's constant data (libm's tables; --memoryBase in
 * build-wasm.mjs), then the heap, from the module's heapBase().
 */
const DATA_START = 4096;
/** Pairs per call of the normalPairs kernel when out is not in wasm memory (staged, 256 KiB). */
const NORMAL_CHUNK_PAIRS = 32768;
/**
 * Below this many flops (~0.2 ms on one thread) a GEMM runs on the calling thread only: waking the
 * workers costs tens of µs per job, and a threaded GEMM posts two jobs (pack, compute).
 */
const THREAD_MIN_FLOPS = 1e7;
/** Chunks per thread in a threaded job: more balance load better when other processes run. */
const CHUNKS_PER_THREAD = 4;
/**
 * Fewest rows (or columns) of C per chunk, beyond one chunk per thread: every chunk streams the
 * whole shared packed operand (k × 266 floats, say) from memory, about 2/rows bytes per flop.
 */
const MIN_CHUNK_EXTENT = 128;

const wasmDir = new URL('../../wasm/', import.meta.url);
const modules = new Map<WasmVariant, WasmModule>();

function relaxedAvailable(bytes: Uint8Array): boolean {
  if (Wasm.validate(bytes)) return true;
  // Node 20 keeps relaxed SIMD behind a flag that NODE_OPTIONS refuses; it can be set at run time.
  try {
    setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    return false;
  }
  return Wasm.validate(bytes);
}

let defaultVariant: WasmVariant | undefined;

function loadModule(want?: WasmVariant): { variant: WasmVariant; module: WasmModule } {
  let variant = want ?? defaultVariant ?? 'relaxed';
  let module = modules.get(variant);
  if (!module) {
    let bytes = readFileSync(new URL(`gemm-${variant}.wasm`, wasmDir));
    if (variant === 'relaxed' && !relaxedAvailable(bytes)) {
      if (want === 'relaxed') throw new Error('wasm backend: relaxed SIMD is not supported by this engine');
      variant = 'simd';
      bytes = readFileSync(new URL('gemm-simd.wasm', wasmDir));
    }
    module = modules.get(variant);
    if (!module) {
      // Synchronous compile is fine: the module is a few KB.
      module = new Wasm.Module(bytes);
      modules.set(variant, module);
    }
  }
  if (!want) defaultVariant = variant;
  return { variant, module };
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new RangeError(`wasm gemm: ${msg}`);
}

class WasmBackendImpl implements WasmBackend {
  readonly name: string;
  readonly variant: WasmVariant;
  readonly threads: number;

  private readonly memory: WasmMemory;
  private readonly exports: GemmExports;
  /** Every SharedArrayBuffer object memory.buffer has returned: identifies our arrays. */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private readonly live = new Map<number, number>(); // offset → size in bytes
  private free: Array<{ off: number; size: number }> = [];
  private top: number;
  private readonly ctrl: Int32Array;
  private readonly params: Uint32Array;
  private readonly scratch: number[] = [];
  private readonly tileRows: number;
  private readonly blockK: number;
  private readonly workers: Worker[] = [];
  private generation = 0;
  private closed = false;

  constructor(opts: WasmBackendOptions) {
    const { variant, module } = loadModule(opts.variant);
    this.variant = variant;
    const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
    this.threads = threads;
    this.name = `wasm-${variant}${threads > 1 ? `-${threads}t` : ''}`;
    this.memory = new Wasm.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    const instance = new Wasm.Instance(module, { env: { memory: this.memory } });
    this.exports = instance.exports as unknown as GemmExports;
    this.top = roundUp(this.exports.heapBase(), ALIGN);
    check(this.top >= DATA_START && CTRL.WORDS * 4 <= DATA_START, 'module data overlaps the control block');
    this.ctrl = new Int32Array(this.memory.buffer, 0, CTRL.WORDS);
    this.params = new Uint32Array(this.memory.buffer, 0, CTRL.WORDS);
    this.tileRows = this.exports.tileRows();
    this.blockK = this.exports.blockK();
    const scratchBytes = this.exports.scratchBytes();
    for (let t = 0; t < threads; t++) this.scratch.push(this.allocBytes(scratchBytes));
    for (let t = 1; t < threads; t++) {
      const worker = new Worker(new URL('./wasm-worker.js', import.meta.url), {
        workerData: { module, memory: this.memory, scratch: this.scratch[t] },
      });
      // Idle workers sit in Atomics.wait and must not keep the process alive.
      worker.unref();
      // A worker that fails to start never claims a chunk, so the other threads do its share;
      // the listener keeps the error from being rethrown as an uncaught exception.
      worker.on('error', () => undefined);
      this.workers.push(worker);
    }
    if (opts.warmUp ?? true) this.warmUp();
  }

  private warmUp(): void {
    // V8 runs new wasm code on its baseline tier first; a few small calls of every packing path
    // get the kernels tiered up before the first big GEMM.
    const m = 37, n = 29, k = 300;
    const a = this.alloc(m * k), b = this.alloc(k * n), c = this.alloc(m * n);
    a.fill(0.5);
    b.fill(0.25);
    for (let rep = 0; rep < 4; rep++) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) this.gemmLocal(ta, tb, m, n, k, a, b, c, 1);
      }
    }
    this.release(a);
    this.release(b);
    this.release(c);
  }

  // ---- memory -------------------------------------------------------------------------------

  private allocBytes(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const blk = this.free[i]!;
      if (blk.size >= size) {
        const off = blk.off;
        if (blk.size === size) this.free.splice(i, 1);
        else {
          blk.off += size;
          blk.size -= size;
        }
        this.live.set(off, size);
        return off;
      }
    }
    const off = this.top;
    const end = off + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES) {
        throw new RangeError(`wasm backend: out of memory (need ${end} bytes, wasm32 limit is 4 GiB)`);
      }
      this.memory.grow(pages);
    }
    this.top = end;
    this.live.set(off, size);
    return off;
  }

  private releaseBytes(off: number): void {
    const size = this.live.get(off);
    if (size === undefined) throw new Error('wasm backend: release() of an array not from alloc()');
    this.live.delete(off);
    let i = 0;
    while (i < this.free.length && this.free[i]!.off < off) i++;
    this.free.splice(i, 0, { off, size });
    // Coalesce with the neighbours, then give the tail back to the bump pointer.
    const next = this.free[i + 1];
    if (next && off + size === next.off) {
      this.free[i]!.size += next.size;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.off + prev.size === off) {
      prev.size += this.free[i]!.size;
      this.free.splice(i, 1);
      i--;
    }
    const last = this.free[this.free.length - 1];
    if (last && last.off + last.size === this.top) {
      this.top = last.off;
      this.free.pop();
    }
  }

  alloc(length: number): Float32Array {
    check(Number.isInteger(length) && length >= 0, `bad alloc length ${length}`);
    const off = this.allocBytes(length * 4);
    // memory.buffer hands out a fresh SharedArrayBuffer object after this or any other shared
    // memory in the process grows, so register whichever object the view is made on.
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    return new Float32Array(buffer, off, length);
  }

  release(array: Float32Array): void {
    if (!this.owns(array)) throw new Error('wasm backend: release() of an array not from alloc()');
    this.releaseBytes(array.byteOffset);
  }

  private owns(array: Float32Array): boolean {
    return this.buffers.has(array.buffer);
  }

  // ---- gemm ---------------------------------------------------------------------------------

  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: Float32Array, b: Float32Array, c: Float32Array,
  ): void {
    check(!this.closed, 'backend is closed');
    check(Number.isInteger(m) && Number.isInteger(n) && Number.isInteger(k), 'non-integer size');
    check(m >= 0 && n >= 0 && k >= 0, 'negative size');
    check(a.length >= m * k, `a has ${a.length} elements, need ${m * k}`);
    check(b.length >= k * n, `b has ${b.length} elements, need ${k * n}`);
    check(c.length >= m * n, `c has ${c.length} elements, need ${m * n}`);
    if (m === 0 || n === 0) return;
    const flops = 2 * m * n * k;
    const threads = flops < THREAD_MIN_FLOPS ? 1 : this.threads;
    this.gemmLocal(transA, transB, m, n, k, a, b, c, threads);
  }

  mulUpperRight(y: Float32Array, rows: number, n: number, u: Float32Array, out: Float32Array): void {
    check(!this.closed, 'backend is closed');
    check(Number.isInteger(rows) && Number.isInteger(n) && rows >= 0 && n >= 0, 'bad size');
    check(y.length >= rows * n && u.length >= n * n && out.length >= rows * n, 'short array');
    check(out !== y, 'out must not be y');
    if (rows === 0 || n === 0) return;
    // The kernel relies on zeros below the diagonal; the contract says that triangle is ignored.
    const upper = this.alloc(n * n);
    try {
      for (let i = 0; i < n; i++) {
        upper.fill(0, i * n, i * n + i);
        upper.set(u.subarray(i * n + i, (i + 1) * n), i * n + i);
      }
      const threads = rows * n * n < THREAD_MIN_FLOPS ? 1 : this.threads;
      this.gemmLocal(false, false, rows, n, n, y, upper, out, threads, true);
    } finally {
      this.release(upper);
    }
  }

  /** Stages arrays that are not in wasm memory, then runs the kernel. */
  private gemmLocal(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: Float32Array, b: Float32Array, c: Float32Array, threads: number, upperB = false,
  ): void {
    const staged: Float32Array[] = [];
    const place = (arr: Float32Array, len: number, copyIn: boolean): Float32Array => {
      if (this.owns(arr)) return arr;
      const v = this.alloc(len);
      if (copyIn) v.set(len === arr.length ? arr : arr.subarray(0, len));
      staged.push(v);
      return v;
    };
    try {
      const wa = place(a, m * k, true);
      const wb = place(b, k * n, true);
      const wc = place(c, m * n, false);
      this.run(transA, transB, m, n, k, wa.byteOffset, wb.byteOffset, wc.byteOffset, threads, upperB);
      if (wc !== c) c.set(wc.subarray(0, m * n));
    } finally {
      for (const v of staged) this.release(v);
    }
  }

  private run(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    pa: number, pb: number, pc: number, threads: number, upperB: boolean,
  ): void {
    const lda = transA ? m : k;
    const ldb = transB ? k : n;
    const ta = transA ? 1 : 0, tb = transB ? 1 : 0;
    if (threads <= 1 || this.workers.length === 0 || k === 0) {
      this.exports.gemm(ta, tb, m, n, k, pa, lda, pb, ldb, pc, n, 0, m, 0, n, this.scratch[0]!, 0, 0, upperB ? 1 : 0);
      return;
    }
    // Split C along its longer side. The operand every chunk needs in full (B for a row split, A
    // for a column split) is packed once into shared memory, by all threads, so chunks can be
    // small enough to balance load when other processes take CPU time.
    const byRows = m >= n;
    const tile = byRows ? this.tileRows : 8;
    const shared = this.allocBytes(byRows ? k * roundUp(n, 8) * 4 : k * roundUp(m, this.tileRows) * 4);
    try {
      const p = this.params;
      p[PARAM.TRANS_A] = ta; p[PARAM.TRANS_B] = tb; p[PARAM.M] = m; p[PARAM.N] = n; p[PARAM.K] = k;
      p[PARAM.A] = pa; p[PARAM.LDA] = lda; p[PARAM.B] = pb; p[PARAM.LDB] = ldb; p[PARAM.C] = pc;
      p[PARAM.PRE_A] = byRows ? 0 : shared;
      p[PARAM.PRE_B] = byRows ? shared : 0;
      p[PARAM.UPPER_B] = upperB ? 1 : 0;
      const kBlocks = Math.ceil(k / this.blockK);
      this.post(byRows ? JOB.PACK_B : JOB.PACK_A, k, this.blockK, Math.min(kBlocks, threads * CHUNKS_PER_THREAD));
      p[PARAM.BY_ROWS] = byRows ? 1 : 0;
      const extent = byRows ? m : n;
      const want = Math.floor(extent / MIN_CHUNK_EXTENT);
      this.post(JOB.GEMM, extent, tile, Math.max(threads, Math.min(want, threads * CHUNKS_PER_THREAD)));
    } finally {
      this.releaseBytes(shared);
    }
  }

  /**
   * Runs job `kind` over [0, extent) in about `nChunks` chunks of whole `unit`s, on all threads;
   * returns when every chunk is done.
   */
  private post(kind: number, extent: number, unit: number, nChunks: number): void {
    const units = Math.ceil(extent / unit);
    const chunk = Math.ceil(units / Math.max(1, Math.min(units, nChunks, 4095))) * unit;
    const chunks = Math.ceil(extent / chunk);
    const p = this.params;
    p[PARAM.KIND] = kind;
    p[PARAM.EXTENT] = extent;
    p[PARAM.CHUNK] = chunk;
    const ctrl = this.ctrl;
    Atomics.store(ctrl, CTRL.NCHUNKS, chunks);
    Atomics.store(ctrl, CTRL.DONE, 0);
    this.generation = (this.generation + 1) & 0x7ffff;
    Atomics.store(ctrl, CTRL.CLAIM, this.generation << 12);
    Atomics.notify(ctrl, CTRL.CLAIM);
    try {
      runChunks(ctrl, p, this.exports, this.scratch[0]!);
    } catch (e) {
      // Workers may still be on chunks of this job; it is unsafe to post another.
      this.close();
      throw e;
    }
    // Wait for chunks other threads are still computing.
    for (;;) {
      const done = Atomics.load(ctrl, CTRL.DONE);
      if (done >= chunks) break;
      if (Atomics.load(ctrl, CTRL.ERROR)) {
        this.close();
        throw new Error('wasm backend: a worker thread failed');
      }
      Atomics.wait(ctrl, CTRL.DONE, done);
    }
  }

  // ---- small float64 linear algebra (assembly/linalg.ts, calling thread only) ----------------

  /**
   * Runs body on zeroed float64 work arrays of the given lengths in wasm memory (views made after
   * every allocation, so none is on a stale buffer object); they are released afterwards, so body
   * must copy out what it returns.
   */
  private withF64<T>(lengths: number[], body: (views: Float64Array[], offsets: number[]) => T): T {
    check(!this.closed, 'backend is closed');
    const offsets: number[] = [];
    try {
      for (const len of lengths) offsets.push(this.allocBytes(len * 8));
      const buffer = this.memory.buffer;
      const views = offsets.map((off, i) => new Float64Array(buffer, off, lengths[i]!).fill(0));
      return body(views, offsets);
    } finally {
      for (const off of offsets.reverse()) this.releaseBytes(off);
    }
  }

  cholesky(g: Float32Array | Float64Array, n: number, shift: number): Float64Array | null {
    return this.withF64([n * n], ([a], [pa]) => {
      for (let i = 0; i < n; i++) {
        for (let j = i; j < n; j++) a![i * n + j] = g[i * n + j]!;
        a![i * n + i] += shift;
      }
      return this.exports.cholesky(pa!, n) ? a!.slice() : null;
    });
  }

  invertUpper(r: Float64Array, n: number): Float64Array {
    return this.withF64([n * n, n * n], ([rv, x], [pr, px]) => {
      rv!.set(r.subarray(0, n * n));
      this.exports.invertUpper(pr!, px!, n);
      return x!.slice();
    });
  }

  mulUpper(a: Float64Array, b: Float64Array, n: number): Float64Array {
    return this.withF64([n * n, n * n, n * n], ([av, bv, c], [pa, pb, pc]) => {
      av!.set(a.subarray(0, n * n));
      bv!.set(b.subarray(0, n * n));
      this.exports.mulUpper(pa!, pb!, pc!, n);
      return c!.slice();
    });
  }

  symmetricEigenvalues(input: Float64Array, n: number): Float64Array {
    if (n === 0) return new Float64Array(0);
    const [d, e] = this.withF64([n * n, n, n, n, n], ([a, dv, ev], [pa, pd, pe, pv, pp]) => {
      a!.set(input.subarray(0, n * n));
      this.exports.tridiagonalize(pa!, n, pd!, pe!, pv!, pp!);
      return [dv!.slice(), ev!.slice()];
    });
    // The QL iteration is O(n²) work and stays in TypeScript (it throws when it does not converge).
    tridiagonalQL(d!, e!, n);
    return d!.sort();
  }

  gramF64(data: Float32Array, rows: number, cols: number, which: 'rows' | 'cols'): Float64Array {
    check(data.length >= rows * cols, 'short array');
    const s = which === 'rows' ? rows : cols; // number of vectors
    const len = which === 'rows' ? cols : rows; // their length
    const s4 = (s + 3) & ~3;
    const out = new Float64Array(s * s);
    if (s === 0) return out;
    const CH = 256; // as linalg.ts gramF64: the float64 copy is one chunk of every vector
    return this.withF64([CH * s4, s4 * s4], ([v, g], [pv, pg]) => {
      for (let k0 = 0; k0 < len; k0 += CH) {
        const kc = Math.min(CH, len - k0);
        // p-major chunk; the padding vectors s..s4−1 stay zero.
        if (which === 'rows') {
          for (let i = 0; i < s; i++) {
            const src = i * cols + k0;
            for (let p = 0; p < kc; p++) v![p * s4 + i] = data[src + p]!;
          }
        } else {
          for (let p = 0; p < kc; p++) v!.set(data.subarray((k0 + p) * cols, (k0 + p) * cols + s), p * s4);
        }
        this.exports.gramChunk(pv!, s4, kc, pg!);
      }
      for (let i = 0; i < s; i++) {
        for (let j = 0; j <= i; j++) out[i * s + j] = out[j * s + i] = g![i * s4 + j]!;
      }
      return out;
    });
  }

  // ---- Gaussian pairs (assembly/normal.ts, calling thread only) ------------------------------

  /** rng.ts NormalPairsKernel, as the native backend's: out outside wasm memory is staged in chunks. */
  normalPairs(state: Uint32Array, out: Float32Array, offset: number, pairs: number, scale: number, redo: Float64Array): [number, number] {
    check(!this.closed, 'backend is closed');
    check(state.length >= 4, 'normalPairs: state must be a Uint32Array of 4');
    check(Number.isInteger(offset) && Number.isInteger(pairs) && offset >= 0 && pairs >= 0, 'normalPairs: offset and pairs must be non-negative integers');
    check(offset + 2 * pairs <= out.length, 'normalPairs: out shorter than offset + 2·pairs');
    const cap = Math.floor(redo.length / 3);
    const direct = this.owns(out);
    const chunk = direct ? pairs : Math.min(pairs, NORMAL_CHUNK_PAIRS);
    // One block: the state and the kernel's redo count (32 bytes), its redo triples, the staged pairs.
    const redoAt = 32, stageAt = redoAt + 24 * cap;
    const block = this.allocBytes(stageAt + (direct ? 0 : 8 * chunk));
    try {
      const buffer = this.memory.buffer;
      const words = new Uint32Array(buffer, block, 5); // state, then the count
      words.set(state.subarray(0, 4));
      const listedHere = new Float64Array(buffer, block + redoAt, 3 * cap);
      const stage = new Float32Array(buffer, block + stageAt, direct ? 0 : 2 * chunk);
      let done = 0, listed = 0;
      while (done < pairs && listed < cap) {
        const count = Math.min(chunk, pairs - done);
        const from = offset + 2 * done;
        // Staged pairs start as out's values, so the listed ones come back untouched, as in place.
        if (!direct) stage.set(out.subarray(from, from + 2 * count));
        const dst = direct ? out.byteOffset + 4 * from : stage.byteOffset;
        const got = this.exports.normalPairs(block, dst, count, scale, block + redoAt + 24 * listed, cap - listed, block + 16);
        const k = words[4]!;
        if (!direct) out.set(stage.subarray(0, 2 * got), from);
        for (let j = 3 * listed; j < 3 * (listed + k); j += 3) {
          redo[j] = listedHere[j]! + done;
          redo[j + 1] = listedHere[j + 1]!;
          redo[j + 2] = listedHere[j + 2]!;
        }
        done += got;
        listed += k;
        if (got < count && listed < cap) break; // stopped before a pair that draws u = 0
      }
      state.set(words.subarray(0, 4));
      return [done, listed];
    } finally {
      this.releaseBytes(block);
    }
  }

  get workerChunks(): number {
    return Atomics.load(this.ctrl, CTRL.WORKER_CHUNKS);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctrl, CTRL.STOP, 1);
    Atomics.add(this.ctrl, CTRL.CLAIM, 0x1000);
    Atomics.notify(this.ctrl, CTRL.CLAIM);
    for (const w of this.workers) void w.terminate();
  }
}

/**
 * Claims and computes chunks of the posted job until none are left; shared by the calling thread
 * and the workers. A claim is a compare-and-swap on (generation, index), and the parameters are
 * read only after a successful claim: the job cannot finish, and so cannot be replaced, while a
 * claimed chunk is outstanding. Returns the number of chunks computed.
 */
export function runChunks(ctrl: Int32Array, p: Uint32Array, ex: GemmExports, scratch: number): number {
  let ran = 0;
  for (;;) {
    const v = Atomics.load(ctrl, CTRL.CLAIM);
    const nChunks = Atomics.load(ctrl, CTRL.NCHUNKS);
    const idx = v & 0xfff;
    if (idx >= nChunks || Atomics.load(ctrl, CTRL.STOP)) return ran;
    if (Atomics.compareExchange(ctrl, CTRL.CLAIM, v, v + 1) !== v) continue;
    const chunk = p[PARAM.CHUNK]!;
    const lo = idx * chunk;
    const hi = Math.min(lo + chunk, p[PARAM.EXTENT]!);
    const m = p[PARAM.M]!, n = p[PARAM.N]!;
    switch (p[PARAM.KIND]) {
      case JOB.PACK_A:
        ex.packAPanel(p[PARAM.TRANS_A]!, p[PARAM.A]!, p[PARAM.LDA]!, m, lo, hi, p[PARAM.PRE_A]!);
        break;
      case JOB.PACK_B:
        ex.packBPanel(p[PARAM.TRANS_B]!, p[PARAM.B]!, p[PARAM.LDB]!, n, lo, hi, p[PARAM.PRE_B]!);
        break;
      default: {
        const byRows = p[PARAM.BY_ROWS] === 1;
        ex.gemm(
          p[PARAM.TRANS_A]!, p[PARAM.TRANS_B]!, m, n, p[PARAM.K]!,
          p[PARAM.A]!, p[PARAM.LDA]!, p[PARAM.B]!, p[PARAM.LDB]!, p[PARAM.C]!, n,
          byRows ? lo : 0, byRows ? hi : m, byRows ? 0 : lo, byRows ? n : hi,
          scratch, p[PARAM.PRE_A]!, p[PARAM.PRE_B]!, p[PARAM.UPPER_B]!,
        );
      }
    }
    ran++;
    if (Atomics.add(ctrl, CTRL.DONE, 1) + 1 === nChunks) Atomics.notify(ctrl, CTRL.DONE);
  }
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** Creates a WebAssembly SIMD backend (synchronously; the module is compiled once per process). */
export function createWasmBackend(opts: WasmBackendOptions = {}): WasmBackend {
  return new WasmBackendImpl(opts);
}
