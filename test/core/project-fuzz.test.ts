/**
 * Property-based: random and mutated project files never crash or hang the
 * parser; it either returns a project or a ProjectError that names the file
 * and a JSON path.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProjectError } from '../../src/core/errors.js';
import { isValidId } from '../../src/core/ids.js';
import { parseProject } from '../../src/core/project.js';

function check(text: string): void {
  try {
    const p = parseProject('projects/fuzz.json', text);
    expect(p.tasks.length).toBeGreaterThan(0);
    for (const t of p.tasks) {
      expect(isValidId(t.id)).toBe(true);
      expect(t.argv.length).toBeGreaterThan(0);
      expect(t.timeoutMs).toBeGreaterThan(0);
    }
  } catch (err) {
    expect(err).toBeInstanceOf(ProjectError);
    const e = err as ProjectError;
    expect(e.problems.length).toBeGreaterThan(0);
    for (const p of e.problems) {
      expect(p.path.startsWith('$')).toBe(true);
      expect(p.message.length).toBeGreaterThan(0);
    }
    expect(e.message.startsWith('projects/fuzz.json: $')).toBe(true);
  }
}

const valid = [
  { project: 'hello', timeout: '60s', retries: 2, reduce: 'concat', tasks: [{ id: 'a', run: 'echo hello' }, { id: 'b', run: ['echo', 'x'] }] },
  { project: 'q12', nqueens: { n: 12 } },
  [{ cmd: 'echo ', id_projet: 0, id_task: '0', phrase: 'bonjour', url: '/x' }],
];

/** Replaces a random value somewhere in a document with another random value. */
function mutate(doc: unknown, path: number[], value: unknown): unknown {
  if (path.length === 0 || doc === null || typeof doc !== 'object') return value;
  const entries = Array.isArray(doc) ? doc.map((v, i) => [i, v] as const) : Object.entries(doc as Record<string, unknown>);
  if (!entries.length) return value;
  const [key, child] = entries[path[0]! % entries.length]!;
  const copy = (Array.isArray(doc) ? [...doc] : { ...(doc as object) }) as Record<string | number, unknown>;
  copy[key] = mutate(child, path.slice(1), value);
  return copy;
}

describe('parseProject under random input', () => {
  it('any JSON value', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => check(JSON.stringify(v))), { numRuns: 3000 });
  });

  it('any string', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), check), { numRuns: 3000 });
  });

  it('valid projects with one value replaced anywhere', () => {
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.array(fc.nat(), { maxLength: 5 }), fc.jsonValue({ maxDepth: 3 }), (doc, path, value) => check(JSON.stringify(mutate(doc, path, value)))),
      { numRuns: 3000 },
    );
  });

  it('valid project text cut or with a character changed', () => {
    fc.assert(
      fc.property(fc.constantFrom(...valid.map((v) => JSON.stringify(v))), fc.nat(), fc.string({ minLength: 1, maxLength: 1 }), (text, at, c) => {
        const i = at % text.length;
        check(text.slice(0, i));
        check(text.slice(0, i) + c + text.slice(i + 1));
      }),
      { numRuns: 3000 },
    );
  });

  it('deep nesting is refused before parsing, naming where it goes too deep', () => {
    // 400,000 levels in under 1 MiB: the nesting rule refuses it, naming the place, before any parser sees it.
    const text = '{"tasks": ' + '['.repeat(400_000) + ']'.repeat(400_000) + '}';
    expect(() => parseProject('projects/deep.json', text)).toThrow(new ProjectError('projects/deep.json', [{ path: '$', message: 'nested deeper than 16 levels (line 1, column 26)' }]));
  });
});
