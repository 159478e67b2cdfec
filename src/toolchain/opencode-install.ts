import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Toolchain } from './paths.ts';
import { OPENCODE_VERSION } from './versions.ts';
import { withoutNpmEnv } from './code-server-install.ts';

/** The installed opencode's --version, or undefined if it does not run. */
export function opencodeVersion(t: Toolchain): string | undefined {
  const bin = join(t.opencodeDir, 'bin', 'opencode');
  if (!existsSync(bin)) return undefined;
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000, env: { PATH: '/usr/bin:/bin', HOME: '/tmp' } });
  return r.status === 0 ? r.stdout.trim().split('\n').pop() : undefined;
}

/**
 * Installs opencode from npm (`opencode-ai`, whose platform package carries the
 * binary) and keeps only the binary that suits this CPU: the package's own
 * choice, made without running its install script.
 */
export async function installOpencode(t: Toolchain, progress: (line: string) => void): Promise<void> {
  const target = t.opencodeDir;
  const scratch = `${target}.partial-${process.pid}`;
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  try {
    writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'codeyard-opencode', private: true }) + '\n');
    const started = Date.now();
    const code = await new Promise<number>((resolve) => {
      const child = spawn('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', `opencode-ai@${OPENCODE_VERSION}`], {
        cwd: scratch, stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...withoutNpmEnv(process.env), PATH: `${t.nodeDir}/bin:${process.env.PATH}`, npm_config_update_notifier: 'false' },
      });
      let err = '';
      child.stderr!.on('data', (d) => { err = (err + d).slice(-3000); });
      child.on('close', (c) => { if (c !== 0) progress(err); resolve(c ?? 1); });
    });
    if (code !== 0) throw new Error(`npm install opencode-ai@${OPENCODE_VERSION} failed (exit ${code}): see above`);
    // Like the package's postinstall: the AVX2 build where the CPU has it, else the baseline one.
    const avx2 = /(^|\s)avx2(\s|$)/i.test(readFileSync('/proc/cpuinfo', 'utf8'));
    const candidates = avx2 ? ['opencode-linux-x64', 'opencode-linux-x64-baseline'] : ['opencode-linux-x64-baseline', 'opencode-linux-x64'];
    const source = candidates.map((p) => join(scratch, 'node_modules', p, 'bin', 'opencode')).find((p) => existsSync(p));
    if (!source) throw new Error(`opencode-ai@${OPENCODE_VERSION} brought no linux-x64 binary (this machine: ${process.arch})`);
    const kept = `${target}.new-${process.pid}`;
    mkdirSync(join(kept, 'bin'), { recursive: true });
    copyFileSync(source, join(kept, 'bin', 'opencode'));
    chmodSync(join(kept, 'bin', 'opencode'), 0o755);
    rmSync(target, { recursive: true, force: true });
    renameSync(kept, target);
    progress(`  opencode ${OPENCODE_VERSION} in ${Math.round((Date.now() - started) / 1000)}s`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
