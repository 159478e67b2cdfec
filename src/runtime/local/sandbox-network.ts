import { spawn, execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { RuntimeFailureError, SetupError } from '../../errors.ts';
import { resolveCommand, SYSTEM_PATH } from '../../toolchain/system-commands.ts';
import { identify, type ProcessIdentity } from './process-identity.ts';

const run = promisify(execFile);

/** slirp4netns's fixed layout: the sandbox is 10.0.2.100, the way out 10.0.2.2, its DNS forwarder 10.0.2.3. */
const SLIRP_DNS = '10.0.2.3';
const READY_TIMEOUT_MS = 10_000;

/**
 * Destinations a sandbox never reaches, whatever it runs: link-local (cloud
 * metadata services live at 169.254.169.254) and the host's own addresses
 * (services the host runs for itself). The host's loopback is out of reach
 * already: slirp4netns runs with --disable-host-loopback, and the sandbox's
 * 127.0.0.1 is its own.
 */
export function blockedDestinations(): string[] {
  // Every address of every interface, up or down (os.networkInterfaces() leaves out a bridge with no
  // carrier, such as docker0), as the kernel lists them.
  let own: string[] = [];
  try {
    own = [...readFileSync('/proc/net/fib_trie', 'utf8').matchAll(/\|-- (\d+\.\d+\.\d+\.\d+)\n\s+\/32 host LOCAL/g)].map((m) => m[1]!);
  } catch { /* no procfs: the interfaces Node sees */ }
  if (own.length === 0) {
    own = Object.values(networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4').map((a) => a!.address);
  }
  return ['169.254.0.0/16', ...new Set(own.filter((a) => !a.startsWith('127.')).map((a) => `${a}/32`))];
}

/**
 * The sandbox's /etc/resolv.conf: the host's, except that a resolver on the
 * host's loopback (systemd-resolved, dnsmasq) is unreachable from the
 * sandbox's network, so slirp4netns's forwarder stands in for it.
 */
export function sandboxResolvConf(hostResolvConf = '/etc/resolv.conf'): string {
  let text = '';
  try { text = readFileSync(hostResolvConf, 'utf8'); } catch { /* none: the forwarder alone */ }
  const lines = text.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l));
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) lines.unshift(`nameserver ${SLIRP_DNS}`);
  return lines.join('\n').trimEnd() + '\n';
}

export interface NetworkTools {
  nsenter: string;
  ip: string;
  slirp4netns: string | undefined;
}

export function networkTools(): NetworkTools {
  return {
    nsenter: resolveCommand('nsenter') ?? '/usr/bin/nsenter',
    ip: resolveCommand('ip') ?? '/usr/sbin/ip',
    slirp4netns: resolveCommand('slirp4netns'),
  };
}

/** nsenter's arguments for entering the network namespace of `pid` (and, without root, the user namespace that owns it). */
export function enterNetwork(tools: NetworkTools, pid: number, asRoot: boolean): string[] {
  return [tools.nsenter, `--target=${pid}`, '--net', ...(asRoot ? [] : ['--user', '--preserve-credentials']), '--'];
}

/**
 * Gives a sandbox's fresh network namespace (held by `pid`) its way out:
 * routes to the blocked destinations refused first, then slirp4netns, which
 * makes every outbound connection from the host's side as an ordinary
 * process (no bridge, no iptables, nothing shared with another sandbox).
 * `wrap` puts slirp4netns into the sandbox's cgroups, so it is billed to the
 * sandbox and ends with it. Resolves once the interface is configured.
 */
export async function connectNetwork(o: {
  tools: NetworkTools; pid: number; asRoot: boolean; env: Record<string, string>;
  wrap: (argv: string[]) => string[];
}): Promise<ProcessIdentity> {
  if (!o.tools.slirp4netns) {
    throw new SetupError('slirp4netns is not installed, so a sandbox cannot reach the internet from its own network: ' +
      'run `codeyard setup` as root (or apt-get install slirp4netns)');
  }
  const inNet = enterNetwork(o.tools, o.pid, o.asRoot);
  for (const dest of blockedDestinations()) {
    await run(inNet[0]!, [...inNet.slice(1), o.tools.ip, 'route', 'add', 'prohibit', dest], { env: { PATH: SYSTEM_PATH } }).catch((err: Error) => {
      throw new RuntimeFailureError(`could not block ${dest} in the sandbox's network: ${err.message}`);
    });
  }
  const args = [
    '--configure', '--mtu=65520', '--disable-host-loopback', '--enable-seccomp',
    // Its own mount namespace with nothing of the host's files: needs root, which rootless gateways lack.
    ...(o.asRoot ? ['--enable-sandbox'] : ['--userns-path', `/proc/${o.pid}/ns/user`, '--netns-type=path']),
    '--ready-fd', '3',
    o.asRoot ? String(o.pid) : `/proc/${o.pid}/ns/net`, 'tap0',
  ];
  const argv = o.wrap([o.tools.slirp4netns, ...args]);
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, env: o.env, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  child.unref();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 2000) stderr += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(`not ready after ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
    function fail(why: string) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new RuntimeFailureError(`slirp4netns could not connect the sandbox's network (${why}): ${stderr.trim() || 'no output'}`));
    }
    (child.stdio[3] as NodeJS.ReadableStream).once('data', () => { clearTimeout(timer); resolve(); });
    child.once('exit', (code, signal) => fail(`exited with ${signal ?? code}`));
    child.once('error', (err) => fail(err.message));
  });
  child.removeAllListeners('exit');
  // It keeps going on its own: its stderr closes with nobody left to read it.
  child.stderr!.destroy();
  (child.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy();
  const id = child.pid ? identify(child.pid) : undefined;
  if (!id) throw new RuntimeFailureError('slirp4netns exited right after connecting the sandbox\'s network');
  return id;
}
