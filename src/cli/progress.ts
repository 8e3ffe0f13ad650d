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

/** A byte-count bar with speed and ETA (downloads, uploads), on stderr when it is a terminal. */
export function bytesBar(label: string, enabled: boolean): { update(done: number, total: number, name: string): void; stop(): void } {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label.padEnd(9)} {bar} {done}/{all} {speed} ETA {eta_formatted} {name}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const t0 = Date.now();
  let started = false;
  return {
    update(done, total, name) {
      if (!started) {
        bar.start(total, 0, { name: '', done: mb(0), all: mb(total), speed: '' });
        started = true;
      }
      const s = (Date.now() - t0) / 1000;
      bar.setTotal(total);
      bar.update(done, { name: escapeControl(name.length > 40 ? '…' + name.slice(-39) : name), done: mb(done), all: mb(total), speed: s > 0 ? `${mb(done / s)}/s` : '' });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
