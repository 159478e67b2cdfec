import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchProxyRoute } from '../../src/proxy/routes.ts';
import { captureOutput } from '../../src/runtime/capture-output.ts';
import { PassThrough } from 'node:stream';

test('proxy routes: prefix stripped, query kept, only the first segment picks the sandbox', () => {
  assert.equal(matchProxyRoute('/api/sandboxes'), undefined);
  assert.deepEqual(matchProxyRoute('/vscode-proxy/abc123/'), { sandboxID: 'abc123', service: 'ide', upstreamPath: '/' });
  assert.deepEqual(matchProxyRoute('/vscode-proxy/abc123/static/x.js?v=1'), { sandboxID: 'abc123', service: 'ide', upstreamPath: '/static/x.js?v=1' });
  assert.deepEqual(matchProxyRoute('/vscode-proxy/abc123'), { sandboxID: 'abc123', service: 'ide', upstreamPath: undefined });
  assert.deepEqual(matchProxyRoute('/vscode-proxy/abc123?folder=/x'), { sandboxID: 'abc123', service: 'ide', upstreamPath: undefined });
  assert.equal((matchProxyRoute('/vscode-proxy/abc/../other/') as { sandboxID: string }).sandboxID, 'abc');
  assert.equal(matchProxyRoute('/vscode-proxy/'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxy'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxy/ABC/'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxy/%2e%2e/'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxy/a b/'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxyabc/'), undefined);
});

test('captureOutput keeps the first bytes, drains the rest, marks truncation', async () => {
  const s = new PassThrough();
  const cap = captureOutput(s, 5);
  s.write('abc');
  s.write('defgh');
  s.end('ijk');
  await new Promise((r) => s.on('end', r));
  assert.equal(cap.truncated(), true);
  assert.equal(cap.text(), 'abcde\n[codeyard: output truncated after 5 bytes]\n');
});
