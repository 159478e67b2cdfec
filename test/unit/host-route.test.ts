import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostName, matchHostRoute, subdomainHost } from '../../src/proxy/host-route.ts';

const base = 'code.example.com';
const id = 'abcdefghij0123456789';

test('host routing: user, workspace--user and port-sandbox subdomains; the base domain and other names are the gateway', () => {
  assert.deepEqual(matchHostRoute(`dan.${base}`, base), { kind: 'workspace', host: `dan.${base}`, user: 'dan', workspace: 'default' });
  assert.deepEqual(matchHostRoute(`Api-Work--dan.${base}:8443`, base), { kind: 'workspace', host: `api-work--dan.${base}`, user: 'dan', workspace: 'api-work' });
  assert.deepEqual(matchHostRoute(`3000-${id}.${base}`, base), { kind: 'port', host: `3000-${id}.${base}`, sandboxID: id, port: 3000 });
  for (const gateway of [base, `${base}:443`, '127.0.0.1:8080', 'localhost', 'example.com', `x${base}`, '[::1]:80', undefined]) {
    assert.deepEqual(matchHostRoute(gateway, base), { kind: 'gateway' }, String(gateway));
  }
  for (const unknown of [`a.b.${base}`, `99999-${id}.${base}`, `-x.${base}`, `x--.${base}`, `under_score.${base}`]) {
    assert.equal(matchHostRoute(unknown, base).kind, 'unknown', unknown);
  }
  assert.deepEqual(matchHostRoute(`dan.${base}`, undefined), { kind: 'gateway' });
});

test('host names: port and brackets dropped, lowercased; subdomain hosts built back', () => {
  assert.equal(hostName('Dan.Code.Example.com:8443'), 'dan.code.example.com');
  assert.equal(hostName('[::1]:8080'), '[::1]');
  assert.equal(subdomainHost(base, { user: 'dan' }), `dan.${base}`);
  assert.equal(subdomainHost(base, { user: 'dan', workspace: 'API' }), `api--dan.${base}`);
  assert.equal(subdomainHost(base, { sandboxID: id, port: 5173 }), `5173-${id}.${base}`);
});
