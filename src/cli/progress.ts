/**
 * Progress of a run on the terminal: a bar redrawn in place when output is a
 * terminal, plain lines (one per change) when it is not.
 */
import { formatDuration } from '../core/duration.js';
import type { RunProgress } from '../client/api.js';

export interface ProgressView {
  update(view: RunProgress, elapsedMs: number): void;
  done(): void;
}


export function progressLine(view: RunProgress, elapsedMs: number): string {
  const p = view.progress;
  return `[${formatDuration(elapsedMs).padStart(6)}] ${view.run.id}: ${view.run.state}, ${p.done}/${p.total} tasks done${p.running ? `, ${p.running} running` : ''}${p.failed ? `, ${p.failed} failed` : ''}`;
}

export function progressBar(view: RunProgress, elapsedMs: number, width = 24): string {
  const p = view.progress;
  const filled = p.total ? Math.round((p.done / p.total) * width) : 0;
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  return `${view.run.id} [${bar}] ${p.done}/${p.total} done${p.failed ? `, ${p.failed} failed` : ''}${p.running ? `, ${p.running} running` : ''}  ${formatDuration(elapsedMs)}  ${view.run.state}`;
}

export function createProgress(out: NodeJS.WriteStream = process.stdout): ProgressView {
  if (out.isTTY) {
    let drawn = false;
    let last: { view: RunProgress; elapsed: number } | undefined;
    const draw = () => {
      if (!last) return;
      out.write(`\r\x1b[2K${progressBar(last.view, last.elapsed)}`);
      drawn = true;
    };
    // The clock keeps moving between changes.
    const started = Date.now();
    const tick = setInterval(() => {
      if (last) {
        last.elapsed += Date.now() - started - last.elapsed;
        draw();
      }
    }, 250);
    return {
      update(view, elapsedMs) {
        last = { view, elapsed: elapsedMs };
        draw();
      },
      done() {
        clearInterval(tick);
        if (drawn) out.write('\n');
      },
    };
  }
  let previous = '';
  return {
    update(view, elapsedMs) {
      const line = progressLine(view, elapsedMs);
      const key = line.replace(/^\[[^\]]*\] /, '');
      if (key !== previous) out.write(line + '\n');
      previous = key;
    },
    done() {},
  };
}
