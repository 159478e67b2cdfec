/** Why a sandbox's main process stopped, in the few kinds an operator acts on differently. */
export type CrashClassification = 'oom' | 'missing_dependency' | 'config_error' | 'nonzero_exit' | 'signal' | 'unexpected_exit';

export interface CrashFacts {
  exitCode: number | null;
  signal: string | null;
  /** The kernel OOM-killed a process of the sandbox during this run. */
  oomKilled: boolean;
  logTail: string;
}

// "No such file or directory" alone is everyday noise (Chromium says it about D-Bus on every start): only an exec or spawn failing counts.
const MISSING_DEPENDENCY = /Cannot find module|ERR_MODULE_NOT_FOUND|error while loading shared libraries|command not found|not found in PATH|spawn \S+ ENOENT|exec(vp)?( failed)?:? .*No such file or directory|exec format error/i;
const CONFIG_ERROR = /unknown option|unknown argument|unrecognized option|invalid (option|flag|argument|config)|bad option|YAMLException|error parsing config/i;

/**
 * Most specific first: a kill by the memory limit, then any other kill by a
 * signal (something outside ended it, whatever it had printed), then what the
 * output says, then the exit itself.
 */
export function classifyCrash(f: CrashFacts): CrashClassification {
  if (f.oomKilled && (f.signal === 'SIGKILL' || f.signal === null)) return 'oom';
  if (f.signal) return 'signal';
  // 127: the shell's and env(1)'s "command not found".
  if (f.exitCode === 127 || MISSING_DEPENDENCY.test(f.logTail)) return 'missing_dependency';
  if (CONFIG_ERROR.test(f.logTail)) return 'config_error';
  if (f.exitCode !== null && f.exitCode !== 0) return 'nonzero_exit';
  return 'unexpected_exit';
}
