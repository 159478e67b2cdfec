import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import type { SandboxRecord } from '../store/sandboxes.ts';
import type { User } from '../store/users.ts';
import type { Endpoint, ExecRequest, ExecResult, Runtime, SandboxSpec } from '../runtime/interface.ts';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError, UpstreamUnavailableError } from '../errors.ts';
import { findTemplate, templateIDs } from '../templates/catalog.ts';
import { waitForHealthy } from '../supervisor/health.ts';
import { newSandboxID } from './sandbox-id.ts';

export interface CreateSandboxInput {
  templateID: string;
  name?: string;
  memoryMB?: number;
  cpuCount?: number;
  /** Seconds until the sandbox is stopped (its files are kept). */
  timeout?: number;
  metadata?: Record<string, string>;
  envVars?: Record<string, string>;
}

export interface SandboxServiceOptions {
  store: Store;
  runtime: Runtime;
  log: Logger;
  defaults: { memoryMB: number; cpuCount: number };
  startTimeoutMs: number;
  /** How often expired sandboxes are looked for. */
  reaperIntervalMs?: number;
}

const REAPER_INTERVAL_MS = 5_000;

/** A start cancelled by a stop or delete that came in while it was running. */
class StartCancelled extends Error {}

/** The sandbox lifecycle; the only caller of the runtime driver. */
export class SandboxService {
  private readonly opts: SandboxServiceOptions;
  /** In-flight lifecycle operations per sandbox, so start, stop and delete never overlap. */
  private readonly pending = new Map<string, Promise<unknown>>();
  /** Starts in progress, so a stop or delete can cut their health wait short. */
  private readonly starting = new Map<string, AbortController>();
  /** Service endpoints of running sandboxes: the proxy's hot path reads only this. */
  private readonly endpoints = new Map<string, Record<string, Endpoint>>();
  private reaper: NodeJS.Timeout | undefined;

  constructor(opts: SandboxServiceOptions) {
    this.opts = opts;
  }

  create(owner: User, input: CreateSandboxInput): SandboxRecord {
    const template = findTemplate(input.templateID);
    if (!template) {
      throw new InvalidInputError(`templateID: unknown template "${input.templateID}"; available: ${templateIDs().join(', ')}`);
    }
    const memoryMB = input.memoryMB ?? this.opts.defaults.memoryMB;
    const cpuCount = input.cpuCount ?? this.opts.defaults.cpuCount;
    this.checkQuota(owner, { memoryMB, cpuCount });
    const sandboxID = newSandboxID();
    const now = new Date();
    const record = this.opts.store.sandboxes.insert({
      sandboxID,
      templateID: template.templateID,
      name: input.name ?? `${template.templateID}-${sandboxID.slice(0, 6)}`,
      ownerId: owner.id,
      memoryMB,
      cpuCount,
      createdAt: now.toISOString(),
      endAt: input.timeout ? new Date(now.getTime() + input.timeout * 1000).toISOString() : null,
      metadata: input.metadata ?? {},
      envVars: input.envVars ?? {},
    });
    this.opts.log.info({ sandboxID, owner: owner.username, templateID: template.templateID }, 'sandbox created');
    this.serialize(sandboxID, () => this.bringUp(sandboxID)).catch(() => { /* recorded as state=error */ });
    return record;
  }

  /** Resolves when every operation queued for the sandbox so far has finished. */
  async settled(sandboxID: string): Promise<SandboxRecord> {
    await this.pending.get(sandboxID)?.catch(() => {});
    return this.mustGet(sandboxID);
  }

  /** The record if `user` may see it: 404 when missing, 403 when someone else's. */
  getFor(user: User, sandboxID: string): SandboxRecord {
    const record = this.opts.store.sandboxes.get(sandboxID);
    if (!record) throw new NotFoundError(`sandbox ${sandboxID} not found`);
    if (record.ownerId !== user.id && user.role !== 'admin') throw new ForbiddenError('you do not have access to this sandbox');
    return record;
  }

  listFor(user: User): SandboxRecord[] {
    return this.opts.store.sandboxes.list(user.role === 'admin' ? undefined : user.id);
  }

  /** Starts a stopped (or failed, or silently dead) sandbox on its existing files. */
  async start(user: User, sandboxID: string): Promise<SandboxRecord> {
    const record = this.getFor(user, sandboxID);
    if (record.state === 'starting') return record;
    if (record.state === 'running' && (await this.opts.runtime.inspect(this.spec(record))).running) return record;
    const owner = this.opts.store.users.byId(record.ownerId);
    if (owner) this.checkQuota(owner, record, record.sandboxID);
    // A timeout that already passed would stop it again at once: starting clears it.
    const endAt = record.endAt && record.endAt <= new Date().toISOString() ? null : record.endAt;
    this.opts.store.sandboxes.update(sandboxID, { state: 'starting', error: null, endAt });
    this.endpoints.delete(sandboxID);
    this.serialize(sandboxID, () => this.bringUp(sandboxID)).catch(() => {});
    return this.mustGet(sandboxID);
  }

  async stop(user: User, sandboxID: string): Promise<SandboxRecord> {
    this.getFor(user, sandboxID);
    this.starting.get(sandboxID)?.abort();
    await this.serialize(sandboxID, () => this.bringDown(sandboxID, 'stop'));
    return this.mustGet(sandboxID);
  }

  async delete(user: User, sandboxID: string): Promise<void> {
    this.getFor(user, sandboxID);
    this.starting.get(sandboxID)?.abort();
    await this.serialize(sandboxID, async () => {
      await this.bringDown(sandboxID, 'remove');
      this.opts.store.sandboxes.delete(sandboxID);
    });
    this.opts.log.info({ sandboxID, by: user.username }, 'sandbox deleted');
  }

  async exec(user: User, sandboxID: string, req: ExecRequest): Promise<ExecResult> {
    const record = this.getFor(user, sandboxID);
    if (record.state !== 'running') {
      throw new ConflictError(`sandbox ${sandboxID} is ${record.state}, not running: ${record.state === 'starting' ? 'wait for it (GET it, or create with ?wait=true)' : 'start it first'}`);
    }
    return this.opts.runtime.exec(this.spec(record), req);
  }

  /**
   * A user's allowances: how many sandboxes they may have, and how much memory
   * and CPU their sandboxes that are not stopped may hold together. 403 naming
   * the limit and the current use.
   */
  private checkQuota(owner: User, wants: { memoryMB: number; cpuCount: number }, restarting?: string): void {
    const isNew = restarting === undefined;
    const { maxSandboxes, maxMemoryMB, maxCpu } = owner.limits;
    const mine = this.opts.store.sandboxes.list(owner.id);
    // The sandbox being started again is not counted twice.
    const active = mine.filter((s) => s.sandboxID !== restarting && (s.state === 'starting' || s.state === 'running' || s.state === 'stopping'));
    const memory = active.reduce((sum, s) => sum + s.memoryMB, 0);
    const cpu = active.reduce((sum, s) => sum + s.cpuCount, 0);
    if (isNew && maxSandboxes !== null && mine.length + 1 > maxSandboxes) {
      throw new ForbiddenError(`quota: maxSandboxes for ${owner.username} is ${maxSandboxes} and ${mine.length} exist; delete one first`);
    }
    if (maxMemoryMB !== null && memory + wants.memoryMB > maxMemoryMB) {
      throw new ForbiddenError(`quota: maxMemoryMB for ${owner.username} is ${maxMemoryMB}; running sandboxes hold ${memory} and this one needs ${wants.memoryMB}: stop one, or ask for less memoryMB`);
    }
    if (maxCpu !== null && cpu + wants.cpuCount > maxCpu + 1e-9) {
      throw new ForbiddenError(`quota: maxCpu for ${owner.username} is ${maxCpu}; running sandboxes hold ${cpu} and this one needs ${wants.cpuCount}: stop one, or ask for fewer cpuCount`);
    }
  }

  /** Where a running sandbox's service listens; the proxy's only question to the service. */
  endpoint(sandboxID: string, service: string): Endpoint | undefined {
    return this.endpoints.get(sandboxID)?.[service];
  }

  /**
   * The proxy could not reach a running sandbox: if its processes are gone, record
   * that (state error, with the log tail) instead of pretending it still runs.
   */
  async reportUnreachable(sandboxID: string): Promise<void> {
    const record = this.opts.store.sandboxes.get(sandboxID);
    if (!record || record.state !== 'running' || this.pending.has(sandboxID)) return;
    if ((await this.opts.runtime.inspect(this.spec(record))).running) return;
    this.endpoints.delete(sandboxID);
    const error = `its main process exited; start it again (POST /api/sandboxes/${sandboxID}/start). Last log lines:\n${this.opts.runtime.logTail(sandboxID, 1500)}`;
    this.opts.store.sandboxes.update(sandboxID, { state: 'error', error });
    this.opts.log.warn({ sandboxID }, 'sandbox main process found dead');
  }

  /**
   * At startup: sandboxes whose processes outlived a gateway restart are adopted;
   * those that died are marked stopped (their files are kept). A record that cannot
   * be reconciled is marked error; it never stops the gateway from starting.
   */
  async reconcile(): Promise<void> {
    for (const record of this.opts.store.sandboxes.list()) {
      if (record.state === 'stopped') continue;
      try {
        const spec = this.spec(record);
        const { running, endpoints } = await this.opts.runtime.inspect(spec);
        if (running && record.state === 'running') {
          this.endpoints.set(record.sandboxID, endpoints);
          this.opts.log.info({ sandboxID: record.sandboxID }, 'adopted running sandbox');
          continue;
        }
        if (running) await this.opts.runtime.stop(spec);
        this.opts.store.sandboxes.update(record.sandboxID, { state: 'stopped' });
        this.opts.log.info({ sandboxID: record.sandboxID, was: record.state }, 'sandbox was not running at startup; marked stopped');
      } catch (err) {
        this.opts.store.sandboxes.update(record.sandboxID, { state: 'error', error: `reconcile at startup failed: ${(err as Error).message}` });
        this.opts.log.error({ sandboxID: record.sandboxID, err: (err as Error).message }, 'reconcile failed; sandbox marked error');
      }
    }
    const known = new Set(this.opts.store.sandboxes.list().map((s) => s.sandboxID));
    const orphans = (await this.opts.runtime.list()).filter((id) => !known.has(id));
    if (orphans.length) this.opts.log.warn({ orphans }, 'runtime holds files of sandboxes the store does not know; left in place');
  }

  /** Stops sandboxes whose timeout (endAt) has passed, every few seconds. */
  startReaper(): void {
    clearInterval(this.reaper);
    this.reaper = setInterval(() => this.reapExpired(), this.opts.reaperIntervalMs ?? REAPER_INTERVAL_MS);
    this.reaper.unref();
  }

  /** Stops tracking; sandboxes keep running so a restarted gateway adopts them. */
  async close(): Promise<void> {
    clearInterval(this.reaper);
    for (const c of this.starting.values()) c.abort();
    await Promise.allSettled([...this.pending.values()]);
  }

  private async bringUp(sandboxID: string): Promise<void> {
    const record = this.opts.store.sandboxes.get(sandboxID);
    if (!record || record.state !== 'starting') return; // deleted or stopped while queued
    const spec = this.spec(record);
    const abort = new AbortController();
    this.starting.set(sandboxID, abort);
    const started = Date.now();
    try {
      await this.opts.runtime.create(spec);
      const result = await this.opts.runtime.start(spec);
      this.opts.store.sandboxes.update(sandboxID, { driverState: result.driverState, limits: result.limits });
      if (result.limitsReason) this.opts.log.warn({ sandboxID, reason: result.limitsReason }, 'memoryMB/cpuCount not enforced');
      spec.driverState = result.driverState;
      const [service, { healthPath }] = Object.entries(spec.services)[0]!;
      const outcome = await waitForHealthy({
        endpoint: result.endpoints[service]!,
        path: healthPath,
        timeoutMs: this.opts.startTimeoutMs,
        isAlive: async () => (await this.opts.runtime.inspect(spec)).running,
        signal: abort.signal,
      });
      if (outcome === 'aborted') throw new StartCancelled();
      if (outcome !== 'healthy') {
        const why = outcome === 'exited' ? 'its main process exited' : `it did not answer its health check within ${this.opts.startTimeoutMs / 1000}s`;
        throw new UpstreamUnavailableError(`sandbox ${sandboxID} failed to start: ${why}. Last log lines:\n${this.opts.runtime.logTail(sandboxID, 1500)}`);
      }
      this.endpoints.set(sandboxID, result.endpoints);
      this.opts.store.sandboxes.update(sandboxID, { state: 'running', error: null });
      this.opts.log.info({ sandboxID, ms: Date.now() - started }, 'sandbox running');
    } catch (err) {
      if (err instanceof StartCancelled) return; // the stop or delete queued behind us finishes the job
      const message = (err as Error).message;
      this.opts.log.error({ sandboxID, err: message }, 'sandbox failed to start');
      await this.opts.runtime.stop(spec).catch(() => {});
      this.opts.store.sandboxes.update(sandboxID, { state: 'error', error: message });
      throw err;
    } finally {
      this.starting.delete(sandboxID);
    }
  }

  private async bringDown(sandboxID: string, how: 'stop' | 'remove'): Promise<void> {
    const record = this.mustGet(sandboxID);
    this.endpoints.delete(sandboxID);
    this.opts.store.sandboxes.update(sandboxID, { state: 'stopping' });
    try {
      await this.opts.runtime[how](this.spec(record));
    } catch (err) {
      this.opts.store.sandboxes.update(sandboxID, { state: 'error', error: (err as Error).message });
      throw err;
    }
    this.opts.store.sandboxes.update(sandboxID, { state: 'stopped' });
  }

  private reapExpired(): void {
    const now = new Date().toISOString();
    for (const record of this.opts.store.sandboxes.list()) {
      if (!record.endAt || record.endAt > now || this.pending.has(record.sandboxID)) continue;
      if (record.state !== 'running' && record.state !== 'starting') continue;
      this.opts.log.info({ sandboxID: record.sandboxID, endAt: record.endAt }, 'sandbox timeout reached; stopping (files kept)');
      this.starting.get(record.sandboxID)?.abort();
      this.serialize(record.sandboxID, () => this.bringDown(record.sandboxID, 'stop')).catch((err) => {
        this.opts.log.error({ sandboxID: record.sandboxID, err: (err as Error).message }, 'stopping expired sandbox failed');
      });
    }
  }

  /** Runs `op` after any operation already in flight for the sandbox. */
  private serialize<T>(sandboxID: string, op: () => Promise<T>): Promise<T> {
    const before = this.pending.get(sandboxID) ?? Promise.resolve();
    const next = before.catch(() => {}).then(op);
    this.pending.set(sandboxID, next);
    const cleanup = () => { if (this.pending.get(sandboxID) === next) this.pending.delete(sandboxID); };
    next.then(cleanup, cleanup);
    return next;
  }

  private mustGet(sandboxID: string): SandboxRecord {
    const record = this.opts.store.sandboxes.get(sandboxID);
    if (!record) throw new NotFoundError(`sandbox ${sandboxID} not found`);
    return record;
  }

  private spec(record: SandboxRecord): SandboxSpec {
    const template = findTemplate(record.templateID);
    if (!template) throw new ConflictError(`sandbox ${record.sandboxID} uses template "${record.templateID}", which this version no longer has`);
    return {
      sandboxID: record.sandboxID,
      seq: record.seq,
      memoryMB: record.memoryMB,
      cpuCount: record.cpuCount,
      envVars: record.envVars,
      command: template.command,
      services: template.services,
      driverState: record.driverState,
    };
  }
}
