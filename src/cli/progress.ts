import cliProgress from 'cli-progress';
import { escapeControl } from '../errors.js';

/** A progress bar on stderr when it is a terminal (and not --quiet); silent otherwise. */
export function progressBar(label: string, enabled: boolean): { update(done: number, total: number, name: string): void; stop(): void } {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      // ETA from the recent rate (cli-progress's moving window); the tensors differ in size, so it settles after a few.
      format: `${label.padEnd(9)} {bar} {value}/{total} ETA {eta_formatted} {name}`,
      etaBuffer: 20,
      etaAsynchronousUpdate: false,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, name) {
      if (!started) {
        bar.start(total, 0, { name: '' });
        started = true;
      }
      bar.update(done, { name: escapeControl(name.length > 48 ? '…' + name.slice(-47) : name) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
