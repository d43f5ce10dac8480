/** Server-Sent Events on a Fastify reply: opened, kept alive with pings, closed. */
import type { FastifyReply } from 'fastify';

export interface Stream {
  send(event: string, data: unknown): void;
  close(): void;
}

export function openStream(reply: FastifyReply): Stream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': gitjobs\n\n');
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  res.on('close', () => clearInterval(ping));
  return {
    send: (event, data) => void res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
    close: () => {
      clearInterval(ping);
      res.end();
    },
  };
}
