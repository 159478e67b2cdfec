// Builds the portal (Preact + TypeScript) into dist/portal: content-hashed
// assets the gateway serves as immutable, and an index.html naming them.
// Part of `npm run setup`; takes well under a second.
import { build } from 'esbuild';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const root = join(import.meta.dirname, '..');
const out = join(root, 'dist', 'portal');
const staging = `${out}.building-${process.pid}`;
const started = Date.now();

rmSync(staging, { recursive: true, force: true });
mkdirSync(join(staging, 'assets'), { recursive: true });
const result = await build({
  entryPoints: [join(root, 'src/portal/app/main.tsx'), join(root, 'src/portal/app/styles.css')],
  outdir: join(staging, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((f) => f.startsWith('main-') && f.endsWith('.js'))!;
const style = outputs.find((f) => f.startsWith('styles-') && f.endsWith('.css'))!;
writeFileSync(join(staging, 'index.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>codeyard</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/${style}"><script type="module" src="/assets/${script}"></script></head>
<body><div id="app"><noscript>The codeyard portal needs JavaScript. Programs can use the HTTP API instead (docs/api.md).</noscript></div></body></html>
`);
// Swap in whole: a gateway serving the old build never sees half of the new one.
rmSync(`${out}.old`, { recursive: true, force: true });
try { renameSync(out, `${out}.old`); } catch { /* first build */ }
renameSync(staging, out);
rmSync(`${out}.old`, { recursive: true, force: true });
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.error(`portal built into ${out} (${outputs.filter((f) => !f.endsWith('.map')).join(', ')}; ${(bytes / 1024).toFixed(0)} KiB with maps) in ${Date.now() - started} ms`);
