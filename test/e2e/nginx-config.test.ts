// Every shape `codeyard nginx-config` can print passes Debian's real `nginx -t`,
// and bad flags are refused with a message naming the flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nginxConfig, type NginxConfigOptions } from '../../src/front-door/nginx-config.ts';
import { makeSelfSigned } from '../../src/front-door/self-signed.ts';
import { ROOT } from '../helpers/gateway-process.ts';

test('nginx -t accepts every config the generator can produce', { timeout: 120_000 }, () => {
  const dir = mkdtempSync('/tmp/cy-nginx-');
  try {
    const { cert, key } = makeSelfSigned('code.example.test', join(dir, 'tls'));
    const variants: NginxConfigOptions[] = [];
    for (const tls of [false, true]) for (const subdomains of [true, false]) for (const catchAll of [true, false])
      for (const listen of [undefined, '127.0.0.1:8443']) for (const upstream of ['http://127.0.0.1:8080', 'unix:/run/codeyard/gateway.sock'])
        for (const httpListen of tls ? [undefined, 'off', '127.0.0.1:8080'] : [undefined]) {
          variants.push({ domain: 'code.example.test', upstream, listen, subdomains, catchAll, httpListen, ...(tls ? { cert, key } : {}) });
        }
    for (const [i, v] of variants.entries()) {
      const conf = join(dir, `codeyard-${i}.conf`);
      writeFileSync(conf, nginxConfig(v));
      writeFileSync(join(dir, 'nginx.conf'), `pid ${dir}/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n  include ${conf};\n}\n`);
      const r = spawnSync('nginx', ['-t', '-q', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
      assert.equal(r.status, 0, `variant ${JSON.stringify(v)}:\n${r.stderr}`);
    }
    assert.equal(variants.length, 64);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI prints the config; bad flags get a clear error naming them', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'nginx-config', ...args], { encoding: 'utf8' });
  const ok = cli('--domain', 'code.example.test');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /server_name code\.example\.test \*\.code\.example\.test;/);
  assert.match(ok.stdout, /proxy_set_header Upgrade \$http_upgrade;/);
  assert.match(ok.stdout, /proxy_buffering off;/);
  for (const [args, message] of [
    [['--domain', 'https://x.test'], /--domain: "https:\/\/x\.test" is not a DNS name/],
    [['--domain', 'x.test', '--cert', '/a.crt'], /--cert and --key go together/],
    [['--domain', 'x.test', '--upstream', 'ftp://h'], /--upstream: "ftp:\/\/h" must be http:\/\/host:port/],
    [['--domain', 'x.test', '--listen', 'everywhere'], /--listen: "everywhere" must be a port or addr:port/],
    [['--domain', 'x.test', '--cert', '/a b.crt', '--key', '/k'], /--cert: "\/a b\.crt" must be an absolute path/],
  ] as const) {
    const r = cli(...args);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, message);
  }
});
