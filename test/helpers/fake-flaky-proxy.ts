// FAKE: a fault-injecting HTTP proxy in front of a real server (the S3 server of
// s3-server.ts), for the faults a real server cannot produce on demand. It forwards every
// request unchanged (Host header included, so S3 signatures still match) except those
// it is told to break: every n-th answered with an error status, every answer delayed,
// or no answer at all.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Faults {
  /** Answer every n-th request with `status` instead of forwarding it. */
  failEvery?: number;
  status?: number;
  /** Delay each answer by this many milliseconds. */
  delayMs?: number;
  /** Accept requests and never answer them. */
  stall?: boolean;
}

export interface FakeFlakyProxy {
  port: number;
  /** Requests received and requests broken (failed or stalled) since the last set(). */
  stats(): { requests: number; broken: number };
  set(faults: Faults): void;
  close(): Promise<void>;
}

const S3_ERROR = (status: number) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${status === 503 ? 'SlowDown' : 'InternalError'}</Code><Message>injected by the fake flaky proxy</Message></Error>`;

export async function startFakeFlakyProxy(upstreamPort: number): Promise<FakeFlakyProxy> {
  let faults: Faults = {};
  let requests = 0;
  let broken = 0;
  const server = http.createServer((req, res) => {
    const n = ++requests;
    if (faults.stall) {
      broken++;
      req.resume();
      return;
    }
    if (faults.failEvery && n % faults.failEvery === 0) {
      broken++;
      const status = faults.status ?? 503;
      req.resume();
      req.on('end', () => res.writeHead(status, { 'content-type': 'application/xml' }).end(S3_ERROR(status)));
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      setTimeout(() => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      }, faults.delayMs ?? 0);
    });
    up.on('error', (err) => res.destroy(err));
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stats: () => ({ requests, broken }),
    set: (f) => {
      faults = f;
      requests = 0;
      broken = 0;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
