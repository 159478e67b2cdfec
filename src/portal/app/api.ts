// The portal talks to the same JSON API as every other client, with the
// session cookie the login page set.

export interface Sandbox {
  sandboxID: string;
  templateID: string;
  name: string;
  owner: string;
  state: 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' | 'error';
  memoryMB: number;
  cpuCount: number;
  createdAt: string;
  endAt: string | null;
  lastActivityAt: string | null;
  workspace: string | null;
  restarts: number;
  limits: string;
  error?: string;
  /** workspace and preview only with subdomain routing: the IDE's own origin, and where port {port} is served. */
  urls: { ide?: string; cdp?: string; cdpWebSocket?: string; workspace?: string; preview?: string };
}

export interface Crash {
  at: string;
  exitCode: number | null;
  signal: string | null;
  uptimeSeconds: number | null;
  classification: string;
  logTail: string;
}

export interface Status {
  state: Sandbox['state'];
  pid: number | null;
  uptimeSeconds: number | null;
  restarts: number;
  lastCrash: Crash | null;
  health: { ok: boolean; checkedAt: string | null };
  limits: { memoryMB: number; cpuCount: number; enforced: boolean };
  usage: { memoryBytes: number | null; cpuSeconds: number | null };
}

export interface Me { username: string; role: 'admin' | 'user'; limits: Limits }
/** Limits in force; null: no limit. */
export interface Limits { maxSandboxes: number | null; maxMemoryMB: number | null; maxCpu: number | null }
/** A limit as set: a number, null (no limit) or 'default' (users.defaultLimits; admins: none). */
export type LimitSetting = number | null | 'default';
export type LimitSettings = { [K in keyof Limits]: LimitSetting };
export interface User { username: string; role: 'admin' | 'user'; disabled: boolean; limits: Limits; limitSettings: LimitSettings; createdAt: string; sandboxes: number }
export interface Workspace { name: string; owner: string; createdAt: string; sandboxes: string[]; usage?: { usedMB: number; limitMB: number | null } | null }
export interface Template { templateID: string; description: string; defaultWorkspace: string | null }
export interface AuditEvent { id: number; at: string; actor: string | null; ip: string | null; action: string; target: string | null; outcome: string; details: Record<string, unknown> }
export interface Host {
  sandboxes: { total: number; running: number; byState: Record<string, number> };
  memory: { totalBytes: number; availableBytes: number | null; sandboxesBytes: number; reservedMB: number };
  cpu: { count: number; loadAverage: number[] };
  users: number;
}

/** A model provider and whether a key is stored for it (never the key; a hint tells keys apart). */
export interface ProviderKey { provider: string; kind: string | null; configured: boolean; set: boolean; hint: string | null }
export interface AiSettings {
  defaultModel: string;
  requestsPerMinute: number;
  monthlyTokens: number | null;
  upstreamTimeoutSeconds: number;
  providers: { provider: string; kind: string; models: string[] }[];
}
export interface UsageTotals { calls: number; inputTokens: number; outputTokens: number }
export interface UsageRow { user: string; provider: string; model: string | null; calls: number; inputTokens: number; outputTokens: number; ownKeyCalls: number }
export interface UsageSummary { from: string | null; to: string | null; totals: UsageTotals; rows: UsageRow[] }
export interface MonthlyBudget { since: string; monthlyTokens: number | null; usedTokens: number; remainingTokens: number | null }

/** One line a person can act on, from the gateway's `{message}`. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'The gateway did not answer. Check your connection, then try again.');
  }
  if (res.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.hash)}`);
    throw new ApiError(401, 'Your session ended: log in again.');
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new ApiError(res.status, data?.message ?? `${method} ${path} failed (${res.status})`);
  return data as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
