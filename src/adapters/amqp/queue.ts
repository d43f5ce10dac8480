/**
 * The Queue port over RabbitMQ with amqplib: durable queues, persistent
 * messages, publisher confirms, manual acks.
 */
import amqp, { type ChannelModel, type ConfirmChannel, type Channel } from 'amqplib';
import { ServiceUnavailableError } from '../../core/errors.js';
import type { Consumer, Queue, QueueName } from '../../core/ports.js';
import type { Settings } from '../../core/settings.js';

export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** `amqp://user:pass@host` → `amqp://user:***@host`: never log a password. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@');
}

export interface AmqpQueueOptions {
  url: string;
  queues: Settings['queues'];
  /** `quorum` where the broker supports it; `classic` otherwise. */
  queueType?: 'quorum' | 'classic';
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export class AmqpQueue implements Queue {
  private constructor(
    private readonly connection: ChannelModel,
    private readonly publisher: ConfirmChannel,
    private readonly options: AmqpQueueOptions,
  ) {}

  static async connect(options: AmqpQueueOptions): Promise<AmqpQueue> {
    let connection: ChannelModel;
    try {
      connection = await amqp.connect(options.url, { timeout: 5000 });
    } catch (err) {
      throw new ServiceUnavailableError(
        `RabbitMQ at ${redactUrl(options.url)}`,
        (err as Error).message || String(err),
        'Start it with `rabbitmq-server -detached` (or `bash scripts/setup.sh`), or point GITJOBS_AMQP_URL at a running broker.',
      );
    }
    connection.on('error', (err: Error) => options.log?.error({ err: err.message }, 'RabbitMQ connection error'));
    const publisher = await connection.createConfirmChannel();
    const q = new AmqpQueue(connection, publisher, options);
    await q.declare(publisher);
    return q;
  }

  private async declare(channel: Channel): Promise<void> {
    const args = this.options.queueType === 'classic' ? {} : { 'x-queue-type': 'quorum' };
    for (const name of Object.values(this.options.queues)) {
      await channel.assertQueue(name, { durable: true, arguments: args });
    }
  }

  private name(queue: QueueName): string {
    return this.options.queues[queue];
  }

  publish(queue: QueueName, body: unknown): Promise<void> {
    const content = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      this.publisher.sendToQueue(this.name(queue), content, { persistent: true, contentType: 'application/json' }, (err) =>
        err ? reject(new Error(`RabbitMQ did not confirm a message on ${this.name(queue)}: ${err}`)) : resolve(),
      );
    });
  }

  async consume(queue: QueueName, options: { prefetch: number }, handler: (content: Buffer) => Promise<void>): Promise<Consumer> {
    const channel = await this.connection.createChannel();
    await channel.prefetch(options.prefetch);
    const name = this.name(queue);
    const inflight = new Set<Promise<void>>();
    // After the channel closes the broker requeues whatever was not acked; acking then is neither possible nor needed.
    const settle = (fn: () => void) => {
      try {
        fn();
      } catch {
        /* channel closed */
      }
    };
    const { consumerTag } = await channel.consume(
      name,
      (msg) => {
        if (!msg) return; // cancelled by the broker
        const done = handler(msg.content).then(
          () => settle(() => channel.ack(msg)),
          (err: Error) => {
            this.options.log?.error({ queue: name, err: err.message }, 'handler failed; message requeued');
            // Give the failing cause a moment before the message comes back.
            return new Promise<void>((resolve) => setTimeout(resolve, 1000)).then(() => settle(() => channel.nack(msg, false, true)));
          },
        );
        inflight.add(done);
        void done.finally(() => inflight.delete(done));
      },
      { noAck: false },
    );
    return {
      // Stop deliveries, let the handlers in hand finish and ack, then close.
      cancel: async () => {
        await channel.cancel(consumerTag).catch(() => undefined);
        await Promise.allSettled([...inflight]);
        await channel.close().catch(() => undefined);
      },
    };
  }

  /** Messages waiting in a queue (not counting those delivered and unacked). */
  async depth(queue: QueueName): Promise<number> {
    const r = await this.publisher.checkQueue(this.name(queue));
    return r.messageCount;
  }

  async deleteQueues(): Promise<void> {
    for (const name of Object.values(this.options.queues)) await this.publisher.deleteQueue(name);
  }

  async close(): Promise<void> {
    try {
      await this.publisher.waitForConfirms();
      await this.connection.close();
    } catch {
      /* already closed */
    }
  }
}
