import { constants } from 'node:os';

/** SIGKILL for 9: how a process ended, as people read it. */
export function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}
