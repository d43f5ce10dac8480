/**
 * The queues and exchanges of one installation (their names carry its
 * prefix). The owner (`gitjobs up`) declares the queues and notes each one
 * it found missing: whatever it held is gone, and whoever reconciles it
 * (the collector's recovery) is told. Members (`gitjobs worker`) declare
 * only the fanout exchanges.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { WorkQueue } from '../../core/channels.js';
import type { Settings } from '../../core/settings.js';

/** Deliveries of one DONE message before the broker moves it to DEAD: a message that always fails never loops. */
export const DONE_DELIVERY_LIMIT = 10;

export class Topology {
  /** Queues this process found missing and declared. */
  private readonly made = new Set<WorkQueue>();
  private readonly lostListeners = new Set<(queue: WorkQueue) => void>();
  private declaredOnce = false;
  private readonly warnedDone = new Set<string>();

  constructor(
    private readonly queues: Settings['queues'],
    private readonly role: 'owner' | 'member',
    private readonly queueType: 'quorum' | 'classic',
    private readonly log?: { warn(obj: object, msg: string): void },
  ) {}

  async declare(model: ChannelModel, channel: Channel): Promise<void> {
    const args = this.queueType === 'classic' ? {} : { 'x-queue-type': 'quorum' };
    const { control, output, ...queues } = this.queues;
    if (this.role === 'owner') {
      for (const [queue, name] of Object.entries(queues) as [WorkQueue, string][]) {
        if (!(await queueExists(model, name))) {
          this.made.add(queue);
          // Made again while running: tell whoever reconciles what it held.
          if (this.declaredOnce) for (const listener of this.lostListeners) listener(queue);
        }
        if ((queue === 'done' || queue === 'large') && this.queueType === 'quorum') await this.declareDone(model, name, args);
        else await channel.assertQueue(name, { durable: true, arguments: args });
      }
    }
    await channel.assertExchange(control, 'fanout', { durable: true });
    await channel.assertExchange(output, 'fanout', { durable: true });
    this.declaredOnce = true;
  }

  /**
   * DONE (and DONE_LARGE) has a delivery limit and a dead-letter route to DEAD. A DONE queue
   * declared by an earlier gitjobs lacks them, and the broker refuses to
   * change a queue's arguments: it is used as it is, and the log says how to
   * get them.
   */
  private async declareDone(model: ChannelModel, name: string, args: Record<string, unknown>): Promise<void> {
    const channel = await model.createChannel();
    channel.on('error', () => undefined);
    try {
      await channel.assertQueue(name, {
        durable: true,
        arguments: { ...args, 'x-delivery-limit': DONE_DELIVERY_LIMIT, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': this.queues.dead },
      });
    } catch (err) {
      if (!/PRECONDITION_FAILED/.test((err as Error).message)) throw err;
      if (this.warnedDone.has(name)) return;
      this.warnedDone.add(name);
      this.log?.warn({ queue: name }, `${name} was declared without a delivery limit (by an earlier gitjobs): a message that always fails is retried without end. Delete the queue while it is empty (gitjobs declares it again) to get the limit.`);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  lost(queue: WorkQueue): boolean {
    return this.made.has(queue);
  }

  onLost(listener: (queue: WorkQueue) => void): void {
    this.lostListeners.add(listener);
  }
}

/** Whether a queue exists, asked on a channel of its own (a missing queue closes the channel it is asked on). */
export async function queueExists(model: ChannelModel, name: string): Promise<boolean> {
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.checkQueue(name);
    return true;
  } catch {
    return false;
  } finally {
    await channel.close().catch(() => undefined);
  }
}
