/**
 * The queue web services (the prototype's Flask role) over RabbitMQ: queues
 * people create, send to, take from and delete over HTTP.
 */
import type { Channel, ConfirmChannel } from 'amqplib';
import type { QueueService } from '../../core/ports.js';

export interface ServiceConnection {
  /** The connection's confirm channel, for confirmed publishes. */
  confirmChannel(): Promise<ConfirmChannel>;
  /** A channel of its own, for one operation that may fail with a channel error. */
  openChannel(): Promise<Channel>;
}

export function queueService(connection: ServiceConnection): QueueService {
  const transport = {
    /** A throwaway channel for one operation; 'missing' when the broker says there is no such queue (404). */
    async withChannel<T>(fn: (channel: Channel) => Promise<T>): Promise<T | 'missing'> {
      const channel = await connection.openChannel();
      channel.on('error', () => undefined);
      try {
        return await fn(channel);
      } catch (err) {
        if (/NOT_FOUND|404/.test((err as Error).message)) return 'missing';
        throw err;
      } finally {
        await channel.close().catch(() => undefined);
      }
    },
    async sendTo(name: string, body: Buffer, contentType: string): Promise<void> {
      const confirm = await connection.confirmChannel();
      await new Promise<void>((resolve, reject) => confirm.sendToQueue(name, body, { persistent: true, contentType }, (err) => (err ? reject(new Error(String(err))) : resolve())));
    },
  };
  return {
    create: async (name) => {
      await transport.withChannel((ch) => ch.assertQueue(name, { durable: true }));
    },
    send: async (name, body, contentType) => {
      const r = await transport.withChannel(async (ch) => {
        await ch.checkQueue(name);
        await transport.sendTo(name, body, contentType);
        return true;
      });
      return r === true;
    },
    receive: async (name) =>
      transport.withChannel(async (ch) => {
        const msg = await ch.get(name, { noAck: true });
        return msg ? { body: msg.content, contentType: String(msg.properties.contentType ?? 'application/octet-stream') } : ('empty' as const);
      }),
    remove: async (name) => {
      const r = await transport.withChannel(async (ch) => {
        await ch.checkQueue(name);
        await ch.deleteQueue(name);
        return true;
      });
      return r === true;
    },
  };
}
