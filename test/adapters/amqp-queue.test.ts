/** The Queue port against the real RabbitMQ. */
import { MessageTooLargeError } from '../../src/core/errors.js';
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { AmqpQueue, redactUrl } from '../../src/adapters/amqp/queue.js';
import { DONE_DELIVERY_LIMIT } from '../../src/adapters/amqp/topology.js';
import type { TaskEvent, TodoMessage } from '../../src/core/channels.js';
import { ServiceUnavailableError } from '../../src/core/errors.js';
import { prefixedQueues } from '../../src/core/settings.js';
import { AMQP_URL } from '../helpers/stack.js';

const open: AmqpQueue[] = [];
afterEach(async () => {
  for (const q of open.splice(0)) {
    await q.deleteQueues().catch(() => undefined);
    await q.close();
  }
});

async function connect(prefix = `test-amqp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`) {
  const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(prefix) });
  open.push(q);
  return q;
}

const todo = (i: number): TodoMessage => ({
  v: 1,
  run: 'r-1234567',
  task: `t${i}`,
  attempt: 1,
  worker: 'default',
  argv: ['true'],
  timeoutMs: 1000,
  limits: { memoryBytes: 1, nanoCpus: 1, pids: 8 },
  config: { url: 'http://x/config.git', commit: 'c'.repeat(40) },
  todoCommit: 'a'.repeat(40),
});

const started = (task: string): TaskEvent => ({ v: 1, kind: 'started', run: 'r-1234567', task, attempt: 1, host: 'h', image: 'i', at: '2026-01-01T00:00:00.000Z' });

describe('AmqpQueue', () => {
  it('refuses a message larger than the broker takes before sending it, and goes on publishing', async () => {
    const prefix = `test-amqp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(prefix), maxMessageBytes: 4096 });
    open.push(q);
    const big = { ...todo(1), inputs: [{ path: 'a/stdout', data: Buffer.alloc(4096).toString('base64') }] };
    const err = await q.publish('todo', big).catch((e: Error) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect((err as Error).message).toMatch(/^a TODO message of [\d.]+ KiB is more than the broker takes, 4 KiB \(GITJOBS_MAX_MESSAGE/);
    await q.publish('todo', todo(2));
    expect(await q.depth('todo')).toBe(1);
  });

  it('delivers confirmed messages in order, decoded', async () => {
    const q = await connect();
    for (let i = 0; i < 20; i++) await q.publish('todo', todo(i));
    expect(await q.depth('todo')).toBe(20);
    const seen: string[] = [];
    await new Promise<void>((resolve) => {
      void q.consume('todo', { prefetch: 1 }, async (message) => {
        seen.push(message.task);
        if (seen.length === 20) resolve();
      });
    });
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => `t${i}`));
  });

  it('acks a message only once its handler resolves: a consumer that dies before gives it back', async () => {
    const prefix = `test-amqp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const q = await connect(prefix);
    await q.publish('todo', todo(1));
    const consumerSide = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(prefix) });
    let handed!: () => void;
    const inHand = new Promise<void>((r) => (handed = r));
    await consumerSide.consume('todo', { prefetch: 1 }, () => {
      handed();
      return new Promise(() => undefined); // never resolves
    });
    await inHand;
    expect(await q.depth('todo')).toBe(0); // delivered, unacked
    await consumerSide.close(); // the connection goes, as when a worker dies
    for (let i = 0; i < 50 && (await q.depth('todo')) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await q.depth('todo')).toBe(1);
    const again = await new Promise<TodoMessage>((resolve) => void q.consume('todo', { prefetch: 1 }, async (m) => resolve(m)));
    expect(again.task).toBe('t1');
  });

  it('requeues a message whose handler fails, and delivers it again', async () => {
    const q = await connect();
    await q.publish('done', started('again'));
    let calls = 0;
    await new Promise<void>((resolve) => {
      void q.consume('done', { prefetch: 1 }, async () => {
        calls++;
        if (calls === 1) throw new Error('not yet');
        resolve();
      });
    });
    expect(calls).toBe(2);
  });

  it('sends a message that does not decode to DEAD with the schema error, and delivers the next', async () => {
    const prefix = `test-amqp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const q = await connect(prefix);
    const raw = await amqp.connect(AMQP_URL);
    const ch = await raw.createConfirmChannel();
    await new Promise((r) => ch.sendToQueue(`${prefix}.DONE`, Buffer.from('{"kind":"started"}'), { persistent: true }, r));
    await raw.close();
    await q.publish('done', started('good'));
    const got = await new Promise<TaskEvent>((resolve) => void q.consume('done', { prefetch: 1 }, async (m) => resolve(m)));
    expect(got.task).toBe('good');
    const dead = JSON.parse((await q.take('dead'))!.toString());
    expect(dead).toMatchObject({ v: 1, channel: 'done', body: '{"kind":"started"}' });
    expect(dead.reason).toMatch(/^DONE: message does not match its schema: /);
  });

  it('moves a DONE message that always fails to DEAD after its delivery limit, instead of looping', async () => {
    const q = await connect();
    await q.publish('done', started('poison'));
    let calls = 0;
    const consumer = await q.consume('done', { prefetch: 1 }, async () => {
      calls++;
      throw new Error('always fails');
    });
    const deadline = Date.now() + 60_000;
    let dead: Buffer | undefined;
    while (!dead && Date.now() < deadline) {
      dead = await q.take('dead');
      if (!dead) await new Promise((r) => setTimeout(r, 200));
    }
    await consumer.cancel();
    expect(JSON.parse(dead!.toString())).toMatchObject({ kind: 'started', task: 'poison' });
    // Delivered up to the limit, then no more.
    expect(calls).toBe(DONE_DELIVERY_LIMIT + 1);
    expect(await q.depth('done')).toBe(0);
  });

  it('publishes on a new confirm channel when the broker closed the old one (a publish to an exchange deleted under it)', async () => {
    const prefix = `test-amqp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const q = await connect(prefix);
    const raw = await amqp.connect(AMQP_URL);
    await (await raw.createChannel()).deleteExchange(`${prefix}.OUTPUT`);
    await raw.close();
    await expect(q.broadcast('output', { run: 'r-1234567', task: 't', attempt: 1, seq: 0, data: 'x' })).rejects.toThrow();
    await q.publish('done', started('after'));
    expect(await q.depth('done')).toBe(1);
  });

  it('declares DONE_LARGE as DONE (a delivery limit, dead letters to DEAD), and a consumer of it holds no more than its prefetch', async () => {
    const prefix = `test-amqp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const q = await connect(prefix);
    const raw = await amqp.connect(AMQP_URL);
    try {
      // Declared without the limit, it must clash with what gitjobs declared.
      const ch = await raw.createChannel();
      ch.on('error', () => undefined);
      await expect(ch.assertQueue(`${prefix}.DONE_LARGE`, { durable: true, arguments: { 'x-queue-type': 'quorum' } })).rejects.toThrow(/PRECONDITION_FAILED|inequivalent arg/);
    } finally {
      await raw.close();
    }
    for (let i = 0; i < 5; i++) await q.publish('large', started(`big${i}`));
    let inHand = 0;
    let most = 0;
    const seen: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const consumer = await q.consume('large', { prefetch: 2 }, async (event) => {
      inHand++;
      most = Math.max(most, inHand);
      await gate;
      seen.push(event.task);
      inHand--;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(inHand).toBe(2);
    open();
    for (let i = 0; i < 50 && seen.length < 5; i++) await new Promise((r) => setTimeout(r, 100));
    await consumer.cancel();
    expect(seen.sort()).toEqual(['big0', 'big1', 'big2', 'big3', 'big4']);
    expect(most).toBe(2);
    expect(await q.depth('large')).toBe(0);
  });

  it('declares durable quorum queues', async () => {
    const prefix = `test-amqp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    await connect(prefix);
    const raw = await amqp.connect(AMQP_URL);
    try {
      // Declaring the same name with other properties must clash: not durable, or a classic queue.
      for (const options of [{ durable: false, arguments: { 'x-queue-type': 'quorum' } }, { durable: true, arguments: { 'x-queue-type': 'classic' } }]) {
        const ch = await raw.createChannel();
        ch.on('error', () => undefined);
        await expect(ch.assertQueue(`${prefix}.TODO`, options)).rejects.toThrow(/PRECONDITION_FAILED|inequivalent arg/);
      }
      const ch = await raw.createChannel();
      expect((await ch.assertQueue(`${prefix}.TODO`, { durable: true, arguments: { 'x-queue-type': 'quorum' } })).queue).toBe(`${prefix}.TODO`);
    } finally {
      await raw.close();
    }
  });

  it('says which broker cannot be reached and how to start one, without the password', async () => {
    const err = await AmqpQueue.connect({ url: 'amqp://guest:s3cret@127.0.0.1:1', queues: prefixedQueues('x') }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ServiceUnavailableError);
    expect((err as Error).message).toContain('RabbitMQ at amqp://guest:***@127.0.0.1:1');
    expect((err as Error).message).toContain('rabbitmq-server -detached');
    expect((err as Error).message).not.toContain('s3cret');
    expect(redactUrl('amqp://u:p@h:1/v')).toBe('amqp://u:***@h:1/v');
  });
});
