// WebSocket load generator, in its own process. Argv: one JSON object.
//   {"mode":"roundtrip","url","headers","size","count","connections","durationMs"}
//     latency: one connection, `count` sequential echo round trips (after a warm-up);
//     throughput: `connections` connections each in a closed loop for durationMs.
//     Prints {"p50Us","p99Us","msgsPerSec","samples"}.
//   {"mode":"idle","url","headers","count","holdMs"}
//     opens `count` connections, prints {"open":n}, holds them until stdin
//     closes or holdMs passes (bounded), then exits (1 if any was dropped).
import WebSocket from 'ws';

interface RoundTrip { mode: 'roundtrip'; url: string; headers: Record<string, string>; size: number; count: number; connections: number; durationMs: number }
interface Idle { mode: 'idle'; url: string; headers: Record<string, string>; count: number; holdMs: number }
const job = JSON.parse(process.argv[2]!) as RoundTrip | Idle;
const OPEN_TIMEOUT_MS = 10_000;
const WARMUP = 200;

function open(url: string, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: OPEN_TIMEOUT_MS });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Sends `payload` and resolves with the round trip in µs once the echo is back. */
function roundTrip(ws: WebSocket, payload: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    ws.once('message', () => resolve(Number(process.hrtime.bigint() - t0) / 1000));
    ws.send(payload, { binary: true }, (err) => { if (err) reject(err); });
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

if (job.mode === 'roundtrip') {
  const payload = Buffer.alloc(job.size, 7);
  const one = await open(job.url, job.headers);
  for (let i = 0; i < WARMUP; i++) await roundTrip(one, payload);
  const samples: number[] = [];
  for (let i = 0; i < job.count; i++) samples.push(await roundTrip(one, payload));
  one.close();
  samples.sort((a, b) => a - b);

  const sockets = await Promise.all(Array.from({ length: job.connections }, () => open(job.url, job.headers)));
  let messages = 0;
  const t0 = performance.now();
  const deadline = t0 + job.durationMs;
  await Promise.all(sockets.map(async (ws) => {
    while (performance.now() < deadline) { await roundTrip(ws, payload); messages++; }
  }));
  const elapsed = performance.now() - t0;
  for (const ws of sockets) ws.close();
  console.log(JSON.stringify({ p50Us: percentile(samples, 0.5), p99Us: percentile(samples, 0.99), msgsPerSec: messages / (elapsed / 1000), samples: samples.length }));
  process.exit(0);
} else {
  const sockets: WebSocket[] = [];
  // In batches, so the proxy is not handed a thousand handshakes at once.
  for (let i = 0; i < job.count; i += 50) {
    sockets.push(...await Promise.all(Array.from({ length: Math.min(50, job.count - i) }, () => open(job.url, job.headers))));
  }
  // A socket the proxy drops would make the figures lie: say so on stderr, exit non-zero.
  let dropped = 0;
  for (const ws of sockets) ws.once('close', () => { dropped++; });
  console.log(JSON.stringify({ open: sockets.length }));
  const done = () => {
    if (dropped) process.stderr.write(`${dropped} of ${sockets.length} idle WebSockets were closed by the other side\n`);
    for (const ws of sockets) ws.terminate();
    process.exit(dropped ? 1 : 0);
  };
  // stdin's end (or holdMs, whatever happens to the parent) ends it all.
  process.stdin.on('end', done);
  process.stdin.resume();
  setTimeout(done, job.holdMs);
}
