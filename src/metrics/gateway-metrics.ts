import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../store/store.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { ProxyPipe } from '../proxy/proxy-pipe.ts';

/** Which part of the gateway answered: a bounded label, never a URL. */
export type RequestArea = 'api' | 'portal' | 'proxy' | 'subdomain' | 'ai' | 'health' | 'other';

/**
 * The front door's Prometheus metrics. Counters are bumped where things happen
 * (once per request, per start, per crash); gauges that mirror state are read
 * from their owners when scraped, so nothing is counted twice or drifts.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'area' | 'code'>;
  private readonly requestChildren = new Map<string, { inc(): void }>();
  private readonly proxyBytes: Counter<'sandbox' | 'direction'>;
  private readonly starts: Histogram;
  private readonly crashes: Counter<'classification'>;

  constructor(deps: { store: Store; sandboxes: SandboxService; pipe: () => ProxyPipe | undefined }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'codeyard_' });
    this.requests = new Counter({ name: 'codeyard_http_requests_total', help: 'HTTP requests answered, by part of the gateway and status code', labelNames: ['area', 'code'], registers });
    this.proxyBytes = new Counter({ name: 'codeyard_proxy_bytes_total', help: 'Bytes proxied to (in) and from (out) each sandbox, HTTP bodies and WebSocket traffic', labelNames: ['sandbox', 'direction'], registers });
    this.starts = new Histogram({ name: 'codeyard_sandbox_start_seconds', help: 'From start to healthy, per sandbox start', buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120], registers });
    this.crashes = new Counter({ name: 'codeyard_sandbox_crashes_total', help: 'Sandbox crashes, by classification', labelNames: ['classification'], registers });
    new Gauge({
      name: 'codeyard_proxy_websockets_open', help: 'Proxied WebSockets open now, per sandbox', labelNames: ['sandbox'], registers,
      collect() {
        this.reset();
        for (const [sandbox, n] of deps.pipe()?.openSockets() ?? []) this.set({ sandbox }, n);
      },
    });
    new Gauge({
      name: 'codeyard_sandboxes', help: 'Sandboxes by state', labelNames: ['state'], registers,
      collect() {
        this.reset();
        const counts: Record<string, number> = { running: 0, starting: 0, restarting: 0, stopped: 0, error: 0 };
        for (const r of deps.store.sandboxes.list()) counts[r.state] = (counts[r.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'codeyard_ai_tokens', help: 'Model-proxy tokens recorded since the data dir was made, by provider and direction', labelNames: ['provider', 'direction'], registers,
      collect() {
        this.reset();
        for (const t of deps.store.ai.tokenTotals()) {
          this.set({ provider: t.provider, direction: 'input' }, t.input);
          this.set({ provider: t.provider, direction: 'output' }, t.output);
        }
      },
    });
    deps.sandboxes.progress.on('progress', (e) => {
      if (e.startSeconds !== undefined) this.starts.observe(e.startSeconds);
      if (e.classification !== undefined) this.crashes.inc({ classification: e.classification });
    });
  }

  /** Once per request: the labelled child is looked up in a map, not hashed from its labels each time. */
  request(area: RequestArea, code: number): void {
    const key = `${area} ${code}`;
    let child = this.requestChildren.get(key);
    if (!child) this.requestChildren.set(key, child = this.requests.labels(area, String(code)));
    child.inc();
  }

  proxied(sandboxID: string, bytesIn: number, bytesOut: number): void {
    if (bytesIn > 0) this.proxyBytes.inc({ sandbox: sandboxID, direction: 'in' }, bytesIn);
    if (bytesOut > 0) this.proxyBytes.inc({ sandbox: sandboxID, direction: 'out' }, bytesOut);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
