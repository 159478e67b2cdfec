import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, publicBaseUrl } from '../../src/config.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const dir = () => tempDir('cy-config-');

test('defaults: 127.0.0.1:8080, data dir under ~/.local/share, bubblewrap isolation', () => {
  const c = loadConfig({ env: {}, flags: { dataDir: dir() } });
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8080);
  assert.equal(c.runtime.local.isolation, 'bubblewrap');
  assert.equal(c.sandboxes.defaultMemoryMB, 2048);
  const d = loadConfig({ env: { HOME: '/home/x' } });
  assert.match(d.dataDir, /codeyard$/);
});

test('precedence: flags over env over file over defaults', () => {
  const d = dir();
  const file = join(d, 'c.yaml');
  writeFileSync(file, 'host: 0.0.0.0\nport: 7000\nlogLevel: debug\nruntime:\n  local:\n    isolation: none\n');
  const fromFile = loadConfig({ configPath: file, env: {} });
  assert.equal(fromFile.host, '0.0.0.0');
  assert.equal(fromFile.port, 7000);
  assert.equal(fromFile.runtime.local.isolation, 'none');
  const fromEnv = loadConfig({ configPath: file, env: { CODEYARD_PORT: '7001', CODEYARD_HOST: '10.0.0.1' } });
  assert.equal(fromEnv.port, 7001);
  assert.equal(fromEnv.host, '10.0.0.1');
  assert.equal(fromEnv.logLevel, 'debug');
  const fromFlags = loadConfig({ configPath: file, env: { CODEYARD_PORT: '7001' }, flags: { port: '7002', host: undefined } });
  assert.equal(fromFlags.port, 7002);
  assert.equal(fromFlags.host, '0.0.0.0');
});

test('CODEYARD_CONFIG names the file; <dataDir>/codeyard.yaml is read when present; JSON works', () => {
  const d = dir();
  writeFileSync(join(d, 'codeyard.yaml'), 'port: 9100\n');
  assert.equal(loadConfig({ env: { CODEYARD_DATA_DIR: d } }).port, 9100);
  const json = join(d, 'other.json');
  writeFileSync(json, JSON.stringify({ port: 9200 }));
  assert.equal(loadConfig({ env: { CODEYARD_CONFIG: json } }).port, 9200);
});

test('errors name the bad key and the file', () => {
  const d = dir();
  const file = join(d, 'bad.yaml');
  writeFileSync(file, 'port: 99999\n');
  assert.throws(() => loadConfig({ configPath: file, env: {} }), /config key "port".*bad\.yaml/);
  writeFileSync(file, 'prot: 80\n');
  assert.throws(() => loadConfig({ configPath: file, env: {} }), /prot/);
  writeFileSync(file, 'runtime:\n  local:\n    isolation: chroot\n');
  assert.throws(() => loadConfig({ configPath: file, env: {} }), /config key "runtime\.local\.isolation"/);
  writeFileSync(file, 'port: [1\n');
  assert.throws(() => loadConfig({ configPath: file, env: {} }), /not valid YAML/);
  assert.throws(() => loadConfig({ env: { CODEYARD_PORT: 'eighty' } }), /config key "port"/);
  assert.throws(() => loadConfig({ configPath: join(d, 'missing.yaml'), env: {} }), /does not exist/);
});

test('publicBaseUrl: explicit publicUrl wins; wildcard hosts become loopback', () => {
  assert.equal(publicBaseUrl(loadConfig({ env: {}, flags: { host: '0.0.0.0', port: 81 } })), 'http://127.0.0.1:81');
  assert.equal(publicBaseUrl(loadConfig({ env: { CODEYARD_PUBLIC_URL: 'https://ide.example.com/' } })), 'https://ide.example.com');
});
