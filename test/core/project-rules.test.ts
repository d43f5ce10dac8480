/**
 * The project file's rules, one by one, each with the exact message a user
 * reads: sizes and limits, the command length, unknown and missing fields,
 * JSON paths, nesting, the prototype's format.
 */
import { describe, expect, it } from 'vitest';
import { ProjectError } from '../../src/core/errors.js';
import { jsonPath, parseProject, PROJECT_LIMITS } from '../../src/core/project.js';
import { parseSize } from '../../src/core/size.js';

const problems = (text: string, file = 'projects/p.json') => {
  try {
    parseProject(file, text);
  } catch (e) {
    expect(e).toBeInstanceOf(ProjectError);
    return (e as ProjectError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected the project to be refused');
};
const withTasks = (extra: object, task: object = { id: 'a', run: 'true' }) => JSON.stringify({ ...extra, tasks: [task] });

describe('sizes', () => {
  it('read bytes, k, m and g (with or without b, any case, spaces around), and numbers as bytes', () => {
    expect(parseSize('512')).toBe(512);
    expect(parseSize(' 2 k ')).toBe(2048);
    expect(parseSize('2KB')).toBe(2048);
    expect(parseSize('1.5m')).toBe(1.5 * 1024 ** 2);
    expect(parseSize('1Mb')).toBe(1024 ** 2);
    expect(parseSize('1g')).toBe(1024 ** 3);
    // The spellings of flags and environment variables too: one parser for both.
    expect(parseSize('64MiB')).toBe(64 * 1024 ** 2);
    expect(parseSize('2 kib')).toBe(2048);
    expect(parseSize(2 ** 60)).toBeUndefined();
    expect(parseSize('3b')).toBe(3);
    expect(parseSize('0.5')).toBeUndefined();
    expect(parseSize('0')).toBeUndefined();
    expect(parseSize(4096.7)).toBe(4096);
    expect(parseSize(0)).toBeUndefined();
    expect(parseSize(-1)).toBeUndefined();
    expect(parseSize(Infinity)).toBeUndefined();
    for (const bad of ['', 'm', '1t', '-1m', '1 m b', 'x1m', '1m x', '.5m', '1.m', '1mm']) expect(parseSize(bad), bad).toBeUndefined();
  });
});

describe('limits a project asks for', () => {
  it('become bytes, nano-CPUs and a pids count', () => {
    expect(parseProject('projects/p.json', withTasks({ limits: { memory: '64m', cpus: 0.5, pids: 32 } })).limits).toEqual({ memoryBytes: 64 * 1024 ** 2, nanoCpus: 500_000_000, pids: 32 });
    expect(parseProject('projects/p.json', withTasks({ limits: { memory: 4 * 1024 * 1024 } })).limits).toEqual({ memoryBytes: 4 * 1024 * 1024 });
    expect(parseProject('projects/p.json', withTasks({ limits: { cpus: 2 } })).limits).toEqual({ nanoCpus: 2_000_000_000 });
    expect(parseProject('projects/p.json', withTasks({ limits: { pids: 8 } })).limits).toEqual({ pids: 8 });
    expect(parseProject('projects/p.json', withTasks({ limits: {} })).limits).toEqual({});
    expect(parseProject('projects/p.json', withTasks({})).limits).toBeUndefined();
  });
  it('are refused below their floors and past their ceilings', () => {
    expect(problems(withTasks({ limits: { memory: '3m' } }))).toEqual(['$.limits.memory: expected a size of at least 4m, such as "256m" or "1g"']);
    expect(problems(withTasks({ limits: { memory: 4 * 1024 * 1024 - 1 } }))).toEqual(['$.limits.memory: expected a size of at least 4m, such as "256m" or "1g"']);
    expect(problems(withTasks({ limits: { memory: 'lots' } }))).toEqual(['$.limits.memory: expected a size of at least 4m, such as "256m" or "1g"']);
    expect(problems(withTasks({ limits: { pids: 7 } }))[0]).toMatch(/^\$\.limits\.pids: /);
    expect(problems(withTasks({ limits: { cpus: 0 } }))[0]).toMatch(/^\$\.limits\.cpus: /);
    expect(problems(withTasks({ limits: { disk: '1g' } }))).toEqual(['$.limits: unknown field "disk"']);
  });
});

describe('commands', () => {
  it('may be as long as the limit, counting each argument and a separator, and no longer', () => {
    const max = PROJECT_LIMITS.commandChars;
    expect(() => parseProject('projects/p.json', withTasks({}, { id: 'a', run: 'x'.repeat(max) }))).not.toThrow();
    expect(problems(withTasks({}, { id: 'a', run: 'x'.repeat(max + 1) }))).toEqual([`$.tasks[0].run: command longer than ${max} characters`]);
    // Two arguments of (max/2 - 1) characters, plus one separator each: exactly max.
    expect(() => parseProject('projects/p.json', withTasks({}, { id: 'a', run: ['y'.repeat(max / 2 - 1), 'y'.repeat(max / 2 - 1)] }))).not.toThrow();
    expect(problems(withTasks({}, { id: 'a', run: ['y'.repeat(max / 2), 'y'.repeat(max / 2 - 1)] }))).toEqual([`$.tasks[0].run: command longer than ${max} characters`]);
    expect(problems(withTasks({}, { id: 'a', run: [] }))).toEqual(['$.tasks[0].run: must name a program']);
  });
});

describe('messages', () => {
  it('name unknown fields, one or several', () => {
    expect(problems(withTasks({ colour: 1 }))).toEqual(['$: unknown field "colour"']);
    expect(problems(withTasks({ colour: 1, size: 2 }))).toEqual(['$: unknown fields "colour", "size"']);
  });
  it('say a field is missing, and what was expected', () => {
    expect(problems(JSON.stringify({ tasks: [{ id: 'a' }] }))).toEqual(['$.tasks[0].run: required field is missing']);
    expect(problems(JSON.stringify({ nqueens: {} }))).toEqual(['$.nqueens.n: required field is missing (expected number)']);
    expect(problems(JSON.stringify({ tasks: [{ id: 'a', run: 'true', timeout: null }] }))[0]).toMatch(/^\$\.tasks\[0\]\.timeout: /);
  });
  it('write JSON paths as a reader would: dots for names, brackets for indexes and odd keys', () => {
    expect(jsonPath([])).toBe('$');
    expect(jsonPath(['tasks', 0, 'run'])).toBe('$.tasks[0].run');
    expect(jsonPath(['a b'])).toBe('$["a b"]');
    expect(jsonPath(['1x'])).toBe('$["1x"]');
    expect(jsonPath(['x1', '$y', '_z'])).toBe('$.x1.$y._z');
    expect(jsonPath(['a-'])).toBe('$["a-"]');
  });
  it('place bad JSON by line and column where the parser says where', () => {
    // Position 16 is the 2 after "b": line 3, its 6th character.
    expect(problems('{\n "a": 1,\n "b" 2}')).toEqual(['$: not valid JSON (line 3, column 6): Unexpected number in JSON at position 16']);
    expect(problems('{"a":1,}')).toEqual(['$: not valid JSON (line 1, column 8): Expected double-quoted property name in JSON at position 7']);
    expect(problems('{"tasks": x}')[0]).toMatch(/^\$: not valid JSON: Unexpected token 'x'/);
  });
  it('place nesting that is too deep, counting only brackets outside strings', () => {
    const deep = '{"a":' + '['.repeat(16) + ']'.repeat(16) + '}';
    expect(problems(deep)).toEqual(['$: nested deeper than 16 levels (line 1, column 21)']);
    const lines = '{\n"x": "[[[[[[[[[[[[[[[[[[[[\\"[[[[",\n"y":\n' + '['.repeat(15) + ']'.repeat(15) + ',\n"tasks": []}';
    expect(problems(lines).join('\n')).not.toMatch(/nested deeper/);
    const tooDeepLater = '{\n "tasks": [],\n "z": ' + '['.repeat(16) + ']'.repeat(16) + '}';
    // The outer object is level 1: the 16th bracket is level 17, on line 3 after ` "z": `.
    expect(problems(tooDeepLater)).toEqual(['$: nested deeper than 16 levels (line 3, column 22)']);
  });
  it('refuse a file past the size limit before reading it', () => {
    const big = JSON.stringify({ tasks: [{ id: 'a', run: 'true' }], description: 'é'.repeat(PROJECT_LIMITS.fileBytes / 2) });
    expect(problems(big)).toEqual([`$: file is ${Buffer.byteLength(big)} bytes; a project file may be at most ${PROJECT_LIMITS.fileBytes} bytes`]);
  });
});

describe('defaults', () => {
  it('name the project after its file, on the default worker, unless it says otherwise', () => {
    expect(parseProject('projects/sweep.json', withTasks({}))).toMatchObject({ name: 'sweep', worker: 'default', retries: 0, reduce: 'concat', format: 'tasks' });
    expect(parseProject('projects/sweep.json', withTasks({ project: 'other', worker: 'gpu' }))).toMatchObject({ name: 'other', worker: 'gpu' });
    expect(parseProject('projects/q.json', JSON.stringify({ nqueens: { n: 4 } }))).toMatchObject({ name: 'q', worker: 'default', reduce: 'sum', format: 'nqueens' });
  });
  it('read the prototype’s tasks: cmd split on runs of spaces, the phrase one argument', () => {
    const p = parseProject('projects/proto.json', JSON.stringify([{ cmd: '  echo   -n ', id_projet: 1, id_task: 7, phrase: 'hello  world', url: 'x' }]));
    expect(p).toMatchObject({ name: 'proto', format: 'prototype', worker: 'default', reduce: 'concat', retries: 0 });
    expect(p.tasks).toEqual([{ id: '7', argv: ['echo', '-n', 'hello  world'], timeoutMs: p.timeoutMs }]);
    expect(problems(JSON.stringify([{ cmd: 'echo', id_task: 1, phrase: 'a' }, { cmd: 'echo', id_task: '1', phrase: 'b' }]))).toEqual(['$[1].id_task: duplicate task id "1" (first used at $[0].id_task)']);
  });
});
