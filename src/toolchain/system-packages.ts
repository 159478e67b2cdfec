import { spawnSync } from 'node:child_process';
import { resolveCommand } from './system-commands.ts';

export function missingDebianPackages(packages: string[]): string[] {
  if (!resolveCommand('dpkg-query')) return [];
  return packages.filter((pkg) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
}

/** apt-get update + install, output passed through so the operator sees progress. */
export function installDebianPackages(packages: string[]): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  if (update.status !== 0) throw new Error('apt-get update failed: check the machine reaches its Debian mirror');
  const install = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  if (install.status !== 0) throw new Error(`apt-get install ${packages.join(' ')} failed: see the output above`);
}
