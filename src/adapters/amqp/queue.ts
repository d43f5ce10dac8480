/**
 * The Queue port over RabbitMQ with amqplib: durable quorum queues,
 * persistent messages, publisher confirms, manual acks — and our own
 * reconnection: when the broker goes away, publishes wait and are retried,
 * the topology is declared again and consumers resume, with backoff.
 */
import { randomUUID } from 'node:crypto';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Message } from 'amqplib';
import { RequeueError, ServiceUnavailableError } from '../../core/errors.js';
import type { Broadcast, Consumer, Queue, QueueName, QueueService } from '../../core/ports.js';
import type { Settings } from '../../core/settings.js';

export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** `amqp://user:pass@host` → `amqp://user:***@host`: never log a password. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):([^@]*)@/, '//$1:***@');
}

interface Log {
  info?(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AmqpQueueOptions {
  url: string;
  queues: Settings['queues'];
  /** `quorum` (default) where the broker supports it; `classic` otherwise. */
  queueType?: 'quorum' | 'classic';
  log?: Log;
  /** Longest wait between reconnection attempts (default 5 s). */
  maxBackoffMs?: number;
}

interface Subscription {
  /** A queue, or a fanout exchange (each subscriber gets its own exclusive queue). */
  queue: QueueName | 'control' | 'output';
  prefetch: number;
  handler: (content: Buffer, ackNow: () => void) => Promise<void>;
  channel?: Channel;
  tag?: string;
  inflight: Set<Promise<void>>;
  cancelled: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class AmqpQueue implements Queue {
  private model: ChannelModel | undefined;
  private publisher: ConfirmChannel | undefined;
  private readonly subscriptions = new Set<Subscription>();
  private readonly returned = new Set<string>();
  private reconnecting: Promise<void> | undefined;
  private closed = false;
  /** Times the connection came back after a loss. */
  reconnects = 0;

  private constructor(private readonly options: AmqpQueueOptions) {}

  static async connect(options: AmqpQueueOptions): Promise<AmqpQueue> {
    const q = new AmqpQueue(options);
    try {
      await q.open();
    } catch (err) {
      if (err instanceof ServiceUnavailableError) throw err;
      throw new ServiceUnavailableError(
        `RabbitMQ at ${redactUrl(options.url)}`,
        (err as Error).message || String(err),
        'Start it with `rabbitmq-server -detached` (or `bash scripts/setup.sh`), or point GITJOBS_AMQP_URL at a running broker.',
      );
    }
    return q;
  }

  private async open(): Promise<void> {
    const model = await amqp.connect(this.options.url, { timeout: 5000 });
    model.on('error', (err: Error) => this.options.log?.warn({ err: err.message }, 'RabbitMQ connection error'));
    model.on('close', () => {
      if (this.model !== model) return;
      this.model = undefined;
      this.publisher = undefined;
      if (!this.closed) {
        this.options.log?.warn({ url: redactUrl(this.options.url) }, 'lost the connection to RabbitMQ; reconnecting');
        void this.reconnect();
      }
    });
    try {
      const publisher = await model.createConfirmChannel();
      publisher.on('error', () => undefined);
      // Unroutable (its queue is gone): the publish is retried after the topology is declared again.
      publisher.on('return', (msg: Message) => {
        if (msg.properties.messageId) this.returned.add(String(msg.properties.messageId));
      });
      await this.declare(publisher);
      this.model = model;
      this.publisher = publisher;
      for (const s of this.subscriptions) if (!s.cancelled) await this.startConsumer(s);
    } catch (err) {
      await model.close().catch(() => undefined);
      throw err;
    }
  }

  private reconnect(): Promise<void> {
    if (!this.reconnecting) {
      this.reconnecting = (async () => {
        for (let attempt = 0; !this.closed; attempt++) {
          await sleep(Math.min(this.options.maxBackoffMs ?? 5000, 100 * 2 ** attempt) * (0.8 + Math.random() * 0.4));
          if (this.closed) return;
          try {
            await this.open();
            this.reconnects++;
            this.options.log?.warn({ attempt: attempt + 1 }, 'reconnected to RabbitMQ');
            return;
          } catch (err) {
            this.options.log?.warn({ attempt: attempt + 1, err: (err as Error).message }, 'RabbitMQ still unreachable');
          }
        }
      })().finally(() => (this.reconnecting = undefined));
    }
    return this.reconnecting;
  }

  private async ready(): Promise<ConfirmChannel> {
    for (;;) {
      if (this.closed) throw new Error('queue is closed');
      if (this.publisher) return this.publisher;
      await this.reconnect();
    }
  }

  private async declare(channel: Channel): Promise<void> {
    const args = this.options.queueType === 'classic' ? {} : { 'x-queue-type': 'quorum' };
    const { control, output, ...queues } = this.options.queues;
    for (const name of Object.values(queues)) await channel.assertQueue(name, { durable: true, arguments: args });
    await channel.assertExchange(control, 'fanout', { durable: true });
    await channel.assertExchange(output, 'fanout', { durable: true });
  }

  private name(queue: QueueName): string {
    return this.options.queues[queue];
  }

  async broadcast(body: unknown, exchange: Broadcast = 'control'): Promise<void> {
    const channel = await this.ready();
    await new Promise<void>((resolve, reject) =>
      channel.publish(this.options.queues[exchange], '', Buffer.from(JSON.stringify(body)), { contentType: 'application/json' }, (err) => (err ? reject(new Error(String(err))) : resolve())),
    );
  }

  async onBroadcast(handler: (content: Buffer) => void, exchange: Broadcast = 'control'): Promise<Consumer> {
    return this.consume(exchange as QueueName, { prefetch: 64 }, async (content) => handler(content));
  }

  /** Resolves once the broker has confirmed the message; waits through outages. */
  async publish(queue: QueueName, body: unknown): Promise<void> {
    const content = Buffer.from(JSON.stringify(body));
    for (let attempt = 1; ; attempt++) {
      const channel = await this.ready();
      const messageId = randomUUID();
      try {
        await new Promise<void>((resolve, reject) => {
          channel.sendToQueue(this.name(queue), content, { persistent: true, mandatory: true, messageId, contentType: 'application/json' }, (err) =>
            err ? reject(new Error(String(err))) : resolve(),
          );
        });
        if (!this.returned.delete(messageId)) return;
        this.options.log?.warn({ queue: this.name(queue) }, 'queue was missing; declaring it again');
        await this.declare(channel);
      } catch (err) {
        if (this.closed) throw err;
        this.options.log?.warn({ queue: this.name(queue), attempt, err: (err as Error).message }, 'publish not confirmed; retrying');
        await sleep(Math.min(2000, 50 * attempt));
      }
    }
  }

  async consume(queue: QueueName, options: { prefetch: number }, handler: (content: Buffer, ackNow: () => void) => Promise<void>): Promise<Consumer> {
    const s: Subscription = { queue, prefetch: options.prefetch, handler, inflight: new Set(), cancelled: false };
    this.subscriptions.add(s);
    if (this.model) await this.startConsumer(s);
    return {
      // Stop deliveries, let the handlers in hand finish and ack, then close.
      cancel: async () => {
        s.cancelled = true;
        this.subscriptions.delete(s);
        if (s.channel && s.tag) await s.channel.cancel(s.tag).catch(() => undefined);
        await Promise.allSettled([...s.inflight]);
        await s.channel?.close().catch(() => undefined);
      },
    };
  }

  private async startConsumer(s: Subscription): Promise<void> {
    const model = this.model!;
    const channel = await model.createChannel();
    channel.on('error', (err: Error) => this.options.log?.warn({ queue: s.queue, err: err.message }, 'consumer channel closed by the broker'));
    // A channel can close alone (e.g. a delivery unacked past the broker's consumer_timeout): consume on a new one.
    channel.on('close', () => {
      if (s.channel !== channel || s.cancelled || this.closed || !this.model || this.model !== model) return;
      void sleep(200).then(() => {
        if (s.channel !== channel || s.cancelled || !this.model) return;
        this.startConsumer(s).catch((err: Error) => this.options.log?.error({ queue: s.queue, err: err.message }, 'could not resume consuming'));
      });
    });
    await channel.prefetch(s.prefetch);
    s.channel = channel;
    let name: string;
    if (s.queue === 'control' || s.queue === 'output') {
      // Each subscriber gets its own queue on the fanout exchange, gone with its connection.
      const q = await channel.assertQueue('', { exclusive: true, autoDelete: true });
      await channel.bindQueue(q.queue, this.options.queues[s.queue], '');
      name = q.queue;
    } else {
      name = this.name(s.queue);
    }
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
      (msg: ConsumeMessage | null) => {
        if (!msg) {
          if (s.cancelled) return; // we deleted the queue ourselves
          // The broker cancelled us (the queue was deleted): declare it again and resume.
          this.options.log?.warn({ queue: name }, 'consumer cancelled by the broker; resuming');
          void channel.close().catch(() => undefined);
          void sleep(500).then(async () => {
            if (s.cancelled || !this.model) return;
            try {
              await this.declare(this.publisher!);
              await this.startConsumer(s);
            } catch (err) {
              this.options.log?.error({ queue: name, err: (err as Error).message }, 'could not resume consuming');
            }
          });
          return;
        }
        let acked = false;
        const ackNow = () => {
          if (!acked) settle(() => channel.ack(msg));
          acked = true;
        };
        const done = s.handler(msg.content, ackNow).then(
          () => ackNow(),
          (err: Error) => {
            if (acked) {
              this.options.log?.error({ queue: name, err: err.message }, 'handler failed after its message was acked');
              return;
            }
            if (err instanceof RequeueError) return settle(() => channel.nack(msg, false, true));
            this.options.log?.error({ queue: name, err: err.message }, 'handler failed; message requeued');
            // Give the failing cause a moment before the message comes back.
            return sleep(1000).then(() => settle(() => channel.nack(msg, false, true)));
          },
        );
        s.inflight.add(done);
        void done.finally(() => s.inflight.delete(done));
      },
      { noAck: false },
    );
    s.tag = consumerTag;
  }

  /** Messages waiting in a queue and how many consumers (workers, for TODO) take from it. */
  async stats(queue: QueueName): Promise<{ messages: number; consumers: number }> {
    const channel = await this.ready();
    const r = await channel.checkQueue(this.name(queue));
    return { messages: r.messageCount, consumers: r.consumerCount };
  }

  /** Messages waiting in a queue (not counting those delivered and unacked). */
  async depth(queue: QueueName): Promise<number> {
    const channel = await this.ready();
    return (await channel.checkQueue(this.name(queue))).messageCount;
  }

  /** Takes one message off a queue (for operators and tests); undefined when empty. */
  async take(queue: QueueName): Promise<Buffer | undefined> {
    const channel = await this.ready();
    const msg = await channel.get(this.name(queue), { noAck: true });
    return msg ? msg.content : undefined;
  }

  /** A throwaway channel for one operation that may fail with a channel error (404 on a missing queue). */
  private async withChannel<T>(fn: (channel: Channel) => Promise<T>): Promise<T | 'missing'> {
    await this.ready();
    const channel = await this.model!.createChannel();
    channel.on('error', () => undefined);
    try {
      return await fn(channel);
    } catch (err) {
      if (/NOT_FOUND|404/.test((err as Error).message)) return 'missing';
      throw err;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** The queue web services, over the same connection. */
  readonly service: QueueService = {
    create: async (name) => {
      await this.withChannel((ch) => ch.assertQueue(name, { durable: true }));
    },
    send: async (name, body, contentType) => {
      const r = await this.withChannel(async (ch) => {
        await ch.checkQueue(name);
        const confirm = await this.ready();
        await new Promise<void>((resolve, reject) => confirm.sendToQueue(name, body, { persistent: true, contentType }, (err) => (err ? reject(new Error(String(err))) : resolve())));
        return true;
      });
      return r === true;
    },
    receive: async (name) => {
      const r = await this.withChannel(async (ch) => {
        const msg = await ch.get(name, { noAck: true });
        return msg ? { body: msg.content, contentType: String(msg.properties.contentType ?? 'application/octet-stream') } : ('empty' as const);
      });
      return r;
    },
    remove: async (name) => {
      const r = await this.withChannel(async (ch) => {
        await ch.checkQueue(name);
        await ch.deleteQueue(name);
        return true;
      });
      return r === true;
    },
  };

  /** Deletes the queues (tests, the demo); our own consumers stop rather than declare them again. */
  async deleteQueues(): Promise<void> {
    for (const sub of this.subscriptions) sub.cancelled = true;
    const channel = await this.ready();
    const { control, output, ...queues } = this.options.queues;
    for (const name of Object.values(queues)) await channel.deleteQueue(name);
    await channel.deleteExchange(control);
    await channel.deleteExchange(output);
  }

  async close(): Promise<void> {
    this.closed = true;
    const model = this.model;
    this.model = undefined;
    try {
      await this.publisher?.waitForConfirms();
    } catch {
      /* nothing left to confirm */
    }
    await model?.close().catch(() => undefined);
  }
}
