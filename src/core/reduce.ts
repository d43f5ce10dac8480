/**
 * Reducers put a run's outputs back together, in task order. Each takes the
 * stdout of every task (all succeeded) and returns the result text and value.
 */
export const REDUCERS = ['concat', 'lines', 'sum', 'json'] as const;
export type ReducerName = (typeof REDUCERS)[number];

export interface Reduced {
  /** The result as text, as written to `result.txt`. */
  text: string;
  /** The result as JSON, as written to `result.json`'s `value`. */
  value: unknown;
}

export class ReduceError extends Error {
  override readonly name = 'ReduceError';
}

export function reduce(name: ReducerName, outputs: { task: string; stdout: string }[]): Reduced {
  switch (name) {
    case 'concat': {
      const text = outputs.map((o) => o.stdout).join('');
      return { text, value: text };
    }
    case 'lines': {
      const lines = outputs.map((o) => o.stdout.replace(/\r?\n$/, ''));
      return { text: lines.join('\n') + '\n', value: lines };
    }
    case 'sum': {
      let total = 0;
      for (const o of outputs) {
        const t = o.stdout.trim();
        const n = Number(t);
        if (t === '' || !Number.isFinite(n)) {
          throw new ReduceError(`reduce "sum": task ${o.task} printed ${JSON.stringify(t.slice(0, 80))}, which is not a number`);
        }
        total += n;
      }
      return { text: `${total}\n`, value: total };
    }
    case 'json': {
      const value = outputs.map((o) => {
        try {
          return JSON.parse(o.stdout);
        } catch {
          throw new ReduceError(`reduce "json": task ${o.task} did not print valid JSON`);
        }
      });
      return { text: JSON.stringify(value, null, 2) + '\n', value };
    }
  }
}
