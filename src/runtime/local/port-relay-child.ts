// Runs in a sandbox's network namespace (entered with nsenter --net; files and
// processes stay the host's), as the gateway's helper: for each port the
// gateway asks for, it listens on a unix socket in the sandbox's endpoints
// directory (the gateway's alone) and pipes every connection to that port on
// the sandbox's own loopback. One per sandbox, started at its first preview;
// it ends when the gateway that started it goes (its IPC channel closes).
import { rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';

interface Ask { port: number; host: string; socketPath: string }

const serving = new Set<number>();

process.on('message', (ask: Ask) => {
  if (serving.has(ask.port)) { process.send!({ port: ask.port, socketPath: ask.socketPath }); return; }
  const server = createServer((client) => {
    const upstream = connect(ask.port, ask.host);
    client.pipe(upstream).pipe(client);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  rmSync(ask.socketPath, { force: true });
  server.once('error', (err) => process.send!({ port: ask.port, error: err.message }));
  server.listen(ask.socketPath, () => {
    serving.add(ask.port);
    process.send!({ port: ask.port, socketPath: ask.socketPath });
  });
});
process.on('disconnect', () => process.exit(0));
