// A real HTTP server on 127.0.0.1 that records the requests it receives: the receiving
// end of webhook notifications. `answer` chooses the reply (a status code, or "hang" to
// never answer, for timeouts).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface HttpSink {
  url: string;
  received: Received[];
  /** Resolves when `n` requests have arrived. */
  waitFor(n: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function httpSink(answer: number | 'hang' = 200): Promise<HttpSink> {
  const received: Received[] = [];
  const waiters: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      waiters.splice(0).forEach((w) => w());
      if (answer === 'hang') return;
      res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer === 200 ? 'ok' : 'no_service');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    // a path like Slack's, whose token is the secret part of the URL
    url: `http://127.0.0.1:${port}/services/T000/B000/secret-token-${port}`,
    received,
    waitFor: (n) =>
      new Promise((resolve) => {
        const check = () => (received.length >= n ? resolve(received) : waiters.push(check));
        check();
      }),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
