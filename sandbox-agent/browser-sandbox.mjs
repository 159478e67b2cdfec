// Runs inside a browser sandbox (on the sandbox's Node): starts headless
// Chromium and connects it to the gateway through two sockets, because the
// sandbox has a network namespace of its own:
//   cdp.sock    — in the run directory; the gateway dials it; bytes go to Chromium's
//                 DevTools listener on the sandbox's loopback (HTTP and WebSocket alike)
//   egress.sock — in the gateway's (read-only) directory, the gateway's egress
//                 proxy; Chromium reaches the outside
//                 through 127.0.0.1:3128 here, which leads to it (when present)
// Exits with Chromium's status, so the supervisor sees a crash as one.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { relay } from './relay.mjs';

const RUN = process.env.CODEYARD_RUN_DIR ?? '/run/codeyard';
// What the gateway provides: read-only here.
const GATEWAY = process.env.CODEYARD_GATEWAY_DIR ?? '/run/codeyard-gateway';
const CHROMIUM = process.env.CODEYARD_CHROMIUM ?? '/usr/bin/chromium';
const DEVTOOLS_PORT = 9222;
const EGRESS_PORT = 3128;
const egress = `${GATEWAY}/egress.sock`;
const cdp = `${RUN}/cdp.sock`;

function devtoolsAnswers() {
  return new Promise((resolve) => {
    const s = connect(DEVTOOLS_PORT, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

const useEgress = existsSync(egress);
if (useEgress) await relay(EGRESS_PORT, egress);

const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--no-first-run', '--no-default-browser-check', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-breakpad', '--disable-domain-reliability', '--metrics-recording-only', '--mute-audio',
  // A fresh profile per run, in the sandbox's private /tmp: a profile in a shared home would be
  // locked by a Chromium of another sandbox (or a dead one), and Chromium refuses a locked profile.
  '--user-data-dir=/tmp/chromium-profile',
  '--remote-debugging-address=127.0.0.1', `--remote-debugging-port=${DEVTOOLS_PORT}`, '--remote-allow-origins=*',
  // Everything, loopback included, goes through the gateway's egress proxy.
  ...(useEgress ? [`--proxy-server=http://127.0.0.1:${EGRESS_PORT}`, '--proxy-bypass-list=<-loopback>'] : []),
  'about:blank',
];
const chromium = spawn(CHROMIUM, args, { stdio: ['ignore', 'inherit', 'inherit'] });
chromium.on('exit', (code, signal) => {
  console.error(`chromium exited (${signal ?? code})`);
  process.exit(code ?? 128 + 9);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => chromium.kill(sig));

for (let i = 0; !(await devtoolsAnswers()); i++) {
  if (i > 600) { console.error('chromium did not open its DevTools port within 60 s'); chromium.kill('SIGKILL'); process.exit(1); }
  await new Promise((r) => setTimeout(r, 100));
}
rmSync(cdp, { force: true });
await relay(cdp, { port: DEVTOOLS_PORT, host: '127.0.0.1' });
console.error(`browser ready: DevTools relayed on ${cdp}${useEgress ? `, egress through ${egress}` : ''}`);
