import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { nginxConfig } from '../front-door/nginx-config.ts';
import { makeSelfSigned } from '../front-door/self-signed.ts';
import type { GlobalFlags } from './main.ts';

/** `codeyard nginx-config` and `codeyard tls self-signed`: what a production front door needs. */
export function frontDoorCommands(program: Command, globals: () => GlobalFlags): void {
  program.command('nginx-config').description('print nginx server blocks (for its http { } context) that put nginx in front of this gateway')
    .requiredOption('--domain <domain>', 'base domain: the portal at <domain>, sandboxes at *.<domain>')
    .option('--upstream <url>', 'the gateway, as nginx reaches it: http://host:port or unix:/path', 'http://127.0.0.1:8080')
    .option('--listen <addr:port>', 'where nginx listens (default 443 with --cert, else 80)')
    .option('--cert <file>', 'TLS certificate (PEM; a wildcard *.<domain> one for subdomains)')
    .option('--key <file>', 'TLS private key (PEM)')
    .option('--http-listen <addr:port>', 'with --cert: where plain HTTP is redirected to HTTPS ("off": nowhere)', '80')
    .option('--no-subdomains', 'serve the base domain only (path routing, no wildcard DNS)')
    .option('--no-catch-all', 'leave out the default_server blocks answering 404 for other names')
    .action((opts: { domain: string; upstream: string; listen?: string; cert?: string; key?: string; httpListen: string; subdomains: boolean; catchAll: boolean }) => {
      process.stdout.write(nginxConfig(opts));
    });

  const tls = program.command('tls').description('TLS certificates for the gateway\'s own HTTPS (tls.cert, tls.key)');
  tls.command('self-signed').description('make a self-signed certificate for <domain> and *.<domain> (test setups: browsers warn)')
    .requiredOption('--domain <domain>', 'base domain')
    .option('--out <dir>', 'where to write <domain>.crt and <domain>.key (default: <dataDir>/tls)')
    .option('--days <n>', 'validity', '90')
    .action((opts: { domain: string; out?: string; days: string }) => {
      const out = opts.out ?? join(loadConfig(globals()).dataDir, 'tls');
      const { cert, key } = makeSelfSigned(opts.domain, out, Number(opts.days) || 90);
      process.stdout.write(`wrote ${cert}\nwrote ${key} (mode 0600)\n\nIn codeyard.yaml:\n  publicUrl: https://${opts.domain}\n  routing:\n    baseDomain: ${opts.domain}\n  tls:\n    cert: ${cert}\n    key: ${key}\n`);
    });
}
