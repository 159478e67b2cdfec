// A root-owned file outside every sandbox, for tests that plant symlinks to it
// where the gateway works: it must keep its bytes, owner and mode.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every name the gateway ever wrote, created or chmodded in a sandbox's run directory. */
export const GATEWAY_WRITTEN_NAMES = ['opencode.json', 'egress.sock', 'gateway.sock', 'opencode.json.partial'];

export function rootOnlySentinel(): { path: string; untouched: () => void; plantIn: (dir: string) => string } {
  const dir = mkdtempSync('/tmp/cy-sentinel-');
  const path = join(dir, 'sentinel');
  writeFileSync(path, 'root-only sentinel\n', { mode: 0o600 });
  chmodSync(dir, 0o755);
  return {
    path,
    untouched: () => {
      const st = statSync(path);
      assert.equal(readFileSync(path, 'utf8'), 'root-only sentinel\n');
      assert.equal(st.uid, 0);
      assert.equal(st.mode & 0o7777, 0o600);
    },
    // A shell command, run inside the sandbox, that plants the symlinks and counts them.
    plantIn: (runDir: string) => [`cd ${runDir}`, ...GATEWAY_WRITTEN_NAMES.map((n) => `rm -f ${n}; ln -s ${path} ${n}`), 'ls -l | grep -c -- "-> /tmp/cy-sentinel-"'].join('; '),
  };
}
