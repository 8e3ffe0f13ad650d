// src/rng.ts fillNormal's Gaussian pairs for the WebAssembly backend (AssemblyScript), the port of
// native/normal.c with the same contract (rng.ts NormalPairsKernel). The draws and every f64
// operation are the TypeScript's, in the same order, except log, cos and sin: AssemblyScript's
// Math is a port of musl's libm (log through its lookup tables at -O3), V8's is fdlibm, and the two
// may differ in the last bit or two. So, as in C, a pair is written only when each value rounds to
// the same float32 anywhere within 2⁻⁴⁶ relative of the f64 computed here (far more than that
// error), which is then the float32 the TypeScript stores; the others (about one pair in 10⁶) are
// listed for the caller, which computes them exactly as the TypeScript does.

/** Whether x rounds to the same float32 anywhere within 2⁻⁴⁶ relative of it. */
@inline function robustF32(x: f64): bool {
  const e = Math.abs(x) * 1.4210854715202004e-14; // 2⁻⁴⁶
  const f = <f32>x;
  return <f32>(x - e) == f && <f32>(x + e) == f;
}

/**
 * Up to `pairs` pairs of fillNormal's values · scale into the f32 array at `out`, continuing the
 * stream whose four u32 words are at `state` (advanced there over the pairs done). Stops before a
 * pair that draws u = 0 or once `cap` pairs are listed in the f64 triples (pair index, u, v) at
 * `redo`; stores how many were listed as an i32 at `nredo` and returns the pairs done.
 */
export function normalPairs(state: usize, out: usize, pairs: i32, scale: f64, redo: usize, cap: i32, nredo: usize): i32 {
  const twoPi = 2 * 3.141592653589793; // 2·Math.PI, exact
  // The stream in locals (xoshiro128**, rng.ts nextU32): four draws per pair, u's then v's.
  let s0 = load<u32>(state), s1 = load<u32>(state, 4), s2 = load<u32>(state, 8), s3 = load<u32>(state, 12);
  let p = 0, k = 0;
  for (; p < pairs && k < cap; p++) {
    const b0 = s0, b1 = s1, b2 = s2, b3 = s3;
    let u: f64 = 0, v: f64 = 0, hi: u32 = 0;
    for (let d = 0; d < 4; d++) {
      const x = rotl<u32>(s1 * 5, 7) * 9;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl<u32>(s3, 11);
      // Uniform in [0, 1) from two draws, as Rng.uniform(): exact in f64.
      if ((d & 1) == 0) hi = x >>> 5;
      else if (d == 1) u = (<f64>hi * 67108864.0 + <f64>(x >>> 6)) / 9007199254740992.0;
      else v = (<f64>hi * 67108864.0 + <f64>(x >>> 6)) / 9007199254740992.0;
    }
    if (u == 0) {
      s0 = b0; s1 = b1; s2 = b2; s3 = b3;
      break;
    }
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = twoPi * v;
    NativeMath.sincos(theta); // musl's sin and cos, one argument reduction
    const a = r * NativeMath.sincos_cos * scale;
    const b = r * NativeMath.sincos_sin * scale;
    if (robustF32(a) && robustF32(b)) {
      const o = out + (<usize>p << 3);
      store<f32>(o, <f32>a);
      store<f32>(o, <f32>b, 4);
    } else {
      const q = redo + <usize>k * 24;
      store<f64>(q, <f64>p);
      store<f64>(q, u, 8);
      store<f64>(q, v, 16);
      k++;
    }
  }
  store<u32>(state, s0);
  store<u32>(state, s1, 4);
  store<u32>(state, s2, 8);
  store<u32>(state, s3, 12);
  store<i32>(nredo, k);
  return p;
}

/**
 * Where the heap may start: the end of the module's constant data (the libm tables above), which
 * build-wasm.mjs places from --memoryBase on, past the backend's control block.
 */
export function heapBase(): usize {
  return __heap_base;
}
