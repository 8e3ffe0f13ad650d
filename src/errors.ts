/**
 * Characters a hostile file could use to drive the terminal or hide text in a message: C0 and C1
 * controls, DEL, the Unicode line/paragraph separators and the bidirectional controls.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `s` with every terminal-unsafe character written as \xNN (or \uNNNN above U+00FF): always one printable line. */
export function escapeControl(s: string): string {
  return s.replace(UNSAFE, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}

/**
 * An error about user input: always names the file (or tensor) and the problem, so the CLI can
 * print it as one line and exit non-zero. Both parts are escaped (escapeControl), since names and
 * parser messages come from the input.
 */
export class SwanError extends Error {
  readonly where: string;
  readonly problem: string;
  constructor(where: string, problem: string) {
    const w = escapeControl(where);
    const p = escapeControl(problem);
    super(`${w}: ${p}`);
    this.name = 'SwanError';
    this.where = w;
    this.problem = p;
  }
}
