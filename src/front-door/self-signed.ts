import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidInputError, SetupError } from '../errors.ts';
import { DNS_NAME } from '../proxy/host-route.ts';


/**
 * A self-signed certificate for <domain> and *.<domain> (the subdomains routing
 * uses), for test setups: browsers warn about it. Made by openssl; the key is 0600.
 */
export function makeSelfSigned(domain: string, outDir: string, days = 90): { cert: string; key: string } {
  if (!DNS_NAME.test(domain)) throw new InvalidInputError(`--domain: "${domain}" is not a lowercase DNS name such as code.test`);
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const cert = join(outDir, `${domain}.crt`);
  const key = join(outDir, `${domain}.key`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${key}.tmp`, '-out', `${cert}.tmp`, '-days', String(days), '-subj', `/CN=${domain}`,
    '-addext', `subjectAltName=DNS:${domain},DNS:*.${domain}`], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new SetupError(`openssl failed (${r.error?.message ?? r.stderr.trim()}): install it (apt-get install openssl) or run \`npm run setup\``);
  chmodSync(`${key}.tmp`, 0o600);
  renameSync(`${key}.tmp`, key);
  renameSync(`${cert}.tmp`, cert);
  return { cert, key };
}
