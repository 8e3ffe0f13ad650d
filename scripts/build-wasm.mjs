// Compiles assembly/gemm.ts (and the float64 l×l routines of assembly/linalg.ts, the Gaussian pairs
// of assembly/normal.ts) into the two wasm builds the WebAssembly backend picks from at start-up:
// dist/wasm/gemm-relaxed.wasm (relaxed-SIMD FMA) and dist/wasm/gemm-simd.wasm (plain SIMD128).
// Both import a shared env.memory (so worker threads can run on the same memory) and have no
// runtime and no imports besides the memory. Their only data segments are libm's constant tables
// (Math.log, sin, cos in normal.ts), placed from --memoryBase on: above the backend's control block,
// below its heap (which starts at the module's heapBase()). Every instantiation (one per worker)
// rewrites those same bytes there, which is harmless.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const asc = join(dirname(require.resolve('assemblyscript/package.json')), 'bin', 'asc.js');
const outDir = join(root, 'dist', 'wasm');
mkdirSync(outDir, { recursive: true });

const common = [
  join(root, 'assembly', 'gemm.ts'),
  join(root, 'assembly', 'linalg.ts'),
  join(root, 'assembly', 'normal.ts'),
  '-O3', '--noAssert', '--runtime', 'stub', '--use', 'abort=',
  '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536',
  '--memoryBase', '4096', // = DATA_START in src/kernels/wasm-backend.ts
  '--enable', 'simd', '--enable', 'threads',
];
const builds = [
  { file: 'gemm-relaxed.wasm', extra: ['--enable', 'relaxed-simd'] },
  { file: 'gemm-simd.wasm', extra: [] },
];
for (const { file, extra } of builds) {
  execFileSync(process.execPath, [asc, ...common, ...extra, '-o', join(outDir, file)], {
    cwd: root,
    stdio: 'inherit',
  });
}
console.log(`wasm: built ${builds.map((b) => b.file).join(', ')} in dist/wasm`);
