// A gateway that survives a full disk (issue 17): store and disk faults mapped to typed
// answers in the error handler, the reserve file, the store's retry after giving it
// back, and best-effort activity and last-seen writes. The real full filesystem is
// test/e2e/bounds-disk.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { pino } from 'pino';
import { installErrorHandler } from '../../src/api/error-handler.ts';
import { loadConfig } from '../../src/config.ts';
import { startGateway } from '../../src/gateway.ts';
import { SandboxService } from '../../src/sandboxes/sandbox-service.ts';
import { Store } from '../../src/store/store.ts';
import { StorageGuard, RESERVE_FILE } from '../../src/store/storage-guard.ts';
import { diskSpace, storeFault, type DiskSpace } from '../../src/store/storage-errors.ts';
import { WorkspaceService } from '../../src/workspaces/workspace-service.ts';
import { FakeRuntime } from '../helpers/fake-runtime.ts';
import { Api } from '../helpers/gateway-process.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const full = () => new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MIB = 1024 * 1024;

/** A logger whose lines the test can read. */
function capturingLog() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s)); } });
  return { log, lines };
}

async function appThrowing(dataDir: string, errors: Record<string, () => Error>) {
  const app = Fastify();
  installErrorHandler(app, { dataDir });
  for (const [path, make] of Object.entries(errors)) app.get(path, async () => { throw make(); });
  await app.ready();
  return app;
}

test('error handler: SQLITE_FULL and ENOSPC answer 507 insufficient_storage naming the data dir and its free space; SQLITE_BUSY 503 with Retry-After', async () => {
  const dataDir = tempDir('cy-disk-');
  const app = await appThrowing(dataDir, {
    '/full': full,
    '/enospc': () => Object.assign(new Error(`ENOSPC: no space left on device, write '${dataDir}/x'`), { code: 'ENOSPC', errno: -28 }),
    '/busy': () => new Database.SqliteError('database is locked', 'SQLITE_BUSY'),
    // An I/O error with room on the disk is a fault of another kind: not passed off as a full disk.
    '/ioerr': () => new Database.SqliteError('disk I/O error', 'SQLITE_IOERR_WRITE'),
  });
  for (const path of ['/full', '/enospc']) {
    const r = await app.inject({ method: 'GET', url: path });
    assert.equal(r.statusCode, 507, path);
    const body = r.json();
    assert.deepEqual(Object.keys(body).sort(), ['code', 'error', 'message']);
    assert.equal(body.code, 507);
    assert.equal(body.error, 'insufficient_storage');
    assert.ok(body.message.includes(dataDir), `names the data dir: ${body.message}`);
    assert.match(body.message, /has \d[\d.]* (bytes|KB|MB|GB|TB) free of/);
    assert.match(body.message, /free space there/);
  }
  const busy = await app.inject({ method: 'GET', url: '/busy' });
  assert.equal(busy.statusCode, 503);
  assert.equal(busy.headers['retry-after'], '1');
  assert.deepEqual({ code: busy.json().code, error: busy.json().error }, { code: 503, error: 'store_busy' });
  const io = await app.inject({ method: 'GET', url: '/ioerr' });
  assert.equal(io.statusCode, 500);
  assert.equal(io.json().error, 'internal');
  await app.close();
});

test('storeFault: an I/O error counts as a full disk only when the disk has next to no room', () => {
  const ioerr = new Database.SqliteError('disk I/O error', 'SQLITE_IOERR_SHMSIZE');
  assert.equal(storeFault(ioerr, tempDir('cy-disk-')), undefined);
  assert.equal(storeFault(full()), 'disk_full');
  assert.equal(storeFault(new Error('wrapped', { cause: full() })), 'disk_full');
  assert.equal(storeFault(new Database.SqliteError('locked', 'SQLITE_BUSY_SNAPSHOT')), 'busy');
  assert.equal(storeFault(new Error('other')), undefined);
});

test('the store retries a write once after a full disk when room was given back; a statement inside a transaction is retried with the transaction whole', () => {
  const store = Store.open(tempDir('cy-disk-'));
  const { db } = store;
  db.exec('CREATE TABLE scratch (x TEXT)');
  // A real SQLITE_FULL: the database may not grow by a page.
  const cap = () => db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true })}`);
  const big = 'x'.repeat(64 * 1024);
  let released = 0;
  store.hooks.onDiskFull = () => { released++; db.pragma('max_page_count = 1000000'); return true; };
  cap();
  db.prepare('INSERT INTO scratch VALUES (?)').run(big);
  assert.equal(released, 1);
  cap();
  db.transaction(() => { db.prepare('INSERT INTO scratch VALUES (?)').run(big); db.prepare('INSERT INTO scratch VALUES (?)').run(big); })();
  assert.equal(released, 2);
  assert.equal((db.prepare('SELECT count(*) AS n FROM scratch').get() as { n: number }).n, 3);
  // Nothing left to give back: the error comes out, and the store works again once there is room.
  store.hooks.onDiskFull = () => false;
  cap();
  assert.throws(() => db.prepare('INSERT INTO scratch VALUES (?)').run(big), { code: 'SQLITE_FULL' });
  db.pragma('max_page_count = 1000000');
  db.prepare('INSERT INTO scratch VALUES (?)').run(big);
  assert.equal((db.prepare('SELECT count(*) AS n FROM scratch').get() as { n: number }).n, 4);
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  store.close();
});

test('the reserve: written with real blocks, released (once) for a write, made again only when reserve + minFree are free', async () => {
  const dataDir = tempDir('cy-disk-');
  const { log, lines } = capturingLog();
  let free: number | undefined; // undefined: the real disk
  const space = (dir: string): DiskSpace => (free === undefined ? diskSpace(dir) : { ...diskSpace(dir), freeBytes: free, writableBytes: free });
  const guard = new StorageGuard({ dataDir, minFreeMB: 1, reserveMB: 2, log, space, checkIntervalMs: 20 });
  assert.equal(await guard.ensureReserve(), true);
  const path = join(dataDir, RESERVE_FILE);
  const st = statSync(path);
  assert.equal(st.size, 2 * MIB);
  assert.ok(st.blocks * 512 >= st.size, `not sparse: ${st.blocks} blocks for ${st.size} bytes`);

  assert.equal(guard.releaseReserve('a test write'), true);
  assert.equal(existsSync(path), false);
  assert.equal(guard.releaseReserve('a test write'), false, 'nothing left to give back');
  const loud = lines.find((l) => /THE DATA DIR'S DISK IS FULL/.test(l.msg));
  assert.ok(loud && loud.msg.includes(path) && /free space there/i.test(loud.msg), JSON.stringify(loud));

  // Not enough room for the reserve and minFree on top: not made, however often it is looked at.
  free = 2 * MIB;
  guard.start();
  await sleep(100);
  assert.equal(existsSync(path), false);
  assert.ok(guard.lowSpace() === undefined, '2 MB free is above minFreeMB 1');
  free = 0.5 * MIB;
  for (let i = 0; i < 100 && !lines.some((l) => /disk is low/.test(l.msg)); i++) await sleep(10);
  assert.ok(lines.some((l) => /disk is low/.test(l.msg)), 'the watch logs a low disk');
  assert.match(guard.lowSpace()!.detail, new RegExp(`${dataDir}.*below storage.minFreeMB \\(1 MB\\)`));
  assert.doesNotMatch(guard.lowSpace()!.brief, new RegExp(dataDir), 'the brief form names no path');
  // Room again: the timer makes it again by itself.
  free = 10 * MIB;
  for (let i = 0; i < 100 && !existsSync(path); i++) await sleep(20);
  assert.equal(statSync(path).size, 2 * MIB);
  assert.ok(lines.some((l) => /disk has room again/.test(l.msg)));

  // A start-up write that finds the disk full gets the reserve and one more try.
  let calls = 0;
  const value = guard.retryWhenFull('the pid file', () => {
    if (calls++ === 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    return 'written';
  });
  assert.deepEqual([value, calls, existsSync(path)], ['written', 2, false]);
  await guard.close();
});

test('report(): a failure is logged once a minute per kind, not once per failure', () => {
  const { log, lines } = capturingLog();
  const guard = new StorageGuard({ dataDir: tempDir('cy-disk-'), minFreeMB: 0, reserveMB: 0, log });
  for (let i = 0; i < 5; i++) guard.report('recording sandbox activity', full());
  guard.report('recording sandbox activity', new Database.SqliteError('locked', 'SQLITE_BUSY'));
  guard.report('sweeping expired sessions', full());
  const reported = lines.filter((l) => l.what);
  assert.deepEqual(reported.map((l) => [l.what, l.code]), [
    ['recording sandbox activity', 'SQLITE_FULL'], ['recording sandbox activity', 'SQLITE_BUSY'], ['sweeping expired sessions', 'SQLITE_FULL'],
  ]);
  assert.match(reported[0]!.msg, /disk is full/);
});

test('touch() never writes, so a store that cannot write never throws out of it; flushActivity keeps the activity and writes it once the store can', async () => {
  const store = Store.inMemory();
  const faults: string[] = [];
  store.hooks.onFault = (what) => faults.push(what);
  const runtime = new FakeRuntime();
  const owner = store.users.create('dan', 'h', 'user');
  const service = new SandboxService({
    store, runtime, workspaces: new WorkspaceService({ store, dataDir: tempDir('cy-ws-'), log: pino({ level: 'silent' }) }),
    log: pino({ level: 'silent' }), defaults: { memoryMB: 512, cpuCount: 1 }, startTimeoutMs: 60_000, reaperIntervalMs: 10,
  });
  const s = service.create(owner, { templateID: 'vscode' });
  assert.equal((await service.settled(s.sandboxID)).state, 'running');
  const update = store.sandboxes.update.bind(store.sandboxes);
  store.sandboxes.update = (id, patch) => { if (patch.lastActivityAt !== undefined) throw full(); return update(id, patch); };

  const at = Date.now() + 60_000;
  assert.doesNotThrow(() => service.touch(s.sandboxID, at));
  assert.doesNotThrow(() => service.flushActivity());
  assert.ok(faults.includes('recording sandbox activity'));
  assert.notEqual(store.sandboxes.get(s.sandboxID)!.lastActivityAt, new Date(at).toISOString());

  // The reaper's timer meets the same store, and a store that cannot even list: it reports, and the process lives on.
  const list = store.sandboxes.list.bind(store.sandboxes);
  store.sandboxes.list = () => { throw full(); };
  service.startReaper();
  await sleep(100);
  assert.ok(faults.includes('the reaper (expired and idle sandboxes)'), faults.join(', '));
  store.sandboxes.list = list;
  store.sandboxes.update = update;
  // Room again: the activity kept in memory is written by the next tick.
  for (let i = 0; i < 50 && store.sandboxes.get(s.sandboxID)!.lastActivityAt !== new Date(at).toISOString(); i++) await sleep(10);
  assert.equal(store.sandboxes.get(s.sandboxID)!.lastActivityAt, new Date(at).toISOString());
  await service.close({ stopSandboxes: true });
  await runtime.closeAll();
});

test('a gateway whose store cannot write: reads, proxied requests and the reaper go on, a write answers 507 naming the disk, and writes work again without a restart', async () => {
  const dataDir = tempDir('cy-disk-');
  const runtime = new FakeRuntime();
  const { log, lines } = capturingLog();
  const gw = await startGateway(loadConfig({ env: {}, flags: { dataDir, port: 0, storage: { reserveMB: 1, minFreeMB: 0 }, sandboxes: { idleStopSeconds: 4 } } }),
    { runtime, log, env: { CODEYARD_ADMIN_PASSWORD: 'pw-admin-1' } });
  try {
    const api = await Api.login(gw.url, 'admin', 'pw-admin-1');
    const id = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' })).body.sandboxID as string;
    const before = gw.store.sandboxes.get(id)!.lastActivityAt;

    // Every write the store is asked for fails as on a full disk.
    const { apiKeys, sessions, sandboxes } = gw.store;
    const originals = { create: apiKeys.create, touch: sessions.touch, update: sandboxes.update };
    apiKeys.create = () => { throw full(); };
    sessions.touch = () => { throw full(); };
    const update = sandboxes.update.bind(sandboxes);
    sandboxes.update = (sid, patch) => { if (patch.lastActivityAt !== undefined) throw full(); return update(sid, patch); };

    const fresh = await Api.login(gw.url, 'admin', 'pw-admin-1'); // a session not yet touched: its first request writes last-seen
    assert.equal((await fresh.call('GET', '/api/me')).status, 200);
    assert.equal((await fresh.call('GET', '/api/sandboxes')).status, 200);
    for (let i = 0; i < 6; i++) {
      const r = await fresh.call('GET', `/vscode-proxy/${id}/page-${i}`);
      assert.equal(r.status, 200, `proxied request ${i}: ${r.text}`);
      await sleep(300);
    }
    const key = await fresh.call('POST', '/api/keys', { name: 'on a full disk' });
    assert.equal(key.status, 507, key.text);
    assert.equal(key.body.error, 'insufficient_storage');
    assert.ok(key.body.message.includes(dataDir), key.body.message);
    // The reaper met the failing activity write and said so, once (not once per tick).
    const activityLines = lines.filter((l) => l.what === 'recording sandbox activity');
    assert.equal(activityLines.length, 1, JSON.stringify(lines.filter((l) => l.what)));
    assert.equal(gw.store.sandboxes.get(id)!.lastActivityAt, before);

    // Room again: no restart, the same process.
    Object.assign(apiKeys, { create: originals.create });
    Object.assign(sessions, { touch: originals.touch });
    Object.assign(sandboxes, { update: originals.update });
    assert.equal((await fresh.call('POST', '/api/keys', { name: 'room again' })).status, 201);
    for (let i = 0; i < 30 && gw.store.sandboxes.get(id)!.lastActivityAt === before; i++) await sleep(100);
    assert.notEqual(gw.store.sandboxes.get(id)!.lastActivityAt, before, 'the activity kept in memory was written');
  } finally {
    await gw.close({ stopSandboxes: true });
    await runtime.closeAll();
  }
});
