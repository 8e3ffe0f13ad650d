// Builds the optional native kernel backend: native/swan_blas.c → dist/native/swan_blas.node, an
// N-API addon calling the platform BLAS's SGEMM and LAPACK (OpenBLAS on Linux, Accelerate on macOS). It is
// compiled directly with the system C compiler (no node-gyp, which would download headers), against
// the node_api.h that ships with Node. Nothing here may fail the build: with no compiler, no headers,
// no BLAS, on Windows, or with SWAN_NO_NATIVE=1, it prints one line and exits 0, and swan uses the
// WebAssembly backend.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'native', 'swan_blas.c');
const outDir = join(root, 'dist', 'native');
const out = join(outDir, 'swan_blas.node');

class Skip extends Error {}

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function tryRun(cmd, args) {
  try {
    return run(cmd, args);
  } catch {
    return undefined;
  }
}

/** The directory holding node_api.h: the running Node's own headers first. */
function nodeHeaders() {
  const candidates = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ];
  const dir = candidates.find((d) => existsSync(join(d, 'node_api.h')));
  if (!dir) throw new Skip('node_api.h not found');
  return dir;
}

function compiler() {
  const cc = process.env.CC || 'cc';
  if (tryRun(cc, ['--version']) === undefined) throw new Skip(`no C compiler (${cc})`);
  return cc;
}

/** Compiler and linker flags for the BLAS. */
function blasFlags() {
  if (process.platform === 'darwin') {
    return ['-DACCELERATE_NEW_LAPACK', '-framework', 'Accelerate', '-undefined', 'dynamic_lookup'];
  }
  const pc = tryRun('pkg-config', ['--cflags', '--libs', 'openblas']);
  if (pc) {
    const flags = pc.split(/\s+/).filter(Boolean);
    const inc = flags.filter((f) => f.startsWith('-I')).map((f) => f.slice(2));
    const sys = ['/usr/include', '/usr/local/include'];
    // An rpath for the library's directory, so that it loads when that is not a system one.
    const rpath = flags.filter((f) => f.startsWith('-L')).map((f) => `-Wl,-rpath,${f.slice(2)}`);
    if ([...inc, ...sys].some((d) => existsSync(join(d, 'cblas.h')))) return [...flags, ...rpath];
  }
  const arch = tryRun('gcc', ['-dumpmachine']) ?? `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  const incDirs = [
    `/usr/include/${arch}/openblas-pthread`,
    `/usr/include/${arch}/openblas-openmp`,
    `/usr/include/${arch}/openblas64-pthread`,
    '/usr/include/openblas',
    '/usr/local/include/openblas',
    '/usr/local/include',
    '/opt/OpenBLAS/include',
  ];
  const libDirs = [
    `/usr/lib/${arch}/openblas-pthread`,
    `/usr/lib/${arch}/openblas-openmp`,
    `/usr/lib/${arch}`,
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
    '/opt/OpenBLAS/lib',
  ];
  const inc = incDirs.find((d) => existsSync(join(d, 'cblas.h')) && existsSync(join(d, 'openblas_config.h')));
  const lib = libDirs.find((d) => existsSync(join(d, 'libopenblas.so')));
  if (!inc || !lib) throw new Skip('OpenBLAS not found (install libopenblas-dev)');
  return [`-I${inc}`, `-L${lib}`, `-Wl,-rpath,${lib}`, '-lopenblas'];
}

function build() {
  if (process.env.SWAN_NO_NATIVE) throw new Skip('SWAN_NO_NATIVE is set');
  if (process.platform === 'win32') throw new Skip('not supported on Windows');
  if (!existsSync(src)) throw new Skip('native/swan_blas.c missing');
  const headers = nodeHeaders();
  const cc = compiler();
  const blas = blasFlags();
  mkdirSync(outDir, { recursive: true });
  // -ffp-contract=off: no fused multiply-adds, so the error proxy's float32 arithmetic and the
  // rounding search's doubles are the IEEE ones the TypeScript computes (native/error_proxy.c,
  // native/search.c give the same bits). -fno-math-errno: sqrt need not set errno, so loops with
  // it vectorise (native/normal.c); values are unchanged.
  const sources = [src, ...['error_proxy.c', 'bf16.c', 'moments.c', 'noise.c', 'affine.c', 'search.c', 'parallel.c', 'linalg.c', 'normal.c'].map((f) => join(dirname(src), f))];
  const args = ['-O2', '-std=c11', '-ffp-contract=off', '-fno-math-errno', '-shared', '-fPIC', '-pthread', `-I${headers}`, ...sources, '-o', out, ...blas, '-lm'];
  try {
    run(cc, args);
  } catch (e) {
    const msg = String(e.stderr || e.message).split('\n').find((l) => /error/i.test(l)) ?? 'compile failed';
    throw new Skip(`compile failed: ${msg.trim()}`);
  }
  // Load it in a child process: a library that links but does not load must not be kept.
  try {
    const info = run(process.execPath, [
      '-e',
      `const m = require(${JSON.stringify(out)}); const i = m.info(); console.log(i.blas === 'openblas' ? i.config.split(' ').slice(0, 2).join(' ') : i.blas)`,
    ]);
    return info;
  } catch (e) {
    throw new Skip(`built but does not load: ${String(e.stderr || e.message).split('\n')[0]}`);
  }
}

try {
  const info = build();
  console.log(`native: built dist/native/swan_blas.node (${info})`);
} catch (e) {
  rmSync(out, { force: true });
  const reason = e instanceof Skip ? e.message : `unexpected error: ${e instanceof Error ? e.message : e}`;
  console.log(`native: skipped (${reason}); the WebAssembly backend will be used`);
}
