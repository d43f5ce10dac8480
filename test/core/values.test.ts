/**
 * The core's small value functions, each pinned to its exact output: the
 * reducers (a run's result file is compared byte for byte by its users),
 * durations, the N-Queens split, URL credentials, Serial's ordering.
 */
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { NQUEENS_KNOWN, NQUEENS_MAX_N, nqueensParts, nqueensTasks } from '../../src/core/nqueens.js';
import { reduce, ReduceError } from '../../src/core/reduce.js';
import { sameSecret } from '../../src/core/same-secret.js';
import { Serial } from '../../src/core/serial.js';
import { redactUrl, urlPassword } from '../../src/core/url-credentials.js';
import { ConflictError, MessageError, ProjectError, RequeueError, retryOnConflict, ServiceUnavailableError, SizeLimitError, TransitionError } from '../../src/core/errors.js';
import { allFinal, assertRunTransition, canRunTransition, isRunFinal, progress, RUN_STATES, type RunRecord } from '../../src/core/run.js';
import { DEFAULT_SETTINGS, needsLease, prefixedQueues, retryDelay, userQueueNamespace } from '../../src/core/settings.js';
import { assertTransition, canTransition, isFinal, TASK_STATES, type TaskRecord } from '../../src/core/task.js';
import { commitMessage, parseTrailers, transitionSubject } from '../../src/core/transition.js';

const out = (...stdouts: string[]) => stdouts.map((stdout, i) => ({ task: `t${i}`, stdout }));

describe('reducers', () => {
  it('concat joins outputs as printed, in task order', () => {
    expect(reduce('concat', out('a\n', 'b', 'c\n'))).toEqual({ text: 'a\nbc\n', value: 'a\nbc\n' });
    expect(reduce('concat', [])).toEqual({ text: '', value: '' });
  });
  it('lines keeps one line per task, dropping one trailing newline (LF or CRLF) and ending with one', () => {
    expect(reduce('lines', out('a\n', 'b\r\n', 'c', 'd\n\n'))).toEqual({ text: 'a\nb\nc\nd\n\n', value: ['a', 'b', 'c', 'd\n'] });
    expect(reduce('lines', out('x\ny'))).toEqual({ text: 'x\ny\n', value: ['x\ny'] });
    expect(reduce('lines', out('  a  \n')).value).toEqual(['  a  ']);
  });
  it('sum adds numbers printed with spaces around, and its text ends with a newline', () => {
    expect(reduce('sum', out(' 4\n', '10', '-1.5\n'))).toEqual({ text: '12.5\n', value: 12.5 });
    expect(reduce('sum', out('0'))).toEqual({ text: '0\n', value: 0 });
    expect(reduce('sum', [])).toEqual({ text: '0\n', value: 0 });
  });
  it('sum names the task and what it printed, cut at 80 characters, when it is not a number', () => {
    expect(() => reduce('sum', out('1', 'twelve\n'))).toThrow(new ReduceError('reduce "sum": task t1 printed "twelve", which is not a number'));
    expect(() => reduce('sum', out('\n'))).toThrow('reduce "sum": task t0 printed "", which is not a number');
    expect(() => reduce('sum', out('Infinity'))).toThrow('printed "Infinity"');
    expect(() => reduce('sum', out('NaN'))).toThrow(ReduceError);
    expect(() => reduce('sum', out(`${'9'.repeat(400)}`))).toThrow(`printed "${'9'.repeat(80)}", which`);
    expect(() => reduce('sum', out('x'.repeat(200)))).toThrow(`printed "${'x'.repeat(80)}", which`);
  });
  it('json parses each output into an array, written indented with a newline', () => {
    expect(reduce('json', out('{"a":1}', ' [2] \n'))).toEqual({ text: '[\n  {\n    "a": 1\n  },\n  [\n    2\n  ]\n]\n', value: [{ a: 1 }, [2]] });
    expect(() => reduce('json', out('1', '{'))).toThrow(new ReduceError('reduce "json": task t1 did not print valid JSON'));
  });
  it('errors are ReduceErrors by name', () => {
    try {
      reduce('json', out('nope'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ReduceError);
      expect((e as Error).name).toBe('ReduceError');
    }
  });
});

describe('durations', () => {
  it('parse every unit, with spaces and decimals, bare numbers as seconds', () => {
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration(' 1.5 m ')).toBe(90_000);
    expect(parseDuration('2')).toBe(2000);
    expect(parseDuration('0.5')).toBe(500);
    expect(parseDuration('1ms')).toBe(1);
    expect(parseDuration('1.6ms')).toBe(2);
    expect(parseDuration(0.0014)).toBe(1);
    expect(parseDuration(0)).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
    expect(parseDuration(Infinity)).toBeUndefined();
    expect(parseDuration(NaN)).toBeUndefined();
  });
  it('refuse anything else', () => {
    for (const bad of ['', ' ', 's', '1d', '-1s', '1 s x', 'x1s', '1s1', '.5s', '1.s', '1e3']) expect(parseDuration(bad), bad).toBeUndefined();
  });
  it('format under a minute with two decimals, above as minutes and padded seconds', () => {
    expect(formatDuration(0)).toBe('0.00s');
    expect(formatDuration(59_994)).toBe('59.99s');
    expect(formatDuration(60_000)).toBe('1m00s');
    expect(formatDuration(61_499)).toBe('1m01s');
    expect(formatDuration(61_500)).toBe('1m02s');
    expect(formatDuration(3_725_000)).toBe('62m05s');
  });
});

describe('N-Queens', () => {
  it('searches half the board, one row deep for small boards and two from n = 10, dealt to tasks in a snake order', () => {
    expect(nqueensParts(4)).toEqual(['0*2', '1*2']);
    expect(nqueensParts(5)).toEqual(['0*2', '1*2', '2']);
    expect(nqueensTasks(4)).toEqual([0, 1].map((c) => ({ id: String(c), argv: ['node', 'nqueens.js', '4', `parts=${c}*2`] })));
    expect(nqueensTasks(1)).toEqual([{ id: '0', argv: ['node', 'nqueens.js', '1', 'parts=0'] }]);
    // Two rows deep: every second-row column that the first-row queen does not attack.
    expect(nqueensParts(10).filter((p) => p.startsWith('0.'))).toEqual(['0.2*2', '0.3*2', '0.4*2', '0.5*2', '0.6*2', '0.7*2', '0.8*2', '0.9*2']);
    expect(nqueensParts(11).filter((p) => p.startsWith('5.'))).toEqual(['5.0', '5.1', '5.2', '5.3', '5.7', '5.8', '5.9', '5.10']);
    const tasks = nqueensTasks(16, 3);
    expect(tasks.map((t) => t.id)).toEqual(['0', '1', '2']);
    const dealt = tasks.map((t) => t.argv[3]!.slice('parts='.length).split(','));
    expect(dealt.flat().sort()).toEqual(nqueensParts(16).sort());
    expect(dealt[0]!.slice(0, 3)).toEqual(['0.2*2', '0.7*2', '0.8*2']);
    expect(Math.max(...dealt.map((d) => d.length)) - Math.min(...dealt.map((d) => d.length))).toBeLessThanOrEqual(1);
    // Unless the project says, tasks of about three million solutions searched each: at least 2, at most 8.
    expect([4, 8, 12, 15, 16, 17, 18].map((n) => nqueensTasks(n).length)).toEqual([2, 2, 2, 2, 2, 8, 8]);
    expect(nqueensTasks(1)).toHaveLength(1);
    expect(nqueensTasks(3, 100)).toHaveLength(2);
    expect(NQUEENS_MAX_N).toBe(18);
    expect(NQUEENS_KNOWN[8]).toBe(92);
    expect(NQUEENS_KNOWN[NQUEENS_MAX_N]).toBe(666090624);
  });
});

describe('URL credentials', () => {
  it('finds a password, decoded, and hides it in a URL', () => {
    expect(urlPassword('amqp://guest:s%40cret@127.0.0.1:5672/vh')).toBe('s@cret');
    expect(urlPassword('amqp://guest@127.0.0.1')).toBeUndefined();
    expect(urlPassword('amqp://guest:@127.0.0.1')).toBeUndefined();
    expect(urlPassword('amqp://127.0.0.1')).toBeUndefined();
    expect(redactUrl('amqp://guest:s%40cret@127.0.0.1:5672/vh')).toBe('amqp://guest:***@127.0.0.1:5672/vh');
    expect(redactUrl('amqp://127.0.0.1:5672')).toBe('amqp://127.0.0.1:5672');
  });
  it('compares secrets of any length', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abc', 'abd')).toBe(false);
    expect(sameSecret('abc', 'abcd')).toBe(false);
    expect(sameSecret('', '')).toBe(true);
  });
});

describe('Serial', () => {
  it('runs steps one at a time in order, and a failed step does not stop the next', async () => {
    const serial = new Serial();
    const seen: string[] = [];
    let release!: () => void;
    const first = serial.run(async () => {
      seen.push('1 start');
      await new Promise<void>((r) => (release = r));
      seen.push('1 end');
      return 1;
    });
    const second = serial.run(async () => {
      seen.push('2');
      throw new Error('two');
    });
    const third = serial.run(async () => {
      seen.push('3');
      return 3;
    });
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['1 start']);
    release();
    expect(await first).toBe(1);
    await expect(second).rejects.toThrow('two');
    expect(await third).toBe(3);
    expect(seen).toEqual(['1 start', '1 end', '2', '3']);
    await serial.idle();
  });
  it('idle waits for every step asked for so far', async () => {
    const serial = new Serial();
    let done = false;
    void serial.run(async () => {
      await new Promise((r) => setTimeout(r, 5));
      done = true;
    });
    await serial.idle();
    expect(done).toBe(true);
  });
});

describe('the task state machine', () => {
  it('allows exactly the transitions of its diagram', () => {
    const allowed = new Set(['queued>running', 'queued>succeeded', 'queued>cancelled', 'running>running', 'running>succeeded', 'running>failed', 'running>cancelled', 'failed>queued', 'failed>cancelled', 'waiting>queued', 'waiting>skipped', 'waiting>cancelled']);
    for (const from of TASK_STATES) {
      for (const to of TASK_STATES) {
        expect(canTransition(from, to), `${from} -> ${to}`).toBe(allowed.has(`${from}>${to}`));
        if (allowed.has(`${from}>${to}`)) expect(() => assertTransition('r/t', from, to)).not.toThrow();
        else expect(() => assertTransition('r/t', from, to)).toThrow(new TransitionError(`r/t: ${from} -> ${to} is not a transition a task can make`));
      }
    }
  });
  it('calls a task final once it succeeded, was cancelled, or failed with no attempt left', () => {
    expect(isFinal({ state: 'succeeded', attempts: 1, maxAttempts: 3 })).toBe(true);
    expect(isFinal({ state: 'cancelled', attempts: 0, maxAttempts: 3 })).toBe(true);
    expect(isFinal({ state: 'failed', attempts: 2, maxAttempts: 3 })).toBe(false);
    expect(isFinal({ state: 'failed', attempts: 3, maxAttempts: 3 })).toBe(true);
    expect(isFinal({ state: 'failed', attempts: 4, maxAttempts: 3 })).toBe(true);
    expect(isFinal({ state: 'running', attempts: 3, maxAttempts: 3 })).toBe(false);
    expect(isFinal({ state: 'queued', attempts: 0, maxAttempts: 1 })).toBe(false);
    expect(isFinal({ state: 'waiting', attempts: 0, maxAttempts: 1 })).toBe(false);
    expect(isFinal({ state: 'skipped', attempts: 0, maxAttempts: 1 })).toBe(true);
  });
});

describe('commit messages', () => {
  it('have a one-line subject, an optional body, and trailers without empty values or line breaks', () => {
    const message = commitMessage('r/t: queued -> running\n(x)', { 'Todo-Commit': 'abc', Image: '', 'Worker-Host': 'h  1\nb', Attempt: undefined }, 'body text\n\n');
    expect(message).toBe('r/t: queued -> running (x)\n\nbody text\n\nTodo-Commit: abc\nWorker-Host: h 1 b\n');
    expect(commitMessage('s', {})).toBe('s\n');
    expect(commitMessage('s', {}, 'b')).toBe('s\n\nb\n');
    expect(parseTrailers(message)).toEqual({ 'Todo-Commit': 'abc', 'Worker-Host': 'h 1 b' });
    expect(parseTrailers('subject only\n')).toEqual({});
    expect(parseTrailers('s\n\nTodo-Commit: t\n\nnot a trailer\nDone-Commit: d\n')).toEqual({ 'Done-Commit': 'd' });
  });
  it('name the run, the task, both states and the detail', () => {
    expect(transitionSubject('r', 't', 'running', 'failed', 'exit 1')).toBe('r/t: running -> failed (exit 1)');
    expect(transitionSubject('r', 't', 'queued', 'running')).toBe('r/t: queued -> running');
    expect(transitionSubject('r', 't', 'queued', 'running', '')).toBe('r/t: queued -> running');
  });
});

describe('errors', () => {
  it('say what went wrong and where', () => {
    expect(new ProjectError('projects/a.json', [{ path: '$.tasks[0].run', message: 'missing' }, { path: '$', message: 'bad' }]).message).toBe('projects/a.json: $.tasks[0].run: missing; $: bad');
    expect(new ServiceUnavailableError('RabbitMQ', 'ECONNREFUSED', 'start it').message).toBe('RabbitMQ is not reachable: ECONNREFUSED\n  start it');
    expect(new ConflictError('tache_suivi', 'a'.repeat(40), 'b'.repeat(40)).message).toBe('tache_suivi: branch moved from aaaaaaa to bbbbbbb since it was read');
    expect(new ConflictError('r', undefined, undefined).message).toBe('r: branch moved from nothing to nothing since it was read');
    expect(new ConflictError('r', undefined, undefined, 'epoch changed').message).toBe('r: epoch changed');
    expect(new SizeLimitError('projects/a.json', 10, 5).message).toBe('projects/a.json is 10 bytes; at most 5 are read');
    for (const [e, name] of [
      [new ProjectError('f', []), 'ProjectError'],
      [new MessageError('m'), 'MessageError'],
      [new TransitionError('t'), 'TransitionError'],
      [new ConflictError('r', undefined, undefined), 'ConflictError'],
      [new RequeueError('q'), 'RequeueError'],
      [new SizeLimitError('w', 1, 0), 'SizeLimitError'],
      [new ServiceUnavailableError('s', 'd', 'h'), 'ServiceUnavailableError'],
    ] as const) expect(e.name).toBe(name);
  });
  it('retryOnConflict reads again after each conflict, up to its attempts, and passes other errors through at once', async () => {
    let calls = 0;
    const seen: string[] = [];
    expect(await retryOnConflict(async () => (++calls < 3 ? Promise.reject(new ConflictError('r', undefined, undefined, `c${calls}`)) : 'ok'), (e) => seen.push(e.message))).toBe('ok');
    expect(calls).toBe(3);
    expect(seen).toEqual(['r: c1', 'r: c2']);
    calls = 0;
    await expect(retryOnConflict(async () => {
      calls++;
      throw new ConflictError('r', undefined, undefined, 'always');
    }, undefined, 4)).rejects.toThrow('r: always');
    expect(calls).toBe(4);
    calls = 0;
    await expect(retryOnConflict(async () => {
      calls++;
      throw new Error('other');
    })).rejects.toThrow('other');
    expect(calls).toBe(1);
    calls = 0;
    await expect(retryOnConflict(async () => {
      calls++;
      throw new ConflictError('r', undefined, undefined, 'x');
    })).rejects.toThrow(ConflictError);
    expect(calls).toBe(20);
  });
});

describe('settings', () => {
  it('back off exponentially from retryBaseMs, capped at retryMaxMs', () => {
    const s = { retryBaseMs: 2000, retryMaxMs: 300_000 };
    expect([0, 1, 2, 3, 4, 8, 9, 50].map((n) => retryDelay(s, n))).toEqual([2000, 2000, 4000, 8000, 16_000, 256_000, 300_000, 300_000]);
    expect(retryDelay(DEFAULT_SETTINGS, 1)).toBe(2000);
    expect(DEFAULT_SETTINGS.retryMaxMs).toBe(5 * 60_000);
  });
  it('hold by lease a task whose timeout passes half the consumer timeout', () => {
    expect(needsLease({ consumerTimeoutMs: 1000 }, 500)).toBe(false);
    expect(needsLease({ consumerTimeoutMs: 1000 }, 501)).toBe(true);
  });
  it('prefix every queue, and keep the user queues of each installation apart', () => {
    expect(prefixedQueues(undefined)).toEqual({ todo: 'TODO', done: 'DONE', large: 'DONE_LARGE', dead: 'DEAD', control: 'CONTROL', output: 'OUTPUT' });
    expect(prefixedQueues('')).toEqual(DEFAULT_SETTINGS.queues);
    expect(prefixedQueues(undefined)).not.toBe(DEFAULT_SETTINGS.queues);
    expect(prefixedQueues('t1')).toEqual({ todo: 't1.TODO', done: 't1.DONE', large: 't1.DONE_LARGE', dead: 't1.DEAD', control: 't1.CONTROL', output: 't1.OUTPUT' });
    expect(userQueueNamespace(prefixedQueues(undefined))).toBe('q.');
    expect(userQueueNamespace(prefixedQueues('t1'))).toBe('t1.q.');
    expect(userQueueNamespace({ ...DEFAULT_SETTINGS.queues, todo: 'jobs' })).toBe('jobs.q.');
  });
  it('default to the prototype’s names and the documented limits', () => {
    expect(DEFAULT_SETTINGS).toMatchObject({
      repos: { todo: 'tache_a_faire', tracking: 'tache_suivi', done: 'tache_termine', config: 'config' },
      branch: 'main',
      limits: { memoryBytes: 512 * 1024 * 1024, nanoCpus: 1_000_000_000, pids: 256 },
      outputCap: 1024 * 1024,
      outputTail: 2048,
      resultCap: 64 * 1024 * 1024,
      pushFiles: 100,
      consumerTimeoutMs: 30 * 60_000,
      heartbeatMs: 10_000,
    });
  });
});

describe('the run state machine', () => {
  it('allows exactly the transitions of its diagram', () => {
    const allowed = new Set(['queued>running', 'queued>succeeded', 'queued>failed', 'queued>cancelled', 'running>succeeded', 'running>failed', 'running>cancelled']);
    for (const from of RUN_STATES) {
      for (const to of RUN_STATES) {
        expect(canRunTransition(from, to), `${from} -> ${to}`).toBe(allowed.has(`${from}>${to}`));
        if (allowed.has(`${from}>${to}`)) expect(() => assertRunTransition('r', from, to)).not.toThrow();
        else expect(() => assertRunTransition('r', from, to)).toThrow(new TransitionError(`r: ${from} -> ${to} is not a transition a run can make`));
      }
    }
  });
  it('counts progress: final tasks are done, final failures also failed', () => {
    const t = (state: TaskRecord['state'], attempts = 1, maxAttempts = 1) => ({ state, attempts, maxAttempts }) as TaskRecord;
    expect(progress([t('succeeded'), t('failed', 1, 3), t('failed', 3, 3), t('cancelled'), t('running'), t('queued')])).toEqual({ done: 3, failed: 1, total: 6 });
    expect(progress([])).toEqual({ done: 0, failed: 0, total: 0 });
    expect(progress([t('skipped', 0), t('waiting', 0)])).toEqual({ done: 1, failed: 1, total: 2 });
    expect(allFinal([])).toBe(false);
    expect(allFinal([t('succeeded'), t('cancelled')])).toBe(true);
    expect(allFinal([t('succeeded'), t('failed', 1, 2)])).toBe(false);
  });
  it('is over once its result is committed, or it was rejected', () => {
    const r = (state: RunRecord['state'], doneCommit?: string) => ({ state, ...(doneCommit ? { doneCommit } : {}) }) as RunRecord;
    expect(isRunFinal(r('rejected'))).toBe(true);
    expect(isRunFinal(r('succeeded'))).toBe(false);
    expect(isRunFinal(r('succeeded', 'abc'))).toBe(true);
    expect(isRunFinal(r('running', 'abc'))).toBe(true);
    expect(isRunFinal(r('queued'))).toBe(false);
  });
});

describe('the system clock', () => {
  it('calls back after the time asked, at once for a negative one, and not at all once cancelled', async () => {
    const seen: string[] = [];
    const start = Date.now();
    await new Promise<void>((done) => systemClock.after(20, () => (seen.push('20'), done())));
    expect(Date.now() - start).toBeGreaterThanOrEqual(15);
    await new Promise<void>((done) => systemClock.after(-1000, () => (seen.push('now'), done())));
    const cancel = systemClock.after(1, () => seen.push('never'));
    cancel();
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['20', 'now']);
    expect(Math.abs(systemClock.now() - Date.now())).toBeLessThan(5);
  });
});
