// A gateway that survives a full disk (issue 17), on a real small filesystem: a 200 MB
// tmpfs is the data dir, a real VS Code sandbox fills it from inside (its workspace
// lives there), and the gateway keeps serving: it never exits, /readyz says the disk is
// low, reads and the IDE work, the reserve carries the store's writes once, then writes
// answer 507 naming the disk; once space is freed everything works again, no restart.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Api, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

const MIB = 1024 * 1024;
const RESERVE_MB = 16;
const MIN_FREE_MB = 32;
const needsRoot = process.getuid?.() !== 0 && 'mounting a small filesystem needs root';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let mnt: string | undefined;
let mounted = false;
let dataDir: string;
let gw: RunningGateway | undefined;
const exits: string[] = [];

before(async () => {
  if (needsRoot) return;
  // Short: sandbox sockets live under the data dir, and sun_path is 108 bytes.
  mnt = mkdtempSync('/tmp/cy-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=200m,mode=0700', 'tmpfs', mnt]);
  mounted = true;
  // A directory inside the mount, so the helper can remove the data dir whole and the mount point stays.
  dataDir = join(mnt, 'd');
  mkdirSync(dataDir, { mode: 0o700 });
  gw = await startGatewayProcess({ dataDir, config: `storage:\n  minFreeMB: ${MIN_FREE_MB}\n  reserveMB: ${RESERVE_MB}\n` });
  gw.process.on('exit', (code, signal) => exits.push(`code ${code} signal ${signal}`));
});

after(async () => {
  try { await gw?.destroy(); } catch (err) { process.stderr.write(`cleanup: ${(err as Error).message}\n`); }
  if (mounted) {
    try { execFileSync('umount', [mnt!]); } catch { try { execFileSync('umount', ['-l', mnt!]); } catch { /* left for the operator */ } }
  }
  if (mnt) rmSync(mnt, { recursive: true, force: true });
});

test('a full data-dir disk: the gateway never exits, says so in /readyz, serves reads and the IDE, writes with the reserve, then 507 naming the disk; freed, it recovers without a restart', { skip: needsRoot, timeout: 300_000 }, async () => {
  const g = gw!;
  const reserve = join(dataDir, '.reserve');
  const alive = (when: string) => assert.deepEqual([g.process.exitCode, g.process.signalCode, exits], [null, null, []], `the gateway exited ${when}:\n${g.output().slice(-4000)}`);
  const until = async (what: string, cond: () => boolean | Promise<boolean>, ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(250)) if (await cond()) return;
    assert.fail(`${what} within ${ms / 1000} s`);
  };
  const api = await Api.login(g.url);
  const readyz = async () => { const r = await fetch(`${g.url}/readyz`); return { status: r.status, body: await r.json() as { problems?: string[] } }; };

  // The reserve is made in the background at start: 16 MB of real blocks.
  await until('the reserve is made', () => existsSync(reserve) && statSync(reserve).size === RESERVE_MB * MIB, 30_000);
  assert.ok(statSync(reserve).blocks * 512 >= RESERVE_MB * MIB, 'the reserve holds real blocks, not a sparse file');
  assert.equal((await readyz()).status, 200);

  const created = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', memoryMB: 768 });
  assert.equal(created.status, 201, created.text);
  const id = created.body.sandboxID as string;
  assert.equal(created.body.state, 'running', created.text);
  const exec = async (cmd: string) => {
    const r = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd, timeoutMs: 120_000 });
    assert.equal(r.status, 200, `exec ${cmd}: ${r.status} ${r.text}`);
    return r.body as { exitCode: number; stdout: string; stderr: string };
  };
  const kept = await exec('head -c 1048576 /dev/urandom > kept.bin && sha256sum kept.bin');
  const keptSum = kept.stdout.split(' ')[0]!;
  assert.equal((await api.call('POST', '/api/keys', { name: 'before the fill' })).status, 201);

  // Fill the data dir's filesystem from inside the sandbox.
  const fill = await exec('dd if=/dev/zero of=big bs=1M; df -B1 --output=avail . | tail -1');
  assert.match(fill.stdout + fill.stderr, /No space left on device/);
  assert.equal(Number(fill.stdout.trim().split('\n').at(-1)), 0, `the disk is full: ${fill.stdout}`);
  alive('after the fill');

  // /readyz: not ready, naming the disk (the brief form: loopback is no credential here).
  const low = await readyz();
  assert.equal(low.status, 503);
  assert.ok(low.body.problems?.some((p) => /^disk: the data dir's disk has .* free, below storage\.minFreeMB \(32 MB\)/.test(p)), JSON.stringify(low.body));

  // Reads, the IDE through the proxy, and its activity (written by the reaper every 5 s) for a while.
  for (let i = 0; i < 8; i++) {
    assert.equal((await api.call('GET', '/api/sandboxes')).status, 200);
    assert.equal((await api.call('GET', '/api/me')).status, 200);
    const ide = await api.call('GET', `/vscode-proxy/${id}/`);
    assert.ok(ide.status < 500, `the IDE through the proxy: ${ide.status} ${ide.text.slice(0, 300)}`);
    alive(`during traffic (${i})`);
    await sleep(1000);
  }

  // The first store write after the fill (the activity flush, a login, a key: whichever came first) found
  // the disk full and was given the reserve: writes go on, and the log says so loudly.
  const again = await Api.login(g.url);
  assert.equal((await again.call('GET', '/api/me')).status, 200);
  const onReserve = await api.call('POST', '/api/keys', { name: 'on the reserve' });
  assert.equal(onReserve.status, 201, onReserve.text);
  assert.equal(existsSync(reserve), false, 'the reserve was given back');
  assert.match(g.output(), /THE DATA DIR'S DISK IS FULL: .* reserve .* was deleted/);
  alive('after writing on the reserve');

  // Fill what the reserve gave back: now a write that needs room answers 507 naming the disk.
  const refill = await exec('dd if=/dev/zero of=big2 bs=1M');
  assert.match(refill.stderr, /No space left on device/);
  const refused = await api.call('POST', '/api/keys', { name: 'no room' });
  assert.equal(refused.status, 507, refused.text);
  assert.equal(refused.body.code, 507);
  assert.equal(refused.body.error, 'insufficient_storage');
  assert.ok(refused.body.message.includes(dataDir), refused.body.message);
  assert.match(refused.body.message, /has \d[\d.]* (bytes|KB) free of .*free space there/);
  // A login needs a session row: it too answers 507, naming the disk.
  const noLogin = await fetch(`${g.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'codeyard-test-admin-pw' }) });
  assert.equal(noLogin.status, 507);
  assert.match(((await noLogin.json()) as { message: string }).message, /disk holding the gateway's data dir is full/);
  // Reads and the IDE go on.
  assert.equal((await api.call('GET', '/api/me')).status, 200);
  assert.equal((await api.call('GET', '/api/sandboxes')).status, 200);
  assert.ok((await api.call('GET', `/vscode-proxy/${id}/`)).status < 500);
  await sleep(6000); // a reaper tick or more meets the full store
  alive('with the reserve gone and the disk full');
  assert.match(g.output(), /"what":"recording sandbox activity".*logged once a minute/);

  // Free the space: everything works again in the same process.
  const freed = await exec('rm -f big big2 && df -B1 --output=avail . | tail -1');
  assert.ok(Number(freed.stdout.trim().split('\n').at(-1)) > (MIN_FREE_MB + RESERVE_MB) * MIB, freed.stdout);
  await until('/readyz answers 200 again', async () => (await readyz()).status === 200, 10_000);
  assert.equal((await api.call('POST', '/api/keys', { name: 'after the fill' })).status, 201);
  await Api.login(g.url);
  await until('the reserve is made again', () => existsSync(reserve) && statSync(reserve).size === RESERVE_MB * MIB, 30_000);
  assert.equal((await exec('sha256sum kept.bin')).stdout.split(' ')[0], keptSum, 'a file written before the fill is intact');
  alive('after the recovery');

  // The database is whole, and holds what was written before, during (on the reserve) and after.
  await g.stop();
  const db = new Database(join(dataDir, 'codeyard.db'), { readonly: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    const names = (db.prepare('SELECT name FROM api_keys ORDER BY rowid').all() as { name: string }[]).map((k) => k.name);
    assert.deepEqual(names, ['before the fill', 'on the reserve', 'after the fill']);
  } finally {
    db.close();
  }
});
