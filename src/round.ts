/**
 * Rounding to an integer with the tie rules swan has to reproduce bit for bit. JS `Math.round`
 * rounds halves toward +∞, which matches neither.
 */

/** Round half away from zero (C `round`, Metal `round`). For a float32 x, |x| + 0.5 is exact in double. */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(0.5 - x) : Math.floor(x + 0.5);
}

/** Round half to even (`std::rint` in the default rounding mode, torch.round, numpy.round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // halves go up
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
