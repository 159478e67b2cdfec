// Every party of a benchmark runs in its own process. This starts one, waits
// for the JSON line it prints when ready, and stops it (always bounded).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export interface Party<Ready = Record<string, unknown>> {
  name: string;
  process: ChildProcess;
  pid: number;
  /** What the process printed as its first JSON line. */
  ready: Ready;
  output: () => string;
  stop: () => Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/**
 * Spawns `command` and resolves with the first stdout line that parses as a JSON
 * object (or `{}` on the first line matching `readyLine`, for tools that print text).
 */
export async function startParty<Ready = Record<string, unknown>>(name: string, command: string, args: string[],
  opts: { env?: NodeJS.ProcessEnv; readyLine?: RegExp; stopSignal?: NodeJS.Signals } = {}): Promise<Party<Ready>> {
  const child = spawn(command, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d) => { out = (out + d).slice(-20_000); });
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${name} was not ready in ${READY_TIMEOUT_MS / 1000} s:\n${out}`)); }, READY_TIMEOUT_MS);
    let done = false;
    // Text tools say they are ready on either stream; our own parties print JSON on stdout.
    for (const stream of opts.readyLine ? [child.stdout!, child.stderr!] : [child.stdout!]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (stream === child.stdout) out = (out + line + '\n').slice(-20_000);
        if (done || (opts.readyLine ? !opts.readyLine.test(line) : !line.startsWith('{'))) return;
        done = true;
        clearTimeout(timer);
        resolve(opts.readyLine ? ({} as Ready) : JSON.parse(line) as Ready);
      });
    }
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${out}`)); });
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
  child.removeAllListeners('exit');
  return {
    name, process: child, pid: child.pid!, ready, output: () => out,
    stop: () => stopProcess(child, opts.stopSignal ?? 'SIGTERM'),
  };
}

/** Runs a process to its end and parses the last JSON line it printed (a load generator's result). */
export function runForResult<T>(name: string, command: string, args: string[], timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-20_000); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${name} did not finish in ${timeoutMs / 1000} s:\n${stderr}`)); }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
      if (code !== 0 || !last) return reject(new Error(`${name} failed (exit ${code}):\n${stderr}\n${stdout.slice(-2000)}`));
      resolve(JSON.parse(last) as T);
    });
  });
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** Resident memory of a process, in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** CPU time a process has used so far (user + system), in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5); the slice starts at field 3.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

/** CPU seconds of a process and its live descendants (nginx's master and its worker). */
export function treeCpuSeconds(pid: number): number {
  let total = 0;
  try { total = cpuSeconds(pid); } catch { return 0; }
  for (const child of childrenOf(pid)) total += treeCpuSeconds(child);
  return total;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
