#!/usr/bin/env node
// Launcher: runs the TypeScript CLI on Node >= 24. The shell's node may be older
// (Debian's 20); then it hands itself to the Node that `npm run setup` provisioned.
// Kept plain JavaScript that Node 20 can run.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'src', 'cli', 'main.ts');
const MIN_MAJOR = 24;

if (Number(process.versions.node.split('.')[0]) >= MIN_MAJOR) {
  await import(entry);
} else {
  const { node: version } = JSON.parse(readFileSync(join(root, 'src', 'toolchain', 'versions.json'), 'utf8'));
  const cache = process.env.CODEYARD_TOOLCHAIN_DIR
    || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'codeyard');
  const node = join(cache, `node-v${version}`, 'bin', 'node');
  if (!existsSync(node)) {
    process.stderr.write(`codeyard needs Node >= ${MIN_MAJOR} (this is ${process.version}) and the pinned Node ${version} is not in ${cache}.\n` +
      `Run \`npm run setup\` in ${root} first.\n`);
    process.exit(1);
  }
  const child = spawn(node, [entry, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
