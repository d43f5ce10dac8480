/**
 * The Queue port over RabbitMQ with amqplib: durable quorum queues,
 * persistent messages, publisher confirms, manual acks — and our own
 * reconnection: when the broker goes away, publishes wait and are retried,
 * the topology is declared again and consumers resume, with backoff.
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import { AmqpConnection } from './connection.js';
import { decode, encode, undecodable, type Channels, type Fanout, type WorkQueue } from '../../core/channels.js';
import { MessageError, ServiceUnavailableError } from '../../core/errors.js';
import type { Consumer, Delivery, Queue, QueueService } from '../../core/ports.js';
import type { Settings } from '../../core/settings.js';
import { redactUrl } from '../../core/url-credentials.js';
import { startConsumer, type Subscription } from './consumer.js';
import { queueService } from './queue-service.js';
import { queueExists, Topology } from './topology.js';

export { redactUrl };

export { DEFAULT_AMQP_URL } from '../../core/settings.js';

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
  /**
   * `owner` (gitjobs up, the default) declares the queues and exchanges, and
   * notices when it had to make a queue again (whatever was in it is gone);
   * `member` (gitjobs worker) declares only the fanout exchanges and waits
   * for the queues, so that a worker never hides their loss from the owner.
   */
  role?: 'owner' | 'member';
  /** The largest message the broker takes: a larger one is refused here (MessageTooLargeError), not sent. */
  maxMessageBytes?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class AmqpQueue implements Queue {
  private readonly connection: AmqpConnection;
  private readonly subscriptions = new Set<Subscription>();
  private readonly returned = new Set<string>();
  private readonly topology: Topology;

  private constructor(private readonly options: AmqpQueueOptions) {
    this.topology = new Topology(options.queues, options.role ?? 'owner', options.queueType ?? 'quorum', options.log);
    this.connection = new AmqpConnection({
      url: options.url,
      ...(options.log ? { log: options.log } : {}),
      ...(options.maxBackoffMs !== undefined ? { maxBackoffMs: options.maxBackoffMs } : {}),
      onOpen: async (model, publisher) => {
        this.connection.opening = model;
        await this.topology.declare(model, publisher);
        this.connection.model = model;
        this.connection.publisher = publisher;
        for (const s of this.subscriptions) if (!s.cancelled) await this.startConsumer(s);
      },
      // Unroutable (its queue is gone): the publish is retried after the topology is declared again.
      onReturn: (id) => this.returned.add(id),
    });
  }

  /** Times the connection came back after a loss. */
  get reconnects(): number {
    return this.connection.reconnects;
  }

  private get model(): ChannelModel | undefined {
    return this.connection.model;
  }

  private get closed(): boolean {
    return this.connection.closed;
  }

  private ready(): Promise<ConfirmChannel> {
    return this.connection.ready();
  }

  static async connect(options: AmqpQueueOptions): Promise<AmqpQueue> {
    const q = new AmqpQueue(options);
    try {
      await q.connection.open();
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

  private declare(channel: Channel): Promise<void> {
    return this.topology.declare((this.model ?? this.connection.opening)!, channel);
  }

  /** Whether a queue exists (asked on a channel of its own). */
  async exists(name: string): Promise<boolean> {
    const model = this.model ?? this.connection.opening;
    return model ? queueExists(model, name) : false;
  }

  /** True when `queue` did not exist when this process connected, or vanished since: what it held is gone. */
  lost(queue: WorkQueue): boolean {
    return this.topology.lost(queue);
  }

  /** Called each time the owner finds a queue gone while running and declares it again. */
  onLost(listener: (queue: WorkQueue) => void): void {
    this.topology.onLost(listener);
  }

  private name(queue: WorkQueue): string {
    return this.options.queues[queue];
  }

  async broadcast<F extends Fanout>(fanout: F, message: Channels[F]): Promise<void> {
    const channel = await this.ready();
    await new Promise<void>((resolve, reject) =>
      channel.publish(this.options.queues[fanout], '', encode(fanout, message), { contentType: 'application/json' }, (err) => (err ? reject(new Error(String(err))) : resolve())),
    );
  }

  /** Every live subscriber hears each message; one that does not decode is logged and dropped. */
  async subscribe<F extends Fanout>(fanout: F, handler: (message: Channels[F]) => void): Promise<Consumer> {
    return this.subscribeRaw(fanout, 256, async (content) => {
      let message: Channels[F];
      try {
        message = decode(fanout, content);
      } catch (err) {
        this.options.log?.warn({ exchange: this.options.queues[fanout], err: (err as Error).message }, 'dropped a message that does not decode');
        return;
      }
      handler(message);
    });
  }

  /** Resolves once the broker has confirmed the message; waits through outages. */
  async publish<Q extends WorkQueue>(queue: Q, message: Channels[Q]): Promise<void> {
    // Sent, a message past the broker's limit would make it close the confirm channel, and every retry would do the same.
    return this.publishBytes(queue, encode(queue, message, this.options.maxMessageBytes));
  }

  private async publishBytes(queue: WorkQueue, content: Buffer): Promise<void> {
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
        if ((this.options.role ?? 'owner') === 'owner') {
          this.options.log?.warn({ queue: this.name(queue) }, 'queue was missing; declaring it again');
          await this.declare(channel);
        } else {
          if (attempt === 1) this.options.log?.warn({ queue: this.name(queue) }, 'queue is missing; waiting for gitjobs up to declare it');
          await sleep(1000);
        }
      } catch (err) {
        if (this.closed) throw err;
        this.options.log?.warn({ queue: this.name(queue), attempt, err: (err as Error).message }, 'publish not confirmed; retrying');
        await sleep(Math.min(2000, 50 * attempt));
      }
    }
  }

  /**
   * Messages decoded through the queue's schema; one that does not decode is
   * sent to DEAD with the schema's error and acked, never handed over half-parsed.
   */
  async consume<Q extends 'todo' | 'done' | 'large'>(queue: Q, options: { prefetch: number }, handler: (message: Channels[Q], delivery: Delivery) => Promise<void>): Promise<Consumer> {
    return this.subscribeRaw(queue, options.prefetch, async (content, ackNow, redelivered) => {
      let message: Channels[Q];
      try {
        message = decode(queue, content);
      } catch (err) {
        if (!(err instanceof MessageError)) throw err;
        this.options.log?.error({ queue: this.name(queue), err: err.message }, 'a message that does not decode; sent to the dead-letter queue');
        await this.publish('dead', undecodable(queue, content, err, new Date().toISOString()));
        return;
      }
      await handler(message, { ackNow, redelivered });
    });
  }

  private async subscribeRaw(queue: WorkQueue | Fanout, prefetch: number, handler: (content: Buffer, ackNow: () => void, redelivered: boolean) => Promise<void>): Promise<Consumer> {
    const s: Subscription = { queue, prefetch, handler, inflight: new Set(), cancelled: false };
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
    if ((this.options.role ?? 'owner') === 'member' && s.queue !== 'control' && s.queue !== 'output' && !(await this.exists(this.name(s.queue)))) {
      // Queues are gitjobs up's to declare: wait for them.
      this.options.log?.warn({ queue: this.name(s.queue) }, 'queue is missing; waiting for gitjobs up to declare it');
      void sleep(1000).then(() => {
        if (!s.cancelled && this.model) this.startConsumer(s).catch((err: Error) => this.options.log?.error({ queue: s.queue, err: err.message }, 'could not start consuming'));
      });
      return;
    }
    await startConsumer(s, {
      model: this.model!,
      queueName: (q) => this.name(q),
      exchangeName: (f) => this.options.queues[f],
      current: () => this.model,
      closed: () => this.closed,
      restart: (sub) => this.startConsumer(sub),
      redeclare: () => this.declare(this.connection.publisher!),
      ...(this.options.log ? { log: this.options.log } : {}),
    });
  }

  /** Messages waiting in a queue and how many consumers (workers, for TODO) take from it. */
  async stats(queue: WorkQueue): Promise<{ messages: number; consumers: number }> {
    const channel = await this.ready();
    const r = await channel.checkQueue(this.name(queue));
    return { messages: r.messageCount, consumers: r.consumerCount };
  }

  /** Messages waiting in a queue (not counting those delivered and unacked). */
  async depth(queue: WorkQueue): Promise<number> {
    return (await this.stats(queue)).messages;
  }

  /** Takes one message off a queue (for operators and tests); undefined when empty. */
  async take(queue: WorkQueue): Promise<Buffer | undefined> {
    const channel = await this.ready();
    const msg = await channel.get(this.name(queue), { noAck: true });
    return msg ? msg.content : undefined;
  }

  /** The queue web services, over the same connection. */
  readonly service: QueueService = queueService({
    confirmChannel: () => this.ready(),
    openChannel: async () => {
      await this.ready();
      return this.model!.createChannel();
    },
  });

  /** Deletes the queues (tests, the demo); our own consumers stop rather than declare them again. */
  async deleteQueues(): Promise<void> {
    for (const sub of this.subscriptions) sub.cancelled = true;
    const channel = await this.ready();
    const { control, output, ...queues } = this.options.queues;
    for (const name of Object.values(queues)) await channel.deleteQueue(name);
    await channel.deleteExchange(control);
    await channel.deleteExchange(output);
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}
