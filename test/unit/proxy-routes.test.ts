import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchProxyRoute } from '../../src/proxy/routes.ts';

test('proxy routes: prefix stripped, query kept, only the first segment picks the sandbox', () => {
  assert.equal(matchProxyRoute('/api/sandboxes'), undefined);
  assert.deepEqual(matchProxyRoute('/cdp-proxy/abcdefghij0123456789/json/version'), { sandboxID: 'abcdefghij0123456789', service: 'cdp', prefix: '/cdp-proxy/abcdefghij0123456789/', upstreamPath: '/json/version' });
  assert.equal(matchProxyRoute('/cdp-proxy/nope/json'), 'bad');
  assert.deepEqual(matchProxyRoute('/vscode-proxy/abcdefghij0123456789/'), { sandboxID: 'abcdefghij0123456789', service: 'ide', prefix: '/vscode-proxy/abcdefghij0123456789/', upstreamPath: '/' });
  assert.deepEqual(matchProxyRoute('/vscode-proxy/abcdefghij0123456789/static/x.js?v=1'), { sandboxID: 'abcdefghij0123456789', service: 'ide', prefix: '/vscode-proxy/abcdefghij0123456789/', upstreamPath: '/static/x.js?v=1' });
  assert.deepEqual(matchProxyRoute('/vscode-proxy/abcdefghij0123456789'), { sandboxID: 'abcdefghij0123456789', service: 'ide', prefix: '/vscode-proxy/abcdefghij0123456789/', upstreamPath: undefined });
  assert.deepEqual(matchProxyRoute('/vscode-proxy/abcdefghij0123456789?folder=/x'), { sandboxID: 'abcdefghij0123456789', service: 'ide', prefix: '/vscode-proxy/abcdefghij0123456789/', upstreamPath: undefined });
  assert.equal((matchProxyRoute('/vscode-proxy/abcdefghij0123456789/../zzzzzzzzzz0123456789/') as { sandboxID: string }).sandboxID, 'abcdefghij0123456789');
  assert.equal(matchProxyRoute('/vscode-proxy/abc/'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxy/'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxy'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxy/ABC/'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxy/%2e%2e/'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxy/a b/'), 'bad');
  assert.equal(matchProxyRoute('/vscode-proxyabc/'), undefined);
});
