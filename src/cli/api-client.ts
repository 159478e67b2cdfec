import { createWriteStream, existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { INITIAL_PASSWORD_FILE } from '../auth/bootstrap-admin.ts';
import { loadConfig, publicBaseUrl, type Config, type ConfigSources } from '../config.ts';

/**
 * A small client for the running gateway's API, used by CLI commands. It
 * authenticates with --api-key / CODEYARD_API_KEY, else (on the gateway's own
 * machine) as admin with the initial password file.
 */
export class ApiClient {
  private readonly base: string;
  private headers: Record<string, string> = {};
  private readonly config: Config;

  constructor(config: Config, opts: { url?: string; apiKey?: string }) {
    this.config = config;
    this.base = (opts.url ?? publicBaseUrl(config)).replace(/\/$/, '');
    const key = opts.apiKey ?? process.env.CODEYARD_API_KEY;
    if (key) this.headers['x-api-key'] = key;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const text = await res.text();
    const data = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${data?.message ?? text}`);
    return data as T;
  }

  /** Streams the answer's body into `file` (created 0600; replaced only once the download is whole). */
  async download(method: string, path: string, file: string): Promise<{ bytes: number; headers: Headers }> {
    const res = await this.send(method, path);
    if (!res.ok || !res.body) {
      const text = await res.text();
      throw new Error(`${method} ${path}: ${res.status} ${(text && JSON.parse(text).message) ?? ''}`);
    }
    const partial = `${file}.partial`;
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(partial, { mode: 0o600 }));
    renameSync(partial, file);
    return { bytes: statSync(file).size, headers: res.headers };
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    if (!this.headers['x-api-key'] && !this.headers.cookie) await this.loginAsAdmin();
    try {
      return await fetch(this.base + path, {
        method,
        headers: { ...this.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new Error(`cannot reach the gateway at ${this.base} (${(err as Error).cause ?? (err as Error).message}): is \`codeyard serve\` running? (--url to point elsewhere)`);
    }
  }

  private async loginAsAdmin(): Promise<void> {
    const file = join(this.config.dataDir, INITIAL_PASSWORD_FILE);
    const password = process.env.CODEYARD_ADMIN_PASSWORD ?? (existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);
    if (!password) throw new Error('no credentials: pass --api-key (or set CODEYARD_API_KEY); create one with POST /api/keys');
    const res = await fetch(this.base + '/api/auth/login', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }),
    }).catch((err) => { throw new Error(`cannot reach the gateway at ${this.base}: is \`codeyard serve\` running? (${err.cause ?? err.message})`); });
    if (!res.ok) throw new Error(`login as admin failed (${res.status}): pass --api-key instead`);
    this.headers.cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  }
}

/**
 * A command group that talks to the running gateway (`codeyard sandbox …`,
 * `codeyard user …`): its --url and --api-key options, and a client built from them.
 */
export function apiCommandGroup(program: Command, name: string, description: string, globals: () => ConfigSources) {
  const group = program.command(name).description(description)
    .option('--url <url>', 'gateway URL (default: from config)')
    .option('--api-key <key>', 'API key (default: $CODEYARD_API_KEY, else the admin password file)');
  const client = () => {
    const { url, apiKey } = group.opts<{ url?: string; apiKey?: string }>();
    return new ApiClient(loadConfig(globals()), { url, apiKey });
  };
  return { group, client };
}
