import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Toolchain } from './paths.ts';
import { SYSTEM_PATH } from './system-commands.ts';

/** Where the packaged extension is (scripts/build-extension.ts makes it during setup). */
export const EXTENSION_VSIX = join(import.meta.dirname, '..', '..', 'dist', 'codeyard-opencode.vsix');
const NAME = 'codeyard-opencode';

function builtinDir(t: Toolchain): string {
  return join(t.codeServerDir, 'node_modules', 'code-server', 'lib', 'vscode', 'extensions', NAME);
}

/** The version of the extension installed into code-server, if any. */
export function installedExtensionVersion(t: Toolchain): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(builtinDir(t), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * Installs the VSIX into code-server as a built-in extension: every sandbox,
 * local or container, has it from its first start, with nothing to install
 * per user and nothing a user can uninstall by accident. Replaced whole.
 */
export function installBuiltinExtension(t: Toolchain, vsix = EXTENSION_VSIX): void {
  if (!existsSync(vsix)) throw new Error(`${vsix} is missing: run \`npm run setup\` (it packages the extension)`);
  const scratch = mkdtempSync(join(t.dir, '.vsix-'));
  try {
    execFileSync('unzip', ['-q', vsix, 'extension/*', '-d', scratch], { env: { PATH: SYSTEM_PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    const target = builtinDir(t);
    rmSync(`${target}.old`, { recursive: true, force: true });
    if (existsSync(target)) renameSync(target, `${target}.old`);
    renameSync(join(scratch, 'extension'), target);
    rmSync(`${target}.old`, { recursive: true, force: true });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
