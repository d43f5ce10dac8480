/**
 * The Queue port in memory, with its semantics: messages go through their
 * channel's schema (one that does not decode is dead-lettered), each
 * consumer holds at most `prefetch` unacked messages, a message is acked
 * when its handler resolves and comes back (marked redelivered) when the
 * handler throws or its consumer's connection is lost; fanouts reach the
 * subscribers live at the time. Deliveries are asynchronous, as over a network.
 */
import { decode, encode, undecodable, type ChannelName, type Channels, type Fanout, type WorkQueue } from '../../core/channels.js';
import { MessageError } from '../../core/errors.js';
import type { Consumer, Delivery, Queue } from '../../core/ports.js';

interface Message {
  body: Buffer;
  redelivered: boolean;
}

interface Subscriber {
  queue: WorkQueue;
  prefetch: number;
  unacked: number;
  handler: (body: Buffer, ackNow: () => void, redelivered: boolean) => Promise<void>;
  inflight: Set<Promise<void>>;
  /** Messages in its hands, given back if its connection is lost. */
  held: Set<Message>;
  active: boolean;
}

export class MemoryQueue implements Queue {
  private readonly ready = new Map<WorkQueue, Message[]>([
    ['todo', []],
    ['done', []],
    ['large', []],
    ['dead', []],
  ]);
  private readonly subscribers: Subscriber[] = [];
  private readonly fanouts = new Map<Fanout, Set<(body: Buffer) => void>>([
    ['control', new Set()],
    ['output', new Set()],
  ]);
  /** Every message broadcast, for tests to read. */
  readonly broadcasts: { fanout: Fanout; message: unknown }[] = [];
  /** Queues whose messages are gone (a test deletes them with `purge`). */
  private readonly gone = new Set<WorkQueue>();
  private closed = false;

  /** `maxMessageBytes`: the largest message it takes, as a broker's max_message_size. */
  constructor(private readonly options: { maxMessageBytes?: number } = {}) {}

  async publish<Q extends WorkQueue>(queue: Q, message: Channels[Q]): Promise<void> {
    this.publishRaw(queue, encode(queue, message, this.options.maxMessageBytes));
  }

  /** Puts bytes on a queue as they are, as a misbehaving sender would. */
  publishRaw(queue: WorkQueue, body: Buffer): void {
    if (this.closed) throw new Error('queue is closed');
    this.ready.get(queue)!.push({ body, redelivered: false });
    this.pump();
  }

  async consume<Q extends 'todo' | 'done' | 'large'>(queue: Q, options: { prefetch: number }, handler: (message: Channels[Q], delivery: Delivery) => Promise<void>): Promise<Consumer> {
    const sub: Subscriber = {
      queue,
      prefetch: options.prefetch,
      unacked: 0,
      inflight: new Set(),
      held: new Set(),
      active: true,
      handler: async (body, ackNow, redelivered) => {
        let message: Channels[Q];
        try {
          message = decode(queue, body);
        } catch (err) {
          if (!(err instanceof MessageError)) throw err;
          await this.publish('dead', undecodable(queue, body, err, new Date().toISOString()));
          return;
        }
        await handler(message, { ackNow, redelivered });
      },
    };
    this.subscribers.push(sub);
    this.pump();
    return {
      cancel: async () => {
        sub.active = false;
        await Promise.allSettled([...sub.inflight]);
        this.remove(sub);
      },
    };
  }

  async broadcast<F extends Fanout>(fanout: F, message: Channels[F]): Promise<void> {
    const body = encode(fanout, message);
    this.broadcasts.push({ fanout, message });
    for (const listener of [...this.fanouts.get(fanout)!]) setImmediate(() => listener(body));
  }

  async subscribe<F extends Fanout>(fanout: F, handler: (message: Channels[F]) => void): Promise<Consumer> {
    const listener = (body: Buffer) => {
      try {
        handler(decode(fanout, body));
      } catch (err) {
        if (!(err instanceof MessageError)) throw err;
      }
    };
    this.fanouts.get(fanout)!.add(listener);
    return { cancel: async () => void this.fanouts.get(fanout)!.delete(listener) };
  }

  lost(queue: WorkQueue): boolean {
    return this.gone.has(queue);
  }

  /** The queue is deleted and made again, as an operator might: its waiting messages are gone, and `lost` says so. */
  purge(queue: WorkQueue): void {
    this.ready.get(queue)!.splice(0);
    this.gone.add(queue);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.subscribers) s.active = false;
  }

  /** Every consumer of `queue` loses its connection: unacked messages go back, redelivered. */
  dropConsumers(queue: WorkQueue): void {
    for (const sub of this.subscribers.filter((s) => s.queue === queue)) {
      sub.active = false;
      for (const m of sub.held) this.ready.get(queue)!.unshift({ body: m.body, redelivered: true });
      sub.held.clear();
      this.remove(sub);
    }
    this.pump();
  }

  /** Messages waiting (not delivered) in a queue. */
  depth(queue: WorkQueue): number {
    return this.ready.get(queue)!.length;
  }

  /** Takes the next waiting message of a queue, decoded, or undefined. */
  take<Q extends WorkQueue>(queue: Q): Channels[Q] | undefined {
    const m = this.ready.get(queue)!.shift();
    return m ? decode(queue, m.body) : undefined;
  }

  /** The waiting messages of a queue, decoded, without taking them. */
  peek<Q extends WorkQueue>(queue: Q): Channels[Q][] {
    return this.ready.get(queue)!.map((m) => decode(queue as ChannelName, m.body) as Channels[Q]);
  }

  private remove(sub: Subscriber): void {
    const i = this.subscribers.indexOf(sub);
    if (i >= 0) this.subscribers.splice(i, 1);
  }

  private pumping = false;

  /** Hands waiting messages to consumers with room, round robin, each on its own turn of the event loop. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(() => {
      this.pumping = false;
      for (const [queue, waiting] of this.ready) {
        for (;;) {
          const sub = this.subscribers.find((s) => s.queue === queue && s.active && s.unacked < s.prefetch);
          if (!sub || waiting.length === 0) break;
          // Round robin: the one served goes to the back.
          this.remove(sub);
          this.subscribers.push(sub);
          this.deliver(sub, waiting.shift()!);
        }
      }
    });
  }

  private deliver(sub: Subscriber, message: Message): void {
    sub.unacked++;
    sub.held.add(message);
    let settled = false;
    const ack = () => {
      if (settled) return;
      settled = true;
      sub.unacked--;
      sub.held.delete(message);
      this.pump();
    };
    const done = sub.handler(message.body, ack, message.redelivered).then(ack, () => {
      if (settled || !sub.held.has(message)) return;
      // Given back: the broker puts it at the head of the queue, marked redelivered.
      settled = true;
      sub.unacked--;
      sub.held.delete(message);
      this.ready.get(sub.queue)!.unshift({ body: message.body, redelivered: true });
      this.pump();
    });
    sub.inflight.add(done);
    void done.finally(() => sub.inflight.delete(done));
  }
}
