/**
 * Every channel's schema: a valid message of each kind comes through
 * whole, and each field's rule refuses what breaks it, naming the channel
 * and the path.
 */
import { describe, expect, it } from 'vitest';
import { decode, type ChannelName } from '../../src/core/channels.js';

const todo = { v: 1, run: 'r', task: 't', attempt: 1, worker: 'default', argv: ['sh', '-c', 'true'], timeoutMs: 5, limits: { memoryBytes: 1, nanoCpus: 2, pids: 3 }, config: { url: 'u', commit: 'c' }, todoCommit: 'x' };
const event = { v: 1, run: 'r', task: 't', attempt: 1, host: 'h', worker: 'h:1', image: 'i', at: 'now' };
const finished = { ...event, kind: 'finished', exitCode: null, durationMs: 0, timedOut: false, stdout: '', output: '', truncated: false, error: 'e', startedAt: 's', redelivered: true };
const valid: [ChannelName, object][] = [
  ['todo', todo],
  ['done', { ...event, kind: 'started', leaseMs: 5, redelivered: false }],
  ['done', { ...event, kind: 'heartbeat', leaseMs: 5 }],
  ['done', finished],
  ['dead', { ...todo, reason: 'exit 1', failedAt: 'now' }],
  ['dead', { v: 1, reason: 'bad', failedAt: 'now', channel: 'done', body: '{' }],
  ['control', { kind: 'cancel', run: 'r' }],
  ['control', { kind: 'abandon', run: 'r', task: 't', attempt: 2, worker: 'h:1' }],
  ['control', { ...event, kind: 'heartbeat' }],
  ['output', { run: 'r', task: 't', attempt: 1, seq: 0, data: 'x' }],
];
const encode = (m: unknown) => Buffer.from(JSON.stringify(m));

describe('channels', () => {
  it.each(valid)('%s: a valid message comes through whole', (channel, message) => {
    expect(decode(channel, encode(message))).toEqual(message);
  });
  it('refuse each broken field, naming the channel and the path', () => {
    const refused = (channel: ChannelName, m: unknown) => {
      try {
        decode(channel, encode(m));
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(refused('todo', { ...todo, argv: [] })).toMatch(/^TODO: message does not match its schema: argv: /);
    expect(refused('todo', { ...todo, limits: { memoryBytes: 1 } })).toMatch(/^TODO: message does not match its schema: limits\.nanoCpus: .*; limits\.pids: /);
    expect(refused('todo', { ...todo, config: { url: 'u' } })).toMatch(/config\.commit: /);
    expect(refused('todo', { ...todo, attempt: 0 })).toMatch(/attempt: /);
    expect(refused('done', { ...event, kind: 'started', host: undefined })).toMatch(/^DONE: .*host: /);
    expect(refused('done', { ...event, kind: 'beat' })).toMatch(/^DONE: /);
    expect(refused('done', { ...finished, exitCode: 1.5 })).toMatch(/exitCode: /);
    expect(refused('done', { ...finished, stdout: undefined })).toMatch(/stdout: /);
    expect(refused('dead', { v: 1, failedAt: 'now' })).toMatch(/^DEAD: .*reason: /);
    expect(refused('control', { kind: 'cancel' })).toMatch(/^CONTROL: /);
    expect(refused('control', { kind: 'abandon', run: 'r', task: 't', attempt: 2 })).toMatch(/^CONTROL: /);
    expect(refused('control', { kind: 'stop', run: 'r' })).toMatch(/^CONTROL: /);
    expect(refused('output', { run: 'r', task: 't', attempt: 1, seq: -1, data: 'x' })).toMatch(/^OUTPUT: message does not match its schema: seq: /);
    expect(refused('output', { run: 'r', task: 't', attempt: 1, seq: 0 })).toMatch(/data: /);
  });
});
