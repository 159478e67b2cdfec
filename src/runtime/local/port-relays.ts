import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { UpstreamUnavailableError } from '../../errors.ts';

const CHILD = join(import.meta.dirname, 'port-relay-child.ts');
const ASK_TIMEOUT_MS = 10_000;

interface Relay {
  child: ChildProcess;
  ready: Map<number, Promise<string>>;
  waiting: Map<number, { resolve: (path: string) => void; reject: (err: Error) => void }>;
}

/**
 * The gateway's way into the ports of sandboxes with a network namespace of
 * their own: one helper process per sandbox, inside its namespace, turns
 * "port 3000 of sandbox X" into a unix socket only the gateway can dial
 * (see port-relay-child.ts). The socket path is the sandbox's own, so the
 * proxy's keep-alive pool never hands one sandbox's connection to another.
 */
export class PortRelays {
  private readonly relays = new Map<string, Relay>();

  /**
   * The socket to dial for `port` of the sandbox. `enter` is the argv prefix that runs a
   * command in its network namespace (and cgroups); `env` the helper's environment.
   */
  async socketFor(o: { sandboxID: string; endpointsDir: string; port: number; host: string; enter: string[]; env: Record<string, string> }): Promise<string> {
    const relay = this.relays.get(o.sandboxID) ?? this.spawn(o.sandboxID, o.enter, o.env);
    let ready = relay.ready.get(o.port);
    if (!ready) {
      ready = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new UpstreamUnavailableError(`sandbox ${o.sandboxID}: its port relay did not answer for port ${o.port}; reload to try again`)), ASK_TIMEOUT_MS);
        relay.waiting.set(o.port, {
          resolve: (path) => { clearTimeout(timer); resolve(path); },
          reject: (err) => { clearTimeout(timer); reject(err); },
        });
        relay.child.send({ port: o.port, host: o.host, socketPath: join(o.endpointsDir, `port-${o.port}.sock`) });
      });
      relay.ready.set(o.port, ready);
      // A failed ask is asked again next time.
      ready.catch(() => relay.ready.delete(o.port));
    }
    return ready;
  }

  close(sandboxID: string): void {
    const relay = this.relays.get(sandboxID);
    if (!relay) return;
    this.relays.delete(sandboxID);
    relay.child.kill('SIGKILL');
  }

  private spawn(sandboxID: string, enter: string[], env: Record<string, string>): Relay {
    const argv = [...enter, process.execPath, CHILD];
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], serialization: 'json' });
    const relay: Relay = { child, ready: new Map(), waiting: new Map() };
    child.on('message', (m: { port: number; socketPath?: string; error?: string }) => {
      const w = relay.waiting.get(m.port);
      relay.waiting.delete(m.port);
      if (m.socketPath) w?.resolve(m.socketPath);
      else w?.reject(new UpstreamUnavailableError(`sandbox ${sandboxID}: cannot relay port ${m.port} (${m.error}); reload to try again`));
    });
    const gone = (why: string) => {
      if (this.relays.get(sandboxID) === relay) this.relays.delete(sandboxID);
      for (const w of relay.waiting.values()) w.reject(new UpstreamUnavailableError(`sandbox ${sandboxID}: its port relay ${why}; reload to try again`));
      relay.waiting.clear();
    };
    child.once('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    child.once('error', (err) => gone(`could not start (${err.message})`));
    child.unref();
    (child.channel as unknown as { unref?: () => void } | undefined)?.unref?.();
    this.relays.set(sandboxID, relay);
    return relay;
  }
}
