// Builds the codeyard-opencode VS Code extension (extensions/codeyard-opencode):
// bundles it with esbuild and packages it as a VSIX with @vscode/vsce into
// dist/codeyard-opencode.vsix. Part of `npm run setup`; `codeyard setup` then
// installs it into code-server as a built-in extension, so every sandbox has it.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const ext = join(root, 'extensions', 'codeyard-opencode');
const started = Date.now();
await build({
  entryPoints: [join(ext, 'src', 'extension.ts')],
  outfile: join(ext, 'out', 'extension.js'),
  bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['vscode'], minify: true, logLevel: 'warning',
});
mkdirSync(join(root, 'dist'), { recursive: true });
const vsix = join(root, 'dist', 'codeyard-opencode.vsix');
execFileSync(process.execPath, [join(root, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '--out', vsix], {
  cwd: ext, stdio: ['ignore', 'ignore', 'inherit'],
});
console.error(`extension packaged into ${vsix} in ${Date.now() - started} ms`);
