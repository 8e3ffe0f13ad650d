/**
 * Seeded random numbers. Every random draw in swan comes from here, so the same seed gives the
 * same manifest and the same bytes on every platform.
 *
 * Generator: xoshiro128** seeded through splitmix32 (fast, 32-bit, well tested). Gaussians by
 * Box–Muller in float64.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** A generator for a named sub-stream, so results do not depend on processing order. */
  static forKey(seed: number, key: string): Rng {
    let h = 0x811c9dc5 ^ (seed >>> 0);
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
    return new Rng(h);
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    this.s3 >>>= 0;
    return result;
  }

  /**
   * out[start..end) = the next nextU32() values, in order. Same stream, ~8× faster: the state lives
   * in int32 locals for the loop (the fields hold values ≥ 2³¹, which V8 boxes on every step).
   */
  fillU32(out: Uint32Array, start = 0, end = out.length): Uint32Array {
    let s0 = this.s0 | 0, s1 = this.s1 | 0, s2 = this.s2 | 0, s3 = this.s3 | 0;
    for (let i = start; i < end; i++) {
      const x = Math.imul(s1, 5);
      out[i] = Math.imul((x << 7) | (x >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
    }
    this.s0 = s0 >>> 0;
    this.s1 = s1 >>> 0;
    this.s2 = s2 >>> 0;
    this.s3 = s3 >>> 0;
    return out;
  }

  /** The xoshiro128** state, for a kernel that continues this stream elsewhere (then setState). */
  getState(): Uint32Array {
    return Uint32Array.of(this.s0, this.s1, this.s2, this.s3);
  }

  setState(s: Uint32Array): void {
    [this.s0, this.s1, this.s2, this.s3] = [s[0]!, s[1]!, s[2]!, s[3]!];
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * out[i] = normal() · scale for every i: the same values as calling normal() in a loop, several
   * times faster (the 32-bit draws come from fillU32 in bulk; a pair takes exactly four of them
   * unless u = 0 is drawn, when the rest of the stream is read one draw at a time, as normal() does).
   * `pairs`, a native kernel (KernelBackend.normalPairs), computes the whole pairs faster still and
   * leaves to this code the few whose float32 values it cannot vouch for; the values are the same.
   */
  fillNormal(out: Float32Array, scale = 1, pairs?: NormalPairsKernel): Float32Array {
    const n = out.length;
    let i = 0;
    if (this.spare !== null && n > 0) {
      out[i++] = this.spare * scale;
      this.spare = null;
    }
    while (pairs && n - i >= 2) {
      const state = this.getState();
      const [done, listed] = pairs(state, out, i, (n - i) >> 1, scale, normalRedo);
      this.setState(state);
      for (let k = 0; k < listed; k++) {
        const o = i + 2 * normalRedo[3 * k]!;
        const r = Math.sqrt(-2 * Math.log(normalRedo[3 * k + 1]!));
        const v = normalRedo[3 * k + 2]!;
        out[o] = r * Math.cos(2 * Math.PI * v) * scale;
        out[o + 1] = r * Math.sin(2 * Math.PI * v) * scale;
      }
      i += 2 * done;
      // Stopped short with room left in redo: the next pair draws u = 0; this code redraws it.
      if (listed < normalRedo.length / 3 && n - i >= 2) i = this.normalPairsTs(out, i, 1, scale);
    }
    if (i < n) this.normalPairsTs(out, i, (n - i + 1) >> 1, scale);
    return out;
  }

  /** `count` pairs into out from i (the last value of the last pair to spare past the end); the new i. */
  private normalPairsTs(out: Float32Array, i: number, count: number, scale: number): number {
    const n = out.length;
    const buf = normalDraws;
    while (count > 0) {
      const pairs = Math.min(buf.length >> 2, count);
      count -= pairs;
      const filled = pairs * 4;
      this.fillU32(buf, 0, filled);
      let k = 0;
      const next = (): number => (k < filled ? buf[k++]! : this.nextU32());
      for (let p = 0; p < pairs; p++) {
        let u = 0;
        while (u === 0) u = ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
        const v = ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
        const r = Math.sqrt(-2 * Math.log(u));
        out[i++] = r * Math.cos(2 * Math.PI * v) * scale;
        const second = r * Math.sin(2 * Math.PI * v);
        if (i < n) out[i++] = second * scale;
        else this.spare = second;
      }
    }
    return i;
  }
}

/**
 * A native continuation of fillNormal's stream (KernelBackend.normalPairs): writes up to `pairs`
 * pairs into out from `offset`, advancing the xoshiro128** `state` in place over the pairs done; stops
 * before a pair that draws u = 0 or once redo is full. A pair it cannot compute to the same float32
 * values it lists in redo as (pair index, u, v). Returns [pairs done, pairs listed].
 */
export type NormalPairsKernel = (
  state: Uint32Array,
  out: Float32Array,
  offset: number,
  pairs: number,
  scale: number,
  redo: Float64Array,
) => [number, number];

/** Room for the pairs a NormalPairsKernel hands back (about one in a million is). */
const normalRedo = new Float64Array(3 * 256);

/** Scratch for fillNormal's bulk draws (4 per pair of normals). */
const normalDraws = new Uint32Array(4 * 4096);

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The fixed default seed: two runs without --seed give identical output. */
export const DEFAULT_SEED = 20260226;
