// What one account and one sandbox may hold. A user's limit is set per key (a
// number, or null for none) or follows the configured default
// (users.defaultLimits; admins follow none). A sandbox's size is capped by
// sandboxes.maxMemoryMB and sandboxes.maxCpuCount whoever owns it. Refusals are
// 403 quota_exceeded, naming the limit, the use and what to do. (A user's share
// of the host's memory is admission's: see admission.ts.)
import { QuotaExceededError } from '../errors.ts';
import type { SandboxRecord } from '../store/sandboxes.ts';
import type { User } from '../store/users.ts';

/** The limits in force for a user; null: no limit. */
export interface LimitsInForce {
  maxSandboxes: number | null;
  maxMemoryMB: number | null;
  maxCpu: number | null;
}

/** The most one sandbox may have (sandboxes.maxMemoryMB, sandboxes.maxCpuCount). */
export interface SandboxCeilings {
  maxMemoryMB: number;
  maxCpuCount: number;
}

const KEYS = ['maxSandboxes', 'maxMemoryMB', 'maxCpu'] as const;

/** A user's limits in force: theirs where set, else the default (none for admins, or without defaults). */
export function limitsInForce(user: Pick<User, 'role' | 'limits'>, defaults?: LimitsInForce): LimitsInForce {
  const out = {} as LimitsInForce;
  for (const key of KEYS) {
    const set = user.limits[key];
    out[key] = set !== 'default' ? set : user.role === 'admin' ? null : defaults?.[key] ?? null;
  }
  return out;
}

/** Throws when a sandbox of this size may not run on this gateway; `existing` names one being started again. */
export function checkSandboxSize(size: { memoryMB: number; cpuCount: number }, ceilings: SandboxCeilings | undefined, existing?: string): void {
  if (!ceilings) return;
  const what = existing ? `sandbox ${existing} has` : 'a sandbox may have at most';
  const fix = existing ? 'delete it and create one with less' : 'ask for less';
  if (size.memoryMB > ceilings.maxMemoryMB) {
    throw new QuotaExceededError('sandboxes.maxMemoryMB', existing
      ? `${what} memoryMB ${size.memoryMB}, more than one sandbox may have on this gateway (sandboxes.maxMemoryMB is ${ceilings.maxMemoryMB}): ${fix}, or an admin raises sandboxes.maxMemoryMB`
      : `memoryMB ${size.memoryMB}: ${what} ${ceilings.maxMemoryMB} on this gateway (sandboxes.maxMemoryMB): ${fix}, or an admin raises sandboxes.maxMemoryMB`);
  }
  if (size.cpuCount > ceilings.maxCpuCount + 1e-9) {
    throw new QuotaExceededError('sandboxes.maxCpuCount', existing
      ? `${what} cpuCount ${size.cpuCount}, more than one sandbox may have on this gateway (sandboxes.maxCpuCount is ${ceilings.maxCpuCount}): ${fix}, or an admin raises sandboxes.maxCpuCount`
      : `cpuCount ${size.cpuCount}: ${what} ${ceilings.maxCpuCount} on this gateway (sandboxes.maxCpuCount): ${fix}, or an admin raises sandboxes.maxCpuCount`);
  }
}

/**
 * A user's allowances: how many sandboxes they may have (all of them, stopped
 * ones too), and how much memory and CPU their sandboxes that are starting,
 * running or stopping may hold together. `restarting` names a sandbox being
 * started again: it is not counted twice, nor as a new one.
 */
export function checkUserQuota(
  owner: Pick<User, 'username' | 'role' | 'limits'>, limits: LimitsInForce, mine: readonly SandboxRecord[],
  wants: { memoryMB: number; cpuCount: number }, restarting?: string,
): void {
  const isNew = restarting === undefined;
  const { maxSandboxes, maxMemoryMB, maxCpu } = limits;
  const active = mine.filter((s) => s.sandboxID !== restarting && (s.state === 'starting' || s.state === 'running' || s.state === 'stopping'));
  const memory = active.reduce((sum, s) => sum + s.memoryMB, 0);
  const cpu = active.reduce((sum, s) => sum + s.cpuCount, 0);
  // A limit that comes from the config says so, and who can change it.
  const from = (key: typeof KEYS[number]) => (owner.limits[key] === 'default' ? ` (users.defaultLimits.${key})` : '');
  const orAsk = (key: typeof KEYS[number]) => (owner.limits[key] === 'default' ? `; an admin can raise it for ${owner.username} (limits.${key})` : '');
  if (isNew && maxSandboxes !== null && mine.length + 1 > maxSandboxes) {
    throw new QuotaExceededError('maxSandboxes', `quota: maxSandboxes for ${owner.username} is ${maxSandboxes}${from('maxSandboxes')} and ${mine.length} exist; delete one first${orAsk('maxSandboxes')}`);
  }
  if (maxMemoryMB !== null && memory + wants.memoryMB > maxMemoryMB) {
    throw new QuotaExceededError('maxMemoryMB', `quota: maxMemoryMB for ${owner.username} is ${maxMemoryMB}${from('maxMemoryMB')}; running sandboxes hold ${memory} and this one needs ${wants.memoryMB}: stop one, or ask for less memoryMB${orAsk('maxMemoryMB')}`);
  }
  if (maxCpu !== null && cpu + wants.cpuCount > maxCpu + 1e-9) {
    throw new QuotaExceededError('maxCpu', `quota: maxCpu for ${owner.username} is ${maxCpu}${from('maxCpu')}; running sandboxes hold ${cpu} and this one needs ${wants.cpuCount}: stop one, or ask for fewer cpuCount${orAsk('maxCpu')}`);
  }
}
