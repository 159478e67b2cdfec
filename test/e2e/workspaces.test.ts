// Persistent workspaces against the real gateway, real code-server in
// bubblewrap and a real Chromium: files written in the IDE survive a sandbox
// restart, a gateway restart, the sandbox's deletion, and a backup, delete and
// restore, byte for byte.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { ADMIN_PASSWORD, Api, ROOT, sandboxProcesses, startGatewayProcess, tempDataDir, removeDataDir, type RunningGateway } from '../helpers/gateway-process.ts';
import { DOM_TERMINAL_SETTINGS, launchChromium, openIde, runInTerminal } from '../helpers/browser.ts';

const run = promisify(execFile);
const codeyard = (args: string[]) =>
  run(process.execPath, [join(ROOT, 'src/cli/main.ts'), ...args], { env: { ...process.env, CODEYARD_ADMIN_PASSWORD: ADMIN_PASSWORD }, timeout: 120_000 })
    .then((r) => ({ code: 0, ...r }), (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }));

let dataDir: string;
let gw: RunningGateway;
let api: Api;
let browser: Browser;

before(async () => {
  dataDir = tempDataDir();
  gw = await startGatewayProcess({ dataDir });
  api = await Api.login(gw.url);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.destroy();
  removeDataDir(dataDir);
});

/** Every file under the home (workspace and config) with type, mode, size and content hash: what "byte-identical" compares. */
const FINGERPRINT = 'cd /home/coder && find workspace .local/share/code-server/User/settings.json -printf "%p %y %m %s %l\\n" | sort && ' +
  'find workspace -type f -print0 | sort -z | xargs -0 sha256sum';

async function fingerprint(id: string): Promise<string> {
  const r = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: FINGERPRINT });
  assert.equal(r.body.exitCode, 0, r.text);
  return r.body.stdout;
}

async function createOn(workspace: string | null | undefined): Promise<string> {
  const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', ...(workspace === undefined ? {} : { workspace }) });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.state, 'running', r.text);
  return r.body.sandboxID;
}

test('files written in the IDE survive restarts, deletion of the sandbox, and backup → delete → restore', { timeout: 420_000 }, async () => {
  const first = await createOn(undefined);
  const record = (await api.call('GET', `/api/sandboxes/${first}`)).body;
  assert.equal(record.workspace, 'default', 'no workspace named: the user\'s default one');
  const settings = await api.call('POST', `/api/sandboxes/${first}/exec`, { cmd: DOM_TERMINAL_SETTINGS });
  assert.equal(settings.body.exitCode, 0, settings.text);

  // Write through the browser: the IDE's own terminal.
  const page = await openIde(browser, gw.url, first, 'admin', ADMIN_PASSWORD);
  await runInTerminal(page,
    'mkdir -p src && printf "line one\\nline two\\n" > src/notes.md && head -c 300000 /dev/urandom > blob.bin && ' +
    'chmod 0750 src && ln -s src/notes.md link.md && echo WROTE-$((6*7))', 'WROTE-42');
  await page.context().close();

  const original = await fingerprint(first);
  assert.match(original, /workspace\/blob\.bin f 644 300000/);
  assert.match(original, /workspace\/link\.md l 777 \d+ src\/notes\.md/);
  assert.match(original, /workspace\/src d 750/);
  assert.match(original, /settings\.json f/);

  // Sandbox restart: same files.
  const restarted = await api.call('POST', `/api/sandboxes/${first}/restart?wait=true`);
  assert.equal(restarted.body.state, 'running', restarted.text);
  assert.equal(await fingerprint(first), original, 'after a sandbox restart');

  // Gateway restart (SIGTERM; the sandbox keeps running and is adopted).
  await gw.stop();
  gw = await startGatewayProcess({ dataDir });
  api = await Api.login(gw.url);
  assert.equal(await fingerprint(first), original, 'after a gateway restart');

  // The workspace outlives the sandbox: a new sandbox on it sees the same files.
  assert.equal((await api.call('DELETE', `/api/sandboxes/${first}`)).status, 204);
  assert.ok(existsSync(join(dataDir, 'users/admin/default/workspace/blob.bin')), 'deleting a sandbox keeps its persistent workspace');
  const second = await createOn('default');
  assert.equal(await fingerprint(second), original, 'on a new sandbox');

  // Workspaces API: listed with the sandbox using it; delete refused while used, and without confirm.
  const list = (await api.call('GET', '/api/workspaces')).body;
  assert.deepEqual(list.map((w: { name: string; sandboxes: string[] }) => [w.name, w.sandboxes]), [['default', [second]]]);
  const inUse = await api.call('DELETE', '/api/workspaces/default?confirm=default');
  assert.equal(inUse.status, 409);
  assert.match(inUse.body.message, new RegExp(`used by sandbox ${second}: delete it first`));

  // Back up through the CLI while the sandbox runs (it is frozen while copied).
  const backupDir = mkdtempSync(join(tmpdir(), 'cy-backup-'));
  const archive = join(backupDir, 'all.tar.gz');
  const backup = await codeyard(['--data-dir', dataDir, '--port', new URL(gw.url).port, 'backup', archive]);
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stdout, /wrote .*all\.tar\.gz: 1 workspace\(s\) and the database/);
  assert.equal(statSync(archive).mode & 0o777, 0o600, 'a backup holds password hashes: owner-only');
  assert.equal((await api.call('GET', `/api/sandboxes/${second}/status`)).body.state, 'running', 'resumed after the copy');
  assert.equal((await api.call('POST', `/api/sandboxes/${second}/exec`, { cmd: 'echo alive' })).body.stdout, 'alive\n');
  const userBackup = await codeyard(['--data-dir', dataDir, '--port', new URL(gw.url).port, 'backup', join(backupDir, 'admin.tar.gz'), '--user', 'admin']);
  assert.equal(userBackup.code, 0, userBackup.stderr);
  assert.match(userBackup.stdout, /1 workspace\(s\) of admin/);

  // Delete everything the user wrote.
  assert.equal((await api.call('DELETE', `/api/sandboxes/${second}`)).status, 204);
  const unconfirmed = await api.call('DELETE', '/api/workspaces/default');
  assert.equal(unconfirmed.status, 400);
  assert.match(unconfirmed.body.message, /^confirm: /);
  assert.equal((await api.call('DELETE', '/api/workspaces/default?confirm=default')).status, 204);
  assert.ok(!existsSync(join(dataDir, 'users/admin/default')));
  assert.deepEqual((await api.call('GET', '/api/workspaces')).body, []);

  // Restore refuses to run under a live gateway, then works with it stopped.
  const refused = await codeyard(['--data-dir', dataDir, '--port', new URL(gw.url).port, 'restore', archive]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /the gateway \(pid \d+, port \d+\) is running on .*: stop it first/);
  const port = new URL(gw.url).port;
  await gw.stop();
  const restore = await codeyard(['--data-dir', dataDir, '--port', port, 'restore', archive]);
  assert.equal(restore.code, 0, restore.stderr);
  assert.match(restore.stdout, /restored the database and 1 workspace\(s\): admin\/default/);
  gw = await startGatewayProcess({ dataDir });
  api = await Api.login(gw.url);
  assert.deepEqual((await api.call('GET', '/api/workspaces')).body.map((w: { name: string }) => w.name), ['default']);
  const third = await createOn('default');
  assert.equal(await fingerprint(third), original, 'after backup, delete and restore');

  // A user backup restores just the workspaces (here over the existing one, which is moved aside, not lost).
  // The sandbox is left running by the gateway's stop; the restore stops it, so it cannot keep the old files.
  await api.call('POST', `/api/sandboxes/${third}/exec`, { cmd: 'echo newer > newer.txt' });
  await gw.stop();
  assert.ok(sandboxProcesses(third).length > 0, 'sandboxes outlive a stopped gateway');
  const userRestore = await codeyard(['--data-dir', dataDir, '--port', port, 'restore', join(backupDir, 'admin.tar.gz')]);
  assert.equal(userRestore.code, 0, userRestore.stderr);
  assert.match(userRestore.stdout, new RegExp(`stopped \\d+ sandbox\\(es\\) still running on this data dir.*${third}`));
  assert.deepEqual(sandboxProcesses(third), []);
  assert.match(userRestore.stdout, /what it replaced was moved to .*replaced-/);
  const saved = /moved to (\S+)/.exec(userRestore.stdout)![1]!;
  assert.ok(existsSync(join(saved, 'users/admin/default/workspace/newer.txt')), 'the replaced workspace is kept aside');
  gw = await startGatewayProcess({ dataDir });
  api = await Api.login(gw.url);
  const again = await api.call('POST', `/api/sandboxes/${third}/start?wait=true`);
  assert.equal(again.body.state, 'running', again.text);
  assert.equal(await fingerprint(third), original, 'after a user restore, on the sandbox that was running');
  assert.deepEqual(sandboxProcesses(first), []);
  removeDataDir(backupDir);
});

test('workspaces API: create, rename (files follow), names checked, throwaway sandboxes leave nothing behind', { timeout: 180_000 }, async () => {
  assert.equal((await api.call('POST', '/api/workspaces', { name: 'proj' })).status, 201);
  assert.equal((await api.call('POST', '/api/workspaces', { name: 'proj' })).status, 409);
  const bad = await api.call('POST', '/api/workspaces', { name: '../escape' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.message, /^name: "\.\.\/escape" is not a valid workspace name/);
  const badSandbox = await api.call('POST', '/api/sandboxes', { templateID: 'vscode', workspace: 7 });
  assert.equal(badSandbox.status, 400);
  assert.match(badSandbox.body.message, /workspace/);

  const onProj = await createOn('proj');
  await api.call('POST', `/api/sandboxes/${onProj}/exec`, { cmd: 'echo in-proj > here.txt' });
  const renamed = await api.call('PATCH', '/api/workspaces/proj', { name: 'project' });
  assert.equal(renamed.status, 200, renamed.text);
  assert.equal((await api.call('GET', `/api/sandboxes/${onProj}`)).body.workspace, 'project');
  assert.equal((await api.call('POST', `/api/sandboxes/${onProj}/exec`, { cmd: 'cat here.txt' })).body.stdout, 'in-proj\n', 'the running sandbox keeps its files');
  await api.call('POST', `/api/sandboxes/${onProj}/restart?wait=true`);
  assert.equal((await api.call('POST', `/api/sandboxes/${onProj}/exec`, { cmd: 'cat here.txt' })).body.stdout, 'in-proj\n', 'and finds them at the new path after a restart');
  assert.ok(existsSync(join(gw.dataDir, 'users/admin/project/workspace/here.txt')));

  // Another user cannot see or touch it; an admin can with ?owner=.
  assert.equal((await api.call('POST', '/api/users', { username: 'wes', password: 'wes-password-1' })).status, 201);
  const wes = await Api.login(gw.url, 'wes', 'wes-password-1');
  assert.deepEqual((await wes.call('GET', '/api/workspaces')).body, []);
  assert.equal((await wes.call('GET', '/api/workspaces?owner=admin')).status, 403);
  assert.equal((await api.call('GET', '/api/workspaces?owner=wes')).status, 200);

  const throwaway = await createOn(null);
  assert.equal((await api.call('GET', `/api/sandboxes/${throwaway}`)).body.workspace, null);
  await api.call('POST', `/api/sandboxes/${throwaway}/exec`, { cmd: 'echo scratch > s.txt' });
  assert.ok(existsSync(join(gw.dataDir, 'sandboxes', throwaway, 'workspace/s.txt')));
  await api.call('DELETE', `/api/sandboxes/${throwaway}`);
  assert.ok(!existsSync(join(gw.dataDir, 'sandboxes', throwaway)), 'a throwaway workspace is deleted with its sandbox');
  await api.call('DELETE', `/api/sandboxes/${onProj}`);
});
