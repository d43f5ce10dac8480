/**
 * One consumer on RabbitMQ: its own channel with its prefetch, manual acks
 * once the handler resolves, a nack (requeue) when it throws, and its own
 * recovery when the broker closes the channel (a delivery unacked past
 * `consumer_timeout`) or cancels the consumer (its queue was deleted).
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Fanout, WorkQueue } from '../../core/channels.js';
import { RequeueError } from '../../core/errors.js';

export interface Subscription {
  /** A queue, or a fanout exchange (each subscriber gets its own exclusive queue). */
  queue: WorkQueue | Fanout;
  prefetch: number;
  handler: (content: Buffer, ackNow: () => void, redelivered: boolean) => Promise<void>;
  channel?: Channel;
  tag?: string;
  inflight: Set<Promise<void>>;
  cancelled: boolean;
}

export interface ConsumerContext {
  model: ChannelModel;
  queueName(queue: WorkQueue): string;
  exchangeName(fanout: Fanout): string;
  /** The connection now (another after a reconnect, none while down). */
  current(): ChannelModel | undefined;
  closed(): boolean;
  /** Starts this subscription again on a new channel. */
  restart(s: Subscription): Promise<void>;
  /** Declares the queues and exchanges again. */
  redeclare(): Promise<void>;
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startConsumer(s: Subscription, ctx: ConsumerContext): Promise<void> {
  const { model, log } = ctx;
  const channel = await model.createChannel();
  channel.on('error', (err: Error) => log?.warn({ queue: s.queue, err: err.message }, 'consumer channel closed by the broker'));
  // A channel can close alone (e.g. a delivery unacked past the broker's consumer_timeout): consume on a new one.
  channel.on('close', () => {
    if (s.channel !== channel || s.cancelled || ctx.closed() || ctx.current() !== model) return;
    void sleep(200).then(() => {
      if (s.channel !== channel || s.cancelled || !ctx.current()) return;
      ctx.restart(s).catch((err: Error) => log?.error({ queue: s.queue, err: err.message }, 'could not resume consuming'));
    });
  });
  await channel.prefetch(s.prefetch);
  s.channel = channel;
  let name: string;
  if (s.queue === 'control' || s.queue === 'output') {
    // Each subscriber gets its own queue on the fanout exchange, gone with its connection.
    const q = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(q.queue, ctx.exchangeName(s.queue), '');
    name = q.queue;
  } else {
    name = ctx.queueName(s.queue);
  }
  // After the channel closes the broker requeues whatever was not acked; acking then is neither possible nor needed.
  const settle = (fn: () => void) => {
    try {
      fn();
    } catch {
      /* channel closed */
    }
  };
  const resume = () => {
    if (s.cancelled) return; // we deleted the queue ourselves
    // The broker cancelled us (the queue was deleted): declare it again and resume.
    log?.warn({ queue: name }, 'consumer cancelled by the broker; resuming');
    void channel.close().catch(() => undefined);
    void sleep(500).then(async () => {
      if (s.cancelled || !ctx.current()) return;
      try {
        await ctx.redeclare();
        await ctx.restart(s);
      } catch (err) {
        log?.error({ queue: name, err: (err as Error).message }, 'could not resume consuming');
      }
    });
  };
  const deliver = (msg: ConsumeMessage) => {
    let acked = false;
    const ackNow = () => {
      if (!acked) settle(() => channel.ack(msg));
      acked = true;
    };
    const done = s.handler(msg.content, ackNow, msg.fields.redelivered).then(
      () => ackNow(),
      (err: Error) => {
        if (acked) {
          log?.error({ queue: name, err: err.message }, 'handler failed after its message was acked');
          return;
        }
        if (err instanceof RequeueError) return settle(() => channel.nack(msg, false, true));
        log?.error({ queue: name, err: err.message }, 'handler failed; message requeued');
        // Give the failing cause a moment before the message comes back.
        return sleep(1000).then(() => settle(() => channel.nack(msg, false, true)));
      },
    );
    s.inflight.add(done);
    void done.finally(() => s.inflight.delete(done));
  };
  const { consumerTag } = await channel.consume(name, (msg) => (msg ? deliver(msg) : resume()), { noAck: false });
  s.tag = consumerTag;
}
