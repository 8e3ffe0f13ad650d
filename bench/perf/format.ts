/** Number formatting shared by the report and the run's machine notes. */

/** Fixed decimals, "n/a" for missing or non-finite values. */
export const f = (x: number | null | undefined, d = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));

/** Seconds with three significant-ish digits. */
export const fs3 = (x: number): string => (x < 0.1 ? x.toFixed(4) : x < 10 ? x.toFixed(3) : x.toFixed(1));

export const mmss = (s: number): string => {
  const r = Math.round(s);
  return `${Math.floor(r / 60)} min ${r % 60} s`;
};
