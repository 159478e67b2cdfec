// HTTP load generator, in its own process: autocannon against one URL.
// Argv: one JSON object {"url","headers","connections","durationSeconds"}.
// Prints {"requestsPerSec","p50Ms","p99Ms","meanMs","errors","non2xx","bytesPerSec"} (percentiles in whole ms, the mean finer).
import autocannon from 'autocannon';

const job = JSON.parse(process.argv[2]!) as { url: string; headers: Record<string, string>; connections: number; durationSeconds: number };
const result = await autocannon({ url: job.url, headers: job.headers, connections: job.connections, duration: job.durationSeconds, pipelining: 1 });
console.log(JSON.stringify({
  requestsPerSec: result.requests.average,
  p50Ms: result.latency.p50,
  p99Ms: result.latency.p99,
  meanMs: result.latency.average,
  errors: result.errors + result.timeouts,
  non2xx: result.non2xx,
  bytesPerSec: result.throughput.average,
}));
