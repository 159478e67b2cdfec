// The proxies codeyard is measured against, each in its own process, all in
// front of the same backend: nginx (Debian's) and configurable-http-proxy.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/gateway-process.ts';
import { startParty, type Party } from './processes.ts';

const ROOT = join(import.meta.dirname, '..', '..');
export const NGINX = process.env.CODEYARD_BENCH_NGINX ?? '/usr/sbin/nginx';

/**
 * nginx as one would put it in front of an IDE: HTTP/1.1 and keep-alive to the
 * upstream, WebSocket upgrades passed, no response buffering (streams, like the
 * Node proxies), no access log. One worker: one process, like each Node proxy.
 */
export async function startNginx(backendPort: number): Promise<Party & { url: string }> {
  const prefix = mkdtempSync('/tmp/cy-bench-nginx-');
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, `daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 100000;
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 256; }
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 3600s;
    }
  }
}
`);
  const party = await startParty('nginx', NGINX, ['-c', conf, '-p', prefix, '-g', 'error_log stderr notice;'], { readyLine: /start worker process/, stopSignal: 'SIGQUIT' });
  return { ...party, url: `http://127.0.0.1:${port}`, stop: async () => { await party.stop(); rmSync(prefix, { recursive: true, force: true }); } };
}

/** configurable-http-proxy (JupyterHub's), its defaults, every path to the backend. */
export async function startChp(backendPort: number): Promise<Party & { url: string }> {
  const [port, apiPort] = [await freePort(), await freePort()];
  const party = await startParty('configurable-http-proxy', process.execPath, [
    join(ROOT, 'node_modules/configurable-http-proxy/bin/configurable-http-proxy'),
    '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(apiPort),
    '--default-target', `http://127.0.0.1:${backendPort}`, '--log-level', 'info',
  ], { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: 'bench' }, readyLine: /Proxying http/ });
  return { ...party, url: `http://127.0.0.1:${port}` };
}
