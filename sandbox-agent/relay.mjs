// What the in-sandbox helpers share: a listener that pipes every connection,
// both ways, to a target (a port on 127.0.0.1, or a unix socket path).
import { connect, createServer } from 'node:net';

/** Listens on `listenOn` (a port on 127.0.0.1, or a socket path) and relays to `target` (`{port, host}` or a path). */
export function relay(listenOn, target) {
  const server = createServer((client) => {
    const upstream = connect(target);
    client.pipe(upstream).pipe(client);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close);
    upstream.on('error', close);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (typeof listenOn === 'number') server.listen(listenOn, '127.0.0.1', () => resolve(server));
    else server.listen(listenOn, () => resolve(server));
  });
}
