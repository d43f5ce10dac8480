/** The Queue port against the real RabbitMQ. */
import { afterEach, describe, expect, it } from 'vitest';
import { AmqpQueue, redactUrl } from '../../src/adapters/amqp/queue.js';
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

async function connect() {
  const q = await AmqpQueue.connect({ url: AMQP_URL, queues: prefixedQueues(`test-amqp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`) });
  open.push(q);
  return q;
}

describe('AmqpQueue', () => {
  it('delivers confirmed messages in order and acks after the handler', async () => {
    const q = await connect();
    for (let i = 0; i < 20; i++) await q.publish('todo', { i });
    expect(await q.depth('todo')).toBe(20);
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      void q.consume('todo', { prefetch: 1 }, async (content) => {
        seen.push(JSON.parse(content.toString()).i);
        if (seen.length === 20) resolve();
      });
    });
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('requeues a message whose handler fails, and delivers it again', async () => {
    const q = await connect();
    await q.publish('done', { hello: 'again' });
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

  it('declares durable quorum queues', async () => {
    const q = await connect();
    // Declaring the same name as a classic queue must clash with the quorum one.
    await expect(AmqpQueue.connect({ url: AMQP_URL, queues: (q as unknown as { options: { queues: { todo: string; done: string } } }).options.queues, queueType: 'classic' })).rejects.toThrow(/PRECONDITION_FAILED|inequivalent arg/);
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
