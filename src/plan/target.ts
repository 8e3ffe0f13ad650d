/** A size target: `--target-bpw X` (bits per weight, as mlx-lm counts them) or `--target-size N[unit]`. */
export type SizeTarget = { bpw: number } | { bytes: number };

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Parse "5.2GB", "4.8GiB", "123456B" or a plain byte count; GB is decimal, GiB binary. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)(?:e(\d+))?\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? (m[3] || 'b').toLowerCase() : '';
  if (!m || !(unit in UNITS)) throw new Error(`cannot read size ${JSON.stringify(text)} (examples: 5.2GB, 4.8GiB, 123456B)`);
  const bytes = Math.floor(Number(m[1]) * 10 ** Number(m[2] ?? 0) * UNITS[unit]!);
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) throw new Error(`size ${JSON.stringify(text)} is not a positive byte count`);
  return bytes;
}

/** Byte budget of a target for a model of `params` written parameters: bpw·params/8, rounded down. */
export function targetBytes(target: SizeTarget, params: number): number {
  return 'bytes' in target ? target.bytes : Math.floor((target.bpw * params) / 8);
}

export function describeTarget(target: SizeTarget): string {
  return 'bytes' in target ? `${target.bytes.toLocaleString('en-US')} bytes` : `${target.bpw} bits per weight`;
}
