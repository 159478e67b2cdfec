import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';
const CPU_PERIOD_US = 100_000;
/** USER_HZ: /proc reports CPU times in these units on every Linux architecture we run on. */
const CLOCK_TICKS_PER_SECOND = 100;
/** How long destroy() waits for the kernel to empty a group before giving up on it. */
const DESTROY_WAIT_MS = 2_000;
/** How long freeze() waits for every process to stop or go on. */
const FREEZE_WAIT_MS = 5_000;

export interface CgroupHandle {
  /** cgroup.procs files a process writes its pid into to join (one per v1 hierarchy). */
  procsFiles: string[];
  dirs: string[];
}

export type CgroupSupport =
  | { ok: true; version: 1 | 2 }
  | { ok: false; reason: string };

/**
 * Memory and CPU limits through cgroups, v2 (unified) or v1 (memory + cpu hierarchies),
 * under a `codeyard` parent group. Anything we cannot write is reported, not hidden.
 */
export class Cgroups {
  private readonly support: CgroupSupport;

  private readonly root: string;

  constructor(root = ROOT) {
    this.root = root;
    this.support = detect(root);
  }

  status(): CgroupSupport {
    return this.support;
  }

  /** Creates the sandbox's group(s), named `group`, with limits; throws with the reason if the kernel refuses. */
  create(group: string, limits: { memoryMB: number; cpuCount: number; maxProcesses: number }): CgroupHandle {
    const { memoryMB, cpuCount, maxProcesses } = limits;
    if (!this.support.ok) throw new Error(this.support.reason);
    const memBytes = String(memoryMB * 1024 * 1024);
    const quota = String(Math.max(1000, Math.round(cpuCount * CPU_PERIOD_US)));
    if (this.support.version === 2) {
      const parent = join(this.root, 'codeyard');
      mkdirSync(parent, { recursive: true });
      // Controllers must be delegated to children before a child may use them.
      writeFileSync(join(this.root, 'cgroup.subtree_control'), '+memory +cpu +pids');
      writeFileSync(join(parent, 'cgroup.subtree_control'), '+memory +cpu +pids');
      const dir = join(parent, group);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'memory.max'), memBytes);
      writeFileSync(join(dir, 'memory.swap.max'), '0');
      writeFileSync(join(dir, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
      writeFileSync(join(dir, 'pids.max'), String(maxProcesses));
      return { procsFiles: [join(dir, 'cgroup.procs')], dirs: [dir] };
    }
    const mem = join(this.root, 'memory', 'codeyard', group);
    const cpu = join(this.root, 'cpu', 'codeyard', group);
    mkdirSync(mem, { recursive: true });
    mkdirSync(cpu, { recursive: true });
    writeFileSync(join(mem, 'memory.limit_in_bytes'), memBytes);
    writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
    writeFileSync(join(cpu, 'cpu.cfs_quota_us'), quota);
    const handle = { procsFiles: [join(mem, 'cgroup.procs'), join(cpu, 'cgroup.procs')], dirs: [mem, cpu] };
    const pids = join(this.root, 'pids', 'codeyard', group);
    if (existsSync(join(this.root, 'pids'))) {
      // A fork bomb in one sandbox must not exhaust the host's process table.
      mkdirSync(pids, { recursive: true });
      writeFileSync(join(pids, 'pids.max'), String(maxProcesses));
      handle.procsFiles.push(join(pids, 'cgroup.procs'));
      handle.dirs.push(pids);
    }
    const freezer = join(this.root, 'freezer', 'codeyard', group);
    if (existsSync(join(this.root, 'freezer'))) {
      // Pausing for a consistent backup; a frozen process cannot tell (SIGSTOP would show up in its shell).
      mkdirSync(freezer, { recursive: true });
      handle.procsFiles.push(join(freezer, 'cgroup.procs'));
      handle.dirs.push(freezer);
    }
    return handle;
  }

  /** How many processes the kernel has OOM-killed in the group so far (0 if unknown). */
  oomKills(handle: CgroupHandle): number {
    const dir = handle.dirs[0]!; // the memory group, in v1 and v2 alike
    for (const [file, key] of [['memory.events', 'oom_kill'], ['memory.oom_control', 'oom_kill']] as const) {
      try {
        const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(join(dir, file), 'utf8'));
        if (m) return Number(m[1]);
      } catch { /* not this cgroup version */ }
    }
    return 0;
  }

  /** Memory charged to the group now (page cache included), or null. */
  memoryBytes(handle: CgroupHandle): number | null {
    const dir = handle.dirs[0]!;
    for (const file of ['memory.current', 'memory.usage_in_bytes']) {
      try { return Number(readFileSync(join(dir, file), 'utf8')); } catch { /* other version */ }
    }
    return null;
  }

  /** CPU time used by the group: v2's cpu.stat, or the live processes' own counters on v1. */
  cpuSeconds(handle: CgroupHandle): number | null {
    try {
      const m = /^usage_usec (\d+)$/m.exec(readFileSync(join(handle.dirs[0]!, 'cpu.stat'), 'utf8'));
      if (m) return Number(m[1]) / 1e6;
    } catch { /* v1 */ }
    let ticks = 0;
    for (const pid of this.pids(handle)) {
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]); // utime stime cutime cstime
      } catch { /* exited */ }
    }
    return ticks / CLOCK_TICKS_PER_SECOND;
  }

  /** Freezes (or thaws) every process in the group; false when the group has no freezer. */
  async freeze(handle: CgroupHandle, frozen: boolean): Promise<boolean> {
    const v2 = join(handle.dirs[0]!, 'cgroup.freeze');
    const v1 = handle.dirs.find((d) => d.includes('/freezer/'));
    if (existsSync(v2)) {
      writeFileSync(v2, frozen ? '1' : '0');
      return this.settle(join(handle.dirs[0]!, 'cgroup.events'), frozen ? /^frozen 1$/m : /^frozen 0$/m);
    }
    if (v1 && existsSync(v1)) {
      writeFileSync(join(v1, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED');
      return this.settle(join(v1, 'freezer.state'), frozen ? /^FROZEN$/m : /^THAWED$/m);
    }
    return false;
  }

  /** Waits until the kernel reports the freezer state asked for (it may take a moment under load). */
  private async settle(file: string, done: RegExp): Promise<boolean> {
    const deadline = Date.now() + FREEZE_WAIT_MS;
    while (Date.now() < deadline) {
      if (done.test(readFileSync(file, 'utf8'))) return true;
      await sleep(10);
    }
    return false;
  }

  /** Removes what is left of a sandbox's groups, known only by their name (an orphan has no handle); best effort, once its processes are gone. */
  async removeFor(group: string): Promise<void> {
    const dirs = this.support.ok && this.support.version === 2
      ? [join(this.root, 'codeyard', group)]
      : ['memory', 'cpu', 'pids', 'freezer'].map((h) => join(this.root, h, 'codeyard', group));
    const handle = { dirs: dirs.filter((d) => existsSync(d)), procsFiles: dirs.map((d) => join(d, 'cgroup.procs')).filter((f) => existsSync(f)) };
    if (handle.dirs.length) await this.destroy(handle).catch(() => {});
  }

  /** Pids still in the sandbox's groups. */
  pids(handle: CgroupHandle): number[] {
    const pids = new Set<number>();
    for (const f of handle.procsFiles) {
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, 'utf8').split('\n')) if (line) pids.add(Number(line));
    }
    return [...pids];
  }

  /** Kills whatever is still in the groups, then removes them; throws if the kernel will not let go. */
  async destroy(handle: CgroupHandle): Promise<void> {
    // A frozen process cannot act on SIGKILL until it is thawed.
    await this.freeze(handle, false).catch(() => false);
    const deadline = Date.now() + DESTROY_WAIT_MS;
    for (;;) {
      for (const pid of this.pids(handle)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
      for (const dir of handle.dirs) {
        try { if (existsSync(dir)) rmdirSync(dir); } catch { /* busy until its last process is reaped */ }
      }
      const left = handle.dirs.filter((d) => existsSync(d));
      if (left.length === 0) return;
      if (Date.now() > deadline) throw new Error(`cgroups ${left.join(', ')} still busy after ${DESTROY_WAIT_MS} ms`);
      await sleep(20);
    }
  }
}

function detect(root: string): CgroupSupport {
  if (process.getuid?.() !== 0) {
    return { ok: false, reason: 'the gateway is not root, so it cannot create cgroups (run as root, or delegate a cgroup v2 subtree to its user)' };
  }
  const unified = join(root, 'cgroup.controllers');
  if (existsSync(unified)) {
    const controllers = readFileSync(unified, 'utf8');
    if (controllers.includes('memory') && controllers.includes('cpu')) return { ok: true, version: 2 };
    return { ok: false, reason: `cgroup v2 at ${root} lacks the memory or cpu controller (has: ${controllers.trim()})` };
  }
  if (existsSync(join(root, 'memory', 'memory.limit_in_bytes')) && existsSync(join(root, 'cpu', 'cpu.cfs_quota_us'))) {
    try {
      const probe = join(root, 'memory', 'codeyard');
      mkdirSync(probe, { recursive: true });
      return { ok: true, version: 1 };
    } catch (err) {
      return { ok: false, reason: `cgroup v1 memory hierarchy is not writable: ${(err as Error).message}` };
    }
  }
  return { ok: false, reason: `no usable cgroup hierarchy under ${root} (neither v2 with memory+cpu nor v1 memory and cpu)` };
}
