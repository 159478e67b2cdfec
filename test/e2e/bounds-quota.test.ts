// Hard workspace size limits (storage.workspaceImageMB): a real gateway makes and
// mounts a btrfs filesystem for <dataDir>/users, each workspace a subvolume with a
// qgroup limit. A user writing past hers gets "Disk quota exceeded" inside her
// sandbox; her earlier files stay; others go on creating and writing; the API
// shows the usage; a throwaway workspace has its own cap.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import { Api, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;
let admin: Api;
let ann: Api;
let bob: Api;

const CONFIG = 'storage:\n  workspaceImageMB: 1024\n  reserveMB: 0\nusers:\n  defaultLimits:\n    workspaceMB: 64\nsandboxes:\n  throwawayWorkspaceMB: 48\n';

type Exec = { exitCode: number; stdout: string; stderr: string };
const exec = async (api: Api, id: string, cmd: string): Promise<Exec> => {
  const r = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd, timeoutMs: 60_000 });
  assert.equal(r.status, 200, r.text);
  return r.body;
};

before(async () => {
  gw = await startGatewayProcess({ config: CONFIG });
  admin = await Api.login(gw.url);
  for (const u of ['ann', 'bob']) assert.equal((await admin.call('POST', '/api/users', { username: u, password: `${u}-password-1` })).status, 201);
  ann = await Api.login(gw.url, 'ann', 'ann-password-1');
  bob = await Api.login(gw.url, 'bob', 'bob-password-1');
});

after(async () => { await gw?.destroy(); });

test('the workspaces live on a filesystem of their own (btrfs), not on the data dir\'s disk', () => {
  assert.equal(statfsSync(join(gw.dataDir, 'users')).type, 0x9123683e);
  assert.notEqual(statfsSync(gw.dataDir).type, 0x9123683e);
});

test('a write past the workspace limit fails with "Disk quota exceeded" in the sandbox; the rest of the machine goes on', { timeout: 240_000 }, async () => {
  const a = await ann.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', memoryMB: 768 });
  assert.equal(a.body?.state, 'running', a.text);
  const id = a.body.sandboxID;
  assert.equal((await exec(ann, id, 'echo precious > kept.txt && cat kept.txt')).stdout, 'precious\n');
  const fill = await exec(ann, id, 'dd if=/dev/zero of=big bs=1M count=200 2>&1; echo "exit=$?"');
  assert.match(fill.stdout, /Disk quota exceeded/);
  assert.match(fill.stdout, /exit=1\n$/);
  // A subvolume of her own would get a quota group outside her limit: making one is refused.
  const nested = await exec(ann, id, 'btrfs subvolume create sv 2>&1; echo "exit=$?"; ls -d sv 2>&1');
  assert.match(nested.stdout, /Operation not permitted\n(.|\n)*exit=1\n/, nested.stdout);
  assert.match(nested.stdout, /cannot access 'sv'/);
  // Her own files are intact, and she can free space.
  assert.equal((await exec(ann, id, 'cat kept.txt')).stdout, 'precious\n');
  const usage = (await ann.call('GET', '/api/workspaces')).body.find((w: { name: string }) => w.name === 'default').usage;
  assert.equal(usage.limitMB, 64);
  assert.ok(usage.usedMB >= 48 && usage.usedMB <= 64, JSON.stringify(usage));

  // Another user creates a sandbox and writes files; the gateway answers throughout.
  const b = await bob.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', memoryMB: 768 });
  assert.equal(b.body?.state, 'running', b.text);
  const wrote = await exec(bob, b.body.sandboxID, 'dd if=/dev/zero of=data bs=1M count=20 2>/dev/null; ls -l data | cut -d" " -f5');
  assert.equal(wrote.stdout, `${20 * 2 ** 20}\n`);
  assert.equal(gw.process.exitCode, null);
  assert.equal((await fetch(`${gw.url}/readyz`)).status, 200);
  assert.equal((await ann.call('POST', '/api/keys', { name: 'still-writes' })).status, 201);

  // Freed space is hers again.
  assert.equal((await exec(ann, id, 'rm big && dd if=/dev/zero of=small bs=1M count=8 2>&1 | tail -1 | cut -d" " -f1')).stdout, `${8 * 2 ** 20}\n`);
  await Promise.all([ann.call('DELETE', `/api/sandboxes/${id}`), bob.call('DELETE', `/api/sandboxes/${b.body.sandboxID}`)]);
});

test('a throwaway workspace has its own cap, and goes with its sandbox', { timeout: 180_000 }, async () => {
  const t = await bob.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null, memoryMB: 768 });
  assert.equal(t.body?.state, 'running', t.text);
  const id = t.body.sandboxID;
  const fill = await exec(bob, id, 'dd if=/dev/zero of=big bs=1M count=200 2>&1; echo "exit=$?"; df -P . | tail -1 | cut -c1-20');
  assert.match(fill.stdout, /Disk quota exceeded/);
  assert.equal((await bob.call('DELETE', `/api/sandboxes/${id}`)).status, 204);
  const left = await admin.call('GET', '/api/sandboxes');
  assert.ok(!left.body.some((s: { sandboxID: string }) => s.sandboxID === id));
  const { existsSync } = await import('node:fs');
  assert.equal(existsSync(join(gw.dataDir, 'users', '.throwaway', id)), false, 'its subvolume went with it');
});

test('the portal shows each workspace\'s size against its limit', { timeout: 120_000 }, async () => {
  const { launchChromium } = await import('../helpers/browser.ts');
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${gw.url}/login`);
    await page.fill('#username', 'ann');
    await page.fill('#password', 'ann-password-1');
    await page.click('button[type=submit]');
    await page.waitForURL((u) => u.pathname !== '/login');
    const row = page.locator('table tr', { hasText: 'default' });
    await row.waitFor();
    assert.match(await row.innerText(), /\d+ MB of 64 MB/);
  } finally {
    await browser.close();
  }
});
