// What a network namespace of its own costs a local sandbox: two real gateways
// in the same run, one with runtime.local.network: namespace (the default:
// slirp4netns, previews through a relay inside the sandbox's network) and one
// with network: host (sandboxes on the host's network, previews dialled at
// 127.0.0.1:<port>). Measured, interleaved per round:
//   create → running (vscode, throwaway workspace);
//   proxied HTTP to a port preview (a small Node server in the sandbox), p50 and req/s.
import { join } from 'node:path';
import { Api, startGatewayProcess, tempDataDir } from '../../test/helpers/gateway-process.ts';
import { runForResult } from './processes.ts';
import { writeFileSync } from 'node:fs';

export interface NetnsPlan { rounds: number; httpSeconds: number; connections: number }
interface HttpPoint { requestsPerSec: number; p50Ms: number; p99Ms: number; meanMs: number; errors: number; non2xx: number }
export interface NetnsResults {
  namespace: { createToRunningMs: number[]; http: HttpPoint[] };
  host: { createToRunningMs: number[]; http: HttpPoint[] };
}

const PORT = 8765;
// A server in the sandbox answering 1 KiB, on the sandbox's Node.
const SERVER = `setsid nohup /opt/codeyard/node/bin/node -e "const b=Buffer.alloc(1024,97);require('http').createServer((q,r)=>r.end(b)).listen(${PORT},'127.0.0.1')" >/dev/null 2>&1 & ` +
  `for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:${PORT}/ && break; sleep 0.05; done`;

export async function netnsBench(plan: NetnsPlan, log: (line: string) => void): Promise<NetnsResults> {
  const gateways = await Promise.all((['namespace', 'host'] as const).map(async (network) => {
    const dataDir = tempDataDir();
    writeFileSync(join(dataDir, 'codeyard.yaml'), `runtime:\n  local:\n    network: ${network}\nrouting:\n  pathPreviews: true\n`);
    const gw = await startGatewayProcess({ dataDir, env: { CODEYARD_LOG_LEVEL: 'warn' } });
    return { network, gw, api: await Api.login(gw.url) };
  }));
  const results: NetnsResults = { namespace: { createToRunningMs: [], http: [] }, host: { createToRunningMs: [], http: [] } };
  try {
    for (let round = 0; round < plan.rounds; round++) {
      for (const { network, gw, api } of round % 2 === 0 ? gateways : [...gateways].reverse()) {
        const t0 = performance.now();
        const made = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
        if (made.body?.state !== 'running') throw new Error(`network ${network}: sandbox did not start: ${made.text}`);
        results[network].createToRunningMs.push(performance.now() - t0);
        const id = made.body.sandboxID as string;
        const served = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: SERVER });
        if (served.body?.exitCode !== 0) throw new Error(`network ${network}: preview server did not start: ${served.text}`);
        const url = `${gw.url}/vscode-proxy/${id}/proxy/${PORT}/`;
        const warm = await api.call('GET', `/vscode-proxy/${id}/proxy/${PORT}/`);
        if (warm.status !== 200) throw new Error(`network ${network}: preview answered ${warm.status}: ${warm.text.slice(0, 200)}`);
        const point = await runForResult<HttpPoint>(`autocannon (${network})`, process.execPath,
          [join(import.meta.dirname, 'http-load.ts'), JSON.stringify({ url, headers: api.headers, connections: plan.connections, durationSeconds: plan.httpSeconds })],
          (plan.httpSeconds + 60) * 1000);
        results[network].http.push(point);
        log(`  netns round ${round + 1} ${network}: create→running ${(results[network].createToRunningMs.at(-1)! / 1000).toFixed(2)} s, preview p50 ${point.p50Ms} ms (mean ${point.meanMs.toFixed(2)} ms), ${point.requestsPerSec.toFixed(0)} req/s`);
        await api.call('DELETE', `/api/sandboxes/${id}`);
      }
    }
  } finally {
    await Promise.all(gateways.map(({ gw }) => gw.destroy()));
  }
  return results;
}
