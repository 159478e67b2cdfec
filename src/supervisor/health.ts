import { request } from 'node:http';
import type { Endpoint } from '../runtime/interface.ts';

const PROBE_TIMEOUT_MS = 1_000;

/** One GET against a service endpoint; true on any 2xx/3xx within the timeout. */
export function probe(endpoint: Endpoint, path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const target = 'socketPath' in endpoint ? { socketPath: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port };
    const req = request({ ...target, path, method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 400);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Polls until the service answers, the process dies, or the deadline passes.
 * Returns the reason it stopped waiting.
 */
export async function waitForHealthy(opts: {
  endpoint: Endpoint; path: string; timeoutMs: number; isAlive: () => Promise<boolean>; intervalMs?: number; signal?: AbortSignal;
}): Promise<'healthy' | 'exited' | 'timeout' | 'aborted'> {
  const deadline = Date.now() + opts.timeoutMs;
  // A unix-socket probe costs microseconds; polling often shaves start latency.
  const interval = opts.intervalMs ?? 25;
  while (Date.now() < deadline) {
    if (opts.signal?.aborted) return 'aborted';
    if (await probe(opts.endpoint, opts.path)) return 'healthy';
    if (!(await opts.isAlive())) return 'exited';
    await new Promise((r) => setTimeout(r, interval));
  }
  return 'timeout';
}
