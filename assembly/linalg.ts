// Small float64 linear algebra for the WebAssembly backend (AssemblyScript), the l×l routines of
// src/kernels/linalg.ts. n×n row-major float64 matrices at byte offsets into the shared memory;
// they run on the calling thread only, so results never depend on the thread count.
//
// cholesky, invertUpper and mulUpper do the TypeScript's operations in the TypeScript's order, two
// columns at a time with f64x2 (separate mul and add/sub, never a fused multiply-add), so they give
// the same bits as the TypeScript. tridiagonalize sums its dot products in two lanes, so its
// results may differ from the TypeScript's in the last bits.

/**
 * In place: a holds G's upper triangle (+ shift already on the diagonal; the lower triangle zero);
 * on success a holds the upper R with RᵀR = G and 1 is returned, 0 when a pivot is not positive or
 * not finite (as linalg.ts cholesky).
 */
export function cholesky(a: usize, n: i32): i32 {
  const rowB = <usize>n << 3;
  // Two steps j, j+1 at a time: row j+1 gets step j's update and becomes pivot row j+1; then every
  // later row takes both updates in one sweep, in the same order (j first) as one step at a time.
  let j = 0;
  for (; j + 1 < n; j += 2) {
    const rj = a + <usize>j * rowB, rj1 = rj + rowB;
    if (!pivotRow(rj, j, n)) return 0;
    const g = load<f64>(rj + (<usize>(j + 1) << 3));
    if (g != 0) axpyNeg(rj1, rj, g, j + 1, n);
    if (!pivotRow(rj1, j + 1, n)) return 0;
    for (let k = j + 2; k < n; k++) {
      const rk = a + <usize>k * rowB;
      const f0 = load<f64>(rj + (<usize>k << 3)), f1 = load<f64>(rj1 + (<usize>k << 3));
      if (f0 != 0 && f1 != 0) axpy2Neg(rk, rj, rj1, f0, f1, k, n);
      else if (f0 != 0) axpyNeg(rk, rj, f0, k, n);
      else if (f1 != 0) axpyNeg(rk, rj1, f1, k, n);
    }
  }
  if (j < n && !pivotRow(a + <usize>j * rowB, j, n)) return 0;
  return 1;
}

/** Row j of the Cholesky factor from its updated pivot: √pivot, then the rest of the row scaled; 0 on a bad pivot. */
@inline function pivotRow(rj: usize, j: i32, n: i32): i32 {
  const piv = load<f64>(rj + (<usize>j << 3));
  if (!(piv > 0) || !isFinite(piv)) return 0;
  const d = Math.sqrt(piv);
  store<f64>(rj + (<usize>j << 3), d);
  const inv = 1 / d;
  for (let i = j + 1; i < n; i++) {
    const p = rj + (<usize>i << 3);
    store<f64>(p, load<f64>(p) * inv);
  }
  return 1;
}

/** y[i] = (y[i] − f0·x0[i]) − f1·x1[i] for i in [from, to). */
@inline function axpy2Neg(y: usize, x0: usize, x1: usize, f0: f64, f1: f64, from: i32, to: i32): void {
  const f0v = f64x2.splat(f0), f1v = f64x2.splat(f1);
  let i = from;
  for (; i + 2 <= to; i += 2) {
    const o = <usize>i << 3;
    const t = f64x2.sub(v128.load(y + o), f64x2.mul(f0v, v128.load(x0 + o)));
    v128.store(y + o, f64x2.sub(t, f64x2.mul(f1v, v128.load(x1 + o))));
  }
  if (i < to) {
    const o = <usize>i << 3;
    store<f64>(y + o, load<f64>(y + o) - f0 * load<f64>(x0 + o) - f1 * load<f64>(x1 + o));
  }
}

/** y[i] = (y[i] + f0·x0[i]) + f1·x1[i] for i in [from, to). */
@inline function axpy2(y: usize, x0: usize, x1: usize, f0: f64, f1: f64, from: i32, to: i32): void {
  const f0v = f64x2.splat(f0), f1v = f64x2.splat(f1);
  let i = from;
  for (; i + 2 <= to; i += 2) {
    const o = <usize>i << 3;
    const t = f64x2.add(v128.load(y + o), f64x2.mul(f0v, v128.load(x0 + o)));
    v128.store(y + o, f64x2.add(t, f64x2.mul(f1v, v128.load(x1 + o))));
  }
  if (i < to) {
    const o = <usize>i << 3;
    store<f64>(y + o, load<f64>(y + o) + f0 * load<f64>(x0 + o) + f1 * load<f64>(x1 + o));
  }
}

/** y[i] -= f·x[i] for i in [from, to) (float64 arrays at y, x). */
@inline function axpyNeg(y: usize, x: usize, f: f64, from: i32, to: i32): void {
  const fv = f64x2.splat(f);
  let i = from;
  for (; i + 2 <= to; i += 2) {
    const o = <usize>i << 3;
    v128.store(y + o, f64x2.sub(v128.load(y + o), f64x2.mul(fv, v128.load(x + o))));
  }
  if (i < to) {
    const o = <usize>i << 3;
    store<f64>(y + o, load<f64>(y + o) - f * load<f64>(x + o));
  }
}

/** y[i] += f·x[i] for i in [from, to). */
@inline function axpy(y: usize, x: usize, f: f64, from: i32, to: i32): void {
  const fv = f64x2.splat(f);
  let i = from;
  for (; i + 2 <= to; i += 2) {
    const o = <usize>i << 3;
    v128.store(y + o, f64x2.add(v128.load(y + o), f64x2.mul(fv, v128.load(x + o))));
  }
  if (i < to) {
    const o = <usize>i << 3;
    store<f64>(y + o, load<f64>(y + o) + f * load<f64>(x + o));
  }
}

/**
 * x = r⁻¹ for an upper-triangular r (x zero on entry). Row i of x from the rows below it:
 * x[i][j] = −(Σ_{k=i+1..j} r[i][k]·x[k][j]) / r[i][i], the sum in increasing k as in linalg.ts.
 */
export function invertUpper(r: usize, x: usize, n: i32): void {
  const rowB = <usize>n << 3;
  for (let i = n - 1; i >= 0; i--) {
    const ri = r + <usize>i * rowB;
    const xi = x + <usize>i * rowB;
    // Row i of x (zero so far) accumulates the sums first.
    // Terms k and k+1 in one sweep (k+1 has no term in column k), k ascending per element.
    let k = i + 1;
    for (; k + 1 < n; k += 2) {
      const xk = x + <usize>k * rowB;
      const f0 = load<f64>(ri + (<usize>k << 3)), f1 = load<f64>(ri + (<usize>(k + 1) << 3));
      const p = xi + (<usize>k << 3);
      store<f64>(p, load<f64>(p) + f0 * load<f64>(xk + (<usize>k << 3)));
      axpy2(xi, xk, xk + rowB, f0, f1, k + 1, n);
    }
    if (k < n) axpy(xi, x + <usize>k * rowB, load<f64>(ri + (<usize>k << 3)), k, n);
    const rii = load<f64>(ri + (<usize>i << 3));
    for (let j = i + 1; j < n; j++) {
      const p = xi + (<usize>j << 3);
      store<f64>(p, -load<f64>(p) / rii);
    }
    store<f64>(xi + (<usize>i << 3), 1 / rii);
  }
}

/** c = a·b for upper-triangular a, b (c zero on entry), as linalg.ts mulUpper. */
export function mulUpper(a: usize, b: usize, c: usize, n: i32): void {
  const rowB = <usize>n << 3;
  for (let i = 0; i < n; i++) {
    const ai = a + <usize>i * rowB;
    const ci = c + <usize>i * rowB;
    for (let k = i; k < n; k++) {
      const f = load<f64>(ai + (<usize>k << 3));
      if (f == 0) continue;
      axpy(ci, b + <usize>k * rowB, f, k, n);
    }
  }
}

/** Σ x[i]·y[i] for i in [from, to), in two lanes. */
@inline function dot(x: usize, y: usize, from: i32, to: i32): f64 {
  let acc = f64x2.splat(0);
  let i = from;
  for (; i + 2 <= to; i += 2) {
    const o = <usize>i << 3;
    acc = f64x2.add(acc, f64x2.mul(v128.load(x + o), v128.load(y + o)));
  }
  let s = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
  if (i < to) s += load<f64>(x + (<usize>i << 3)) * load<f64>(y + (<usize>i << 3));
  return s;
}

/**
 * Householder reduction of the symmetric a (n×n, destroyed) to tridiagonal form, as linalg.ts
 * symmetricEigenvalues: diagonal into d, off-diagonal into e (e[n−1] = 0). v and p: n floats of work.
 */
export function tridiagonalize(a: usize, n: i32, d: usize, e: usize, v: usize, p: usize): void {
  const rowB = <usize>n << 3;
  for (let k = 0; k < n - 2; k++) {
    const rk = a + <usize>k * rowB;
    const k1 = k + 1;
    const norm2 = dot(rk, rk, k1, n);
    store<f64>(d + (<usize>k << 3), load<f64>(rk + (<usize>k << 3)));
    if (norm2 == 0) {
      store<f64>(e + (<usize>k << 3), 0);
      continue;
    }
    const x0 = load<f64>(rk + (<usize>k1 << 3));
    const norm = Math.sqrt(norm2);
    const alpha = x0 >= 0 ? -norm : norm;
    store<f64>(e + (<usize>k << 3), alpha);
    memory.copy(v + (<usize>k1 << 3), rk + (<usize>k1 << 3), <usize>(n - k1) << 3);
    store<f64>(v + (<usize>k1 << 3), x0 - alpha);
    const beta = 2 / (norm2 - 2 * alpha * x0 + alpha * alpha);
    let pv: f64 = 0;
    for (let i = k1; i < n; i++) {
      const s = dot(a + <usize>i * rowB, v, k1, n) * beta;
      store<f64>(p + (<usize>i << 3), s);
      pv += s * load<f64>(v + (<usize>i << 3));
    }
    const kk = 0.5 * beta * pv;
    axpyNeg(p, v, kk, k1, n);
    // A₂₂ ← A₂₂ − v·wᵀ − w·vᵀ (w in p).
    for (let i = k1; i < n; i++) {
      const ri = a + <usize>i * rowB;
      const vi = load<f64>(v + (<usize>i << 3)), wi = load<f64>(p + (<usize>i << 3));
      const viv = f64x2.splat(vi), wiv = f64x2.splat(wi);
      let j = k1;
      for (; j + 2 <= n; j += 2) {
        const o = <usize>j << 3;
        const upd = f64x2.add(f64x2.mul(viv, v128.load(p + o)), f64x2.mul(wiv, v128.load(v + o)));
        v128.store(ri + o, f64x2.sub(v128.load(ri + o), upd));
      }
      if (j < n) {
        const o = <usize>j << 3;
        store<f64>(ri + o, load<f64>(ri + o) - (vi * load<f64>(p + o) + wi * load<f64>(v + o)));
      }
    }
  }
  if (n >= 2) {
    store<f64>(d + (<usize>(n - 2) << 3), load<f64>(a + <usize>(n - 2) * rowB + (<usize>(n - 2) << 3)));
    store<f64>(e + (<usize>(n - 2) << 3), load<f64>(a + <usize>(n - 2) * rowB + (<usize>(n - 1) << 3)));
  }
  store<f64>(d + (<usize>(n - 1) << 3), load<f64>(a + <usize>(n - 1) * rowB + (<usize>(n - 1) << 3)));
  store<f64>(e + (<usize>(n - 1) << 3), 0);
}

/**
 * One chunk of linalg.ts gramF64: g (s4×s4) += the 4×4 tiles on and below the diagonal of VᵀV for a
 * chunk v of kc rows of s4 floats (p-major: v[p·s4 + i] is element p of vector i; s4 a multiple of
 * 4). Each tile sums p in order from zero and is then added to g, as the TypeScript does, so the
 * bits are the same: here two columns of the tile per f64x2 lane pair.
 */
export function gramChunk(v: usize, s4: i32, kc: i32, g: usize): void {
  const rowB = <usize>s4 << 3;
  const end = v + <usize>kc * rowB;
  for (let ib = 0; ib < s4; ib += 4) {
    const ao = <usize>ib << 3;
    for (let jb = 0; jb <= ib; jb += 4) {
      const bo = <usize>jb << 3;
      let x0 = f64x2.splat(0), y0 = x0, x1 = x0, y1 = x0, x2 = x0, y2 = x0, x3 = x0, y3 = x0;
      for (let pp = v; pp < end; pp += rowB) {
        const b01 = v128.load(pp + bo), b23 = v128.load(pp + bo, 16);
        let a = v128.load64_splat(pp + ao);
        x0 = f64x2.add(x0, f64x2.mul(a, b01)); y0 = f64x2.add(y0, f64x2.mul(a, b23));
        a = v128.load64_splat(pp + ao, 8);
        x1 = f64x2.add(x1, f64x2.mul(a, b01)); y1 = f64x2.add(y1, f64x2.mul(a, b23));
        a = v128.load64_splat(pp + ao, 16);
        x2 = f64x2.add(x2, f64x2.mul(a, b01)); y2 = f64x2.add(y2, f64x2.mul(a, b23));
        a = v128.load64_splat(pp + ao, 24);
        x3 = f64x2.add(x3, f64x2.mul(a, b01)); y3 = f64x2.add(y3, f64x2.mul(a, b23));
      }
      let o = g + <usize>ib * rowB + bo;
      v128.store(o, f64x2.add(v128.load(o), x0)); v128.store(o, f64x2.add(v128.load(o, 16), y0), 16); o += rowB;
      v128.store(o, f64x2.add(v128.load(o), x1)); v128.store(o, f64x2.add(v128.load(o, 16), y1), 16); o += rowB;
      v128.store(o, f64x2.add(v128.load(o), x2)); v128.store(o, f64x2.add(v128.load(o, 16), y2), 16); o += rowB;
      v128.store(o, f64x2.add(v128.load(o), x3)); v128.store(o, f64x2.add(v128.load(o, 16), y3), 16);
    }
  }
}
