import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import type { Config } from '../config.ts';
import type { ProviderKeys } from './provider-keys.ts';
import { UsageMeter } from './usage-meter.ts';
import { monthlyBudget } from './budget.ts';

export const AI_PREFIX = '/ai/';
/** A prompt with files attached is large; this is far beyond any real one. */
const MAX_BODY_BYTES = 20 * 1024 * 1024;
const RATE_WINDOW_MS = 60_000;

type ProviderConfig = Config['ai']['providers'][string];

const DEFAULT_BASE: Record<ProviderConfig['kind'], string | undefined> = {
  anthropic: 'https://api.anthropic.com',
  openai: 'https://api.openai.com',
  'openai-compatible': undefined,
};

/** An answer in the shape the caller's SDK reads, so opencode shows the message, not a parse error. */
function sendError(res: ServerResponse, kind: ProviderConfig['kind'] | undefined, status: number, type: string, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) { res.destroy(); return; }
  const body = kind === 'anthropic'
    ? { type: 'error', error: { type, message, code: type } }
    : { type: 'error', error: { message, type, code: type } };
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * /ai/<provider>/… : the only way a sandbox reaches a model. The sandbox sends
 * its own token (Authorization: Bearer, or x-api-key as Anthropic's SDK does);
 * the proxy swaps it for the provider's real key, streams the answer back
 * unbuffered (a client that goes away cancels the upstream call), and records
 * who used how many tokens. Per-user rate and monthly budget limits answer 429.
 */
export class ModelProxy {
  private readonly opts: { store: Store; keys: ProviderKeys; config: () => Config['ai']; log: Logger };
  private readonly recent = new Map<number, number[]>();

  constructor(opts: { store: Store; keys: ProviderKeys; config: () => Config['ai']; log: Logger }) {
    this.opts = opts;
  }

  /** Handles the request if it is a model-proxy URL; false lets the rest of the gateway have it. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    if (!(req.url ?? '').startsWith(AI_PREFIX)) return false;
    this.serve(req, res).catch((err) => {
      this.opts.log.error({ err }, 'model proxy failure');
      sendError(res, undefined, 500, 'internal_error', 'the model proxy failed: see the gateway log');
    });
    return true;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = req.url!;
    const slash = url.indexOf('/', AI_PREFIX.length);
    const name = url.slice(AI_PREFIX.length, slash < 0 ? undefined : slash);
    const rest = slash < 0 ? '/' : url.slice(slash);
    const ai = this.opts.config();
    const provider = ai.providers[name];
    if (!provider) {
      sendError(res, undefined, 404, 'not_found', `no model provider "${name}" here; configured: ${Object.keys(ai.providers).join(', ') || 'none'}`);
      return;
    }
    const token = bearer(req);
    const sandboxID = token ? this.opts.store.ai.sandboxForToken(token) : undefined;
    const record = sandboxID ? this.opts.store.sandboxes.get(sandboxID) : undefined;
    if (!record || record.state === 'stopped') {
      sendError(res, provider.kind, 401, 'authentication_error', token ? 'this sandbox token is not valid (the sandbox was stopped or deleted): restart the sandbox' : 'no sandbox token: the model proxy serves codeyard sandboxes only');
      return;
    }
    const user = this.opts.store.users.byId(record.ownerId);
    if (!user || user.disabled || user.deletedAt) {
      sendError(res, provider.kind, 403, 'permission_error', 'the owner of this sandbox may not use models');
      return;
    }
    const found = this.opts.keys.forUser(name, user.id);
    const base = provider.baseUrl ?? DEFAULT_BASE[provider.kind];
    if (!found || !base) {
      // 403, not 503: clients retry a 5xx for a minute or more, and no retry will bring a key.
      sendError(res, provider.kind, 403, 'not_configured', `no API key for model provider "${name}": an admin must add one (portal: AI; or codeyard ai set-key ${name}), or add your own on your account page`);
      return;
    }
    const key = found.key;
    // A user's own key is theirs to spend: the organisation's monthly budget does not apply to it.
    const limited = this.overLimit(user.id, ai, !found.own);
    if (limited) {
      // Retry-After only for the rate limit, which frees up within the minute: a client told to wait for next month would hang.
      // An exhausted budget is `insufficient_quota` (as OpenAI words it) with x-should-retry: false, so clients
      // (opencode included) report it at once instead of retrying for a minute.
      if (limited.retryAfterSeconds) sendError(res, provider.kind, 429, 'rate_limit_error', limited.message, { 'retry-after': String(limited.retryAfterSeconds) });
      else sendError(res, provider.kind, 429, 'insufficient_quota', limited.message, { 'x-should-retry': 'false' });
      return;
    }

    // The body: bounded, and read whole (small JSON), so the model name can be recorded.
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY_BYTES) {
        sendError(res, provider.kind, 413, 'request_too_large', `a model request may be at most ${MAX_BODY_BYTES / 1024 / 1024} MiB`);
        req.destroy();
        return;
      }
      chunks.push(c as Buffer);
    }
    const body = Buffer.concat(chunks);
    let model: string | null = null;
    try { model = (JSON.parse(body.toString('utf8')) as { model?: string }).model ?? null; } catch { /* not JSON: passed on as it is */ }

    const target = new URL(base.replace(/\/$/, '') + rest);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || ['host', 'authorization', 'x-api-key', 'cookie', 'connection', 'content-length', 'accept-encoding'].includes(k) || k.startsWith('x-forwarded-')) continue;
      headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    if (provider.kind === 'anthropic') headers['x-api-key'] = key;
    else headers.authorization = `Bearer ${key}`;
    headers['content-length'] = String(body.length);

    const meter = new UsageMeter();
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstream = send(target, { method: req.method, headers, timeout: ai.upstreamTimeoutSeconds * 1000 }, (up) => {
      const type = String(up.headers['content-type'] ?? '');
      res.writeHead(up.statusCode ?? 502, { ...pick(up.headers, ['content-type', 'cache-control', 'request-id', 'x-request-id']), 'x-accel-buffering': 'no' });
      up.on('data', (c: Buffer) => { meter.feed(c, type); res.write(c); });
      up.on('end', () => {
        res.end();
        this.record({ userId: user.id, sandboxID: record.sandboxID, provider: name, model, ownKey: found.own, status: up.statusCode ?? 502, started, meter });
      });
      up.on('error', () => res.destroy());
    });
    upstream.on('timeout', () => upstream.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      const slow = err.code === 'ETIMEDOUT';
      sendError(res, provider.kind, slow ? 504 : 502, slow ? 'timeout' : 'upstream_unavailable',
        slow ? `model provider "${name}" did not answer within ${ai.upstreamTimeoutSeconds} s` : `model provider "${name}" is unreachable (${err.code ?? err.message}): try again later`);
      this.record({ userId: user.id, sandboxID: record.sandboxID, provider: name, model, ownKey: found.own, status: slow ? 504 : 502, started, meter });
    });
    // The client went away: the upstream call (and its cost) goes with it.
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    upstream.end(body);
  }

  /** Why this user may not call now (and when a retry could work), or undefined. */
  private overLimit(userId: number, ai: Config['ai'], budgeted: boolean): { message: string; retryAfterSeconds?: number } | undefined {
    const now = Date.now();
    const recent = (this.recent.get(userId) ?? []).filter((t) => now - t < RATE_WINDOW_MS);
    if (recent.length >= ai.requestsPerMinute) {
      this.recent.set(userId, recent);
      const retryAfterSeconds = Math.max(1, Math.ceil((recent[0]! + RATE_WINDOW_MS - now) / 1000));
      return { message: `rate limit: at most ${ai.requestsPerMinute} model calls a minute; try again in ${retryAfterSeconds} s`, retryAfterSeconds };
    }
    if (budgeted && ai.monthlyTokens !== null) {
      const { usedTokens } = monthlyBudget(this.opts.store, userId, ai.monthlyTokens);
      if (usedTokens >= ai.monthlyTokens) return { message: `monthly token budget used up (${usedTokens} of ${ai.monthlyTokens} tokens): ask an admin to raise ai.monthlyTokens, add your own key on your account page, or wait for next month` };
    }
    recent.push(now);
    this.recent.set(userId, recent);
    return undefined;
  }

  private record(o: { userId: number; sandboxID: string; provider: string; model: string | null; ownKey: boolean; status: number; started: number; meter: UsageMeter }): void {
    const { input, output, model } = o.meter.totals();
    const usage = {
      at: new Date().toISOString(), userId: o.userId, sandboxID: o.sandboxID, provider: o.provider, model: model ?? o.model,
      inputTokens: input, outputTokens: output, latencyMs: Date.now() - o.started, status: o.status, ownKey: o.ownKey,
    };
    // Called from the upstream's events, after the answer went out: a store that cannot write (a full disk)
    // must not throw there (it would end the process). The usage is logged instead of lost.
    if (!this.opts.store.bestEffort('recording model usage', () => this.opts.store.ai.recordUsage(usage))) {
      this.opts.log.error({ usage }, 'model usage NOT recorded in the store (it could not be written): budgets miss these tokens');
    }
  }
}

/** The sandbox's token, as OpenAI's (Bearer) or Anthropic's (x-api-key) SDK sends it. */
function bearer(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim() || undefined;
  const key = req.headers['x-api-key'];
  return typeof key === 'string' && key ? key : undefined;
}

function pick(headers: IncomingMessage['headers'], names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) { const v = headers[n]; if (typeof v === 'string') out[n] = v; }
  return out;
}
