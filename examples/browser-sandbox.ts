// A browser sandbox, end to end: create it, drive its Chromium over CDP
// through the gateway with playwright-core, open a page this script serves on
// 127.0.0.1, print the title, save a screenshot, delete the sandbox.
//
//   CODEYARD_URL=http://127.0.0.1:8080 CODEYARD_API_KEY=cy_… node examples/browser-sandbox.ts [screenshot.png]
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const gateway = process.env.CODEYARD_URL ?? 'http://127.0.0.1:8080';
const apiKey = process.env.CODEYARD_API_KEY;
if (!apiKey) throw new Error('set CODEYARD_API_KEY (create one with POST /api/keys, or `codeyard` → portal → account)');
const headers = { 'x-api-key': apiKey, 'content-type': 'application/json' };

// The page the browser will open: served here, reached by the sandbox through the gateway's egress.
const site = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>Hello from the example</title><h1 style="font:48px sans-serif;color:#2458d6">codeyard browser sandbox</h1>');
});
await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
const pageUrl = `http://127.0.0.1:${(site.address() as { port: number }).port}/`;

const created = await fetch(`${gateway}/api/sandboxes?wait=true`, { method: 'POST', headers, body: JSON.stringify({ templateID: 'browser' }) });
const sandbox = await created.json() as { sandboxID: string; state: string; urls: { cdp: string }; message?: string };
if (!created.ok || sandbox.state !== 'running') throw new Error(`the sandbox did not start: ${sandbox.message ?? JSON.stringify(sandbox)}`);
console.log(`sandbox ${sandbox.sandboxID}: CDP at ${sandbox.urls.cdp}`);

try {
  const browser = await chromium.connectOverCDP(sandbox.urls.cdp, { headers: { 'x-api-key': apiKey } });
  const context = browser.contexts()[0] ?? await browser.newContext();
  const page = await context.newPage();
  await page.goto(pageUrl);
  console.log(`title: ${await page.title()}`);
  const file = process.argv[2] ?? 'browser-sandbox.png';
  writeFileSync(file, await page.screenshot());
  console.log(`screenshot: ${file}`);
  await page.close();
  await browser.close();
} finally {
  await fetch(`${gateway}/api/sandboxes/${sandbox.sandboxID}`, { method: 'DELETE', headers: { 'x-api-key': apiKey } });
  site.close();
  console.log('sandbox deleted');
}
