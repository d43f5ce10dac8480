import { describe, expect, it } from 'vitest';
import { ProjectError } from '../../src/core/errors.js';
import { parseProject } from '../../src/core/project.js';

function problems(file: string, text: string): string {
  try {
    parseProject(file, text);
  } catch (err) {
    expect(err).toBeInstanceOf(ProjectError);
    return (err as Error).message;
  }
  throw new Error('expected a ProjectError');
}

describe('parseProject', () => {
  it('reads the current shape, shell lines and argument lists', () => {
    const p = parseProject(
      'projects/hello.json',
      JSON.stringify({ project: 'hello', worker: 'default', timeout: '60s', retries: 2, reduce: 'concat', tasks: [{ id: 'a', run: 'echo hello' }, { id: 'b', run: ['echo', 'x'], timeout: '2s' }] }),
    );
    expect(p).toEqual({
      name: 'hello',
      format: 'tasks',
      worker: 'default',
      timeoutMs: 60_000,
      retries: 2,
      reduce: 'concat',
      tasks: [
        { id: 'a', argv: ['sh', '-c', 'echo hello'], timeoutMs: 60_000 },
        { id: 'b', argv: ['echo', 'x'], timeoutMs: 2_000 },
      ],
    });
  });

  it('expands the N-Queens generator into tasks that share half the board, reduced by sum', () => {
    const p = parseProject('projects/q12.json', '{"project": "q12", "nqueens": {"n": 12}}');
    expect(p.reduce).toBe('sum');
    expect(p.format).toBe('nqueens');
    // A small board's default: two tasks.
    expect(p.tasks).toHaveLength(2);
    expect(p.tasks[1]).toEqual({ id: '1', argv: ['node', 'nqueens.js', '12', expect.stringMatching(/^parts=0\.3\*2,/)], timeoutMs: 600_000 });
    const six = parseProject('projects/q12.json', '{"nqueens": {"n": 12, "tasks": 6}}');
    expect(six.tasks).toHaveLength(6);
    expect(six.tasks[3]).toEqual({ id: '3', argv: ['node', 'nqueens.js', '12', expect.stringMatching(/^parts=0\.5\*2,/)], timeoutMs: 600_000 });
  });

  it("keeps the prototype's array working: each element echoes its phrase, in order", () => {
    const p = parseProject(
      'projects/proto.json',
      JSON.stringify([
        { cmd: 'echo ', id_projet: 0, id_task: '0', phrase: 'la tache numero 0 dit bonjour au projet numero 0', url: '/home/test/env/projet/mgit_repo/tache_a_faire' },
        { cmd: 'echo ', id_projet: 0, id_task: 1, phrase: 'deux  espaces * et une étoile', url: '/x' },
      ]),
    );
    expect(p.format).toBe('prototype');
    expect(p.name).toBe('proto');
    expect(p.reduce).toBe('concat');
    expect(p.tasks.map((t) => t.id)).toEqual(['0', '1']);
    expect(p.tasks[0]!.argv).toEqual(['echo', 'la tache numero 0 dit bonjour au projet numero 0']);
    // The phrase is one argument: no shell splitting or globbing.
    expect(p.tasks[1]!.argv).toEqual(['echo', 'deux  espaces * et une étoile']);
  });

  it('names the file, the JSON path and the problem', () => {
    expect(problems('projects/a.json', JSON.stringify({ tasks: [{ id: 'x', run: 'ok' }, { id: 'y', run: 42 }] }))).toBe(
      'projects/a.json: $.tasks[1].run: expected a shell command string or an array of strings [program, ...args]',
    );
    expect(problems('projects/b.json', JSON.stringify({ tasks: [{ id: 'x/y', run: 'ok' }] }))).toContain('$.tasks[0].id: must be 1 to 64 characters');
    expect(problems('projects/c.json', JSON.stringify({ tasks: [{ id: 'a', run: 'x' }], timeout: 'soon' }))).toContain('$.timeout: expected a duration');
    expect(problems('projects/d.json', JSON.stringify({ tasks: [{ id: 'a', run: 'x', comand: 'typo' }] }))).toBe('projects/d.json: $.tasks[0]: unknown field "comand"');
    expect(problems('projects/e.json', JSON.stringify({ nqueens: { n: 40 } }))).toContain('$.nqueens.n:');
    expect(problems('projects/f.json', JSON.stringify({ tasks: [] }))).toBe('projects/f.json: $.tasks: a project needs at least one task');
    expect(problems('projects/g.json', JSON.stringify({ project: 'nothing' }))).toBe('projects/g.json: $: expected "tasks" (a list of {"id", "run"}) or "nqueens" ({"n": N})');
    expect(problems('projects/k.json', JSON.stringify({ tasks: [{ id: 'a' }] }))).toBe('projects/k.json: $.tasks[0].run: required field is missing');
    expect(problems('projects/l.json', JSON.stringify([{ cmd: 'echo', id_task: '0' }]))).toBe('projects/l.json: $[0].phrase: required field is missing (expected string)');
    expect(problems('projects/h.json', '"just a string"')).toContain('$: expected an object');
    expect(problems('projects/i.json', JSON.stringify([{ cmd: 'echo', id_task: '0' }]))).toContain('$[0].phrase:');
    expect(problems('projects/j.json', JSON.stringify({ tasks: [{ id: 'a', run: 'x' }], reduce: 'avg' }))).toContain('$.reduce:');
  });

  it('takes a timeout of up to 24 h, and refuses a longer one naming the rule', () => {
    expect(parseProject('projects/t.json', JSON.stringify({ timeout: '24h', tasks: [{ id: 'a', run: 'true' }] })).tasks[0]!.timeoutMs).toBe(24 * 3_600_000);
    const problems = (text: object) => {
      try {
        parseProject('projects/t.json', JSON.stringify(text));
        return [];
      } catch (err) {
        return (err as ProjectError).problems;
      }
    };
    expect(problems({ timeout: '25h', tasks: [{ id: 'a', run: 'true' }] })).toEqual([{ path: '$.timeout', message: 'at most 24h' }]);
    expect(problems({ tasks: [{ id: 'a', run: 'true', timeout: '1441m' }] })).toEqual([{ path: '$.tasks[0].timeout', message: 'at most 24h' }]);
  });

  it('says where JSON syntax breaks', () => {
    expect(problems('projects/bad.json', '{\n  "tasks": [\n    {"id": "a",}\n  ]\n}')).toMatch(/^projects\/bad\.json: \$: not valid JSON \(line 3, column \d+\)/);
  });

  it('refuses duplicate task ids, pointing at the second one', () => {
    expect(problems('projects/dup.json', JSON.stringify({ tasks: [{ id: 'a', run: 'x' }, { id: 'b', run: 'x' }, { id: 'a', run: 'y' }] }))).toBe(
      'projects/dup.json: $.tasks[2].id: duplicate task id "a" (first used at $.tasks[0].id)',
    );
    expect(problems('projects/dup.json', JSON.stringify([{ cmd: 'echo', id_task: '0', phrase: 'a' }, { cmd: 'echo', id_task: 0, phrase: 'b' }]))).toContain('$[1].id_task: duplicate task id "0"');
  });
});

describe('out: files a task may write under /out', () => {
  const parse = (p: object) => parseProject('projects/o.json', JSON.stringify(p));
  const caps = (p: object) => Object.fromEntries(parse(p).tasks.map((t) => [t.id, t.outBytes]));

  it('is off unless asked for; true is 64 MiB; a size is that size; the project caps its tasks', () => {
    expect(caps({ tasks: [{ id: 'a', run: 'x' }] })).toEqual({ a: undefined });
    expect(caps({ tasks: [{ id: 'a', run: 'x', out: true }, { id: 'b', run: 'x', out: '16m' }, { id: 'c', run: 'x', out: 1000 }, { id: 'd', run: 'x', out: false }] })).toEqual({ a: 64 * 1024 * 1024, b: 16 * 1024 * 1024, c: 1000, d: undefined });
    expect(caps({ out: '1m', tasks: [{ id: 'a', run: 'x' }, { id: 'b', run: 'x', out: true }, { id: 'c', run: 'x', out: '2m' }, { id: 'd', run: 'x', out: '1k' }, { id: 'e', run: 'x', out: false }] })).toEqual({ a: 1 << 20, b: 1 << 20, c: 1 << 20, d: 1024, e: undefined });
    expect(caps({ out: true, tasks: [{ id: 't-{n}', run: 'x', matrix: { n: [1, 2] } }] })).toEqual({ 't-1': 64 << 20, 't-2': 64 << 20 });
    expect(caps({ out: '2m', nqueens: { n: 6, tasks: 2 } })).toEqual({ 0: 2 << 20, 1: 2 << 20 });
  });

  it('is refused past 64m or when it is not a size, naming where', () => {
    const problems = (p: object) => {
      try {
        parse(p);
      } catch (err) {
        return (err as ProjectError).problems;
      }
      throw new Error('expected a ProjectError');
    };
    expect(problems({ tasks: [{ id: 'a', run: 'x', out: '65m' }] })).toEqual([{ path: '$.tasks[0].out', message: 'expected true, false or a size of at most 64m, such as "16m"' }]);
    expect(problems({ out: 'lots', tasks: [{ id: 'a', run: 'x' }] })).toEqual([{ path: '$.out', message: 'expected true, false or a size of at most 64m, such as "16m"' }]);
    expect(problems({ tasks: [{ id: 'a', run: 'x', out: null }] })).toEqual([{ path: '$.tasks[0].out', message: 'expected true, false or a size such as "16m"' }]);
  });
});
