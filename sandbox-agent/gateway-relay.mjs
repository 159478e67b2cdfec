// Runs as a container sandbox's main process: listens on 127.0.0.1:<port>
// inside the container and relays to the gateway through a unix socket in the
// run directory (the container has no route to the host's loopback), then runs
// the real command and ends with it. opencode reaches the model proxy this way.
//   node gateway-relay.mjs <port> <socket> -- <command…>
import { spawn } from 'node:child_process';
import { relay } from './relay.mjs';

const [port, socket, dashes, ...command] = process.argv.slice(2);
if (!port || !socket || dashes !== '--' || command.length === 0) {
  console.error('usage: gateway-relay.mjs <port> <socket> -- <command…>');
  process.exit(2);
}
await relay(Number(port), socket).catch((err) => console.error(`gateway relay: ${err.message}`));

const child = spawn(command[0], command.slice(1), { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill(sig));
