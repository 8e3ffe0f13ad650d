/**
 * An error about user input: always names the file (or tensor) and the problem, so the CLI can
 * print it as one line and exit non-zero.
 */
export class SwanError extends Error {
  constructor(
    readonly where: string,
    readonly problem: string,
  ) {
    super(`${where}: ${problem}`);
    this.name = 'SwanError';
  }
}
