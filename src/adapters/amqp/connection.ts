/**
 * One connection to RabbitMQ and its confirm channel, kept open: when the
 * broker goes away, whoever waits for it (`ready`) waits through the outage
 * while it reconnects with backoff; each time it is open again, `onOpen`
 * declares the topology and resumes the consumers.
 */
import amqp, { type ChannelModel, type ConfirmChannel, type Message } from 'amqplib';
import { redactUrl } from '../../core/url-credentials.js';

export interface ConnectionLog {
  warn(obj: object, msg: string): void;
}

export interface ConnectionOptions {
  url: string;
  log?: ConnectionLog;
  /** Longest wait between reconnection attempts (default 5 s). */
  maxBackoffMs?: number;
  /** Declares what the connection needs and resumes consuming; on a connection that is not yet ready for others. */
  onOpen(model: ChannelModel, publisher: ConfirmChannel): Promise<void>;
  /** A mandatory message the broker could not route (its queue is gone), by message id. */
  onReturn(messageId: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class AmqpConnection {
  model: ChannelModel | undefined;
  publisher: ConfirmChannel | undefined;
  /** The connection being opened, before it is ready for others. */
  opening: ChannelModel | undefined;
  private reconnecting: Promise<void> | undefined;
  closed = false;
  /** Times the connection came back after a loss. */
  reconnects = 0;

  constructor(private readonly options: ConnectionOptions) {}

  async open(): Promise<void> {
    const model = await amqp.connect(this.options.url, { timeout: 5000 });
    this.opening = model;
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
      const publisher = await this.confirmChannel(model);
      await this.options.onOpen(model, publisher);
      this.opening = undefined;
      this.model = model;
      this.publisher = publisher;
    } catch (err) {
      await model.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * The confirm channel of a connection. The broker may close it alone (a
   * publish to an exchange deleted under us): then the next publish gets a
   * new one on the same connection.
   */
  private async confirmChannel(model: ChannelModel): Promise<ConfirmChannel> {
    const publisher = await model.createConfirmChannel();
    publisher.on('error', (err: Error) => this.options.log?.warn({ err: err.message }, 'the confirm channel was closed by the broker; publishing on a new one'));
    publisher.on('return', (msg: Message) => {
      if (msg.properties.messageId) this.options.onReturn(String(msg.properties.messageId));
    });
    publisher.on('close', () => {
      if (this.publisher === publisher) this.publisher = undefined;
    });
    return publisher;
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

  /** The confirm channel, once the connection is open (waiting through an outage). */
  async ready(): Promise<ConfirmChannel> {
    for (;;) {
      if (this.closed) throw new Error('queue is closed');
      if (this.publisher) return this.publisher;
      const model = this.model;
      if (model) {
        // The connection is up but its confirm channel was closed: open another.
        try {
          const publisher = await this.confirmChannel(model);
          if (this.model === model && !this.publisher) this.publisher = publisher;
          else await publisher.close().catch(() => undefined);
          continue;
        } catch {
          /* the connection is going too: reconnect */
        }
      }
      await this.reconnect();
    }
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
