// A cap on how many connections one client address holds open at once (nginx's
// limit_conn). Without it one client can open sockets until the gateway runs out
// of file descriptors, and every other user is locked out. Counted on 'connection',
// before TLS or HTTP parsing, so a refused socket costs next to nothing.
import type { Server, Socket } from 'node:net';

export interface ConnectionCapOptions {
  /** Open connections allowed per client address, over every server attached; 0: no cap. */
  max: number;
  /** Peers not counted: a trusted front proxy carries many clients on its connections. */
  exempt?: (address: string) => boolean;
  /** Called once when an address first hits the cap (again only after all its connections closed). */
  onRefused?: (address: string) => void;
}

export class ConnectionCap {
  private readonly opts: ConnectionCapOptions;
  /** Open connections by client address. */
  readonly open = new Map<string, number>();
  private readonly reported = new Set<string>();

  constructor(opts: ConnectionCapOptions) {
    this.opts = opts;
  }

  /** Counts each client's sockets on `server` (with those on the other servers attached); past the cap, destroys them at once. */
  attach(server: Server): void {
    if (this.opts.max > 0) server.on('connection', (socket: Socket) => this.admit(socket));
  }

  private admit(socket: Socket): void {
    const address = socket.remoteAddress;
    // No address: the peer is already gone. Exempt: the proxy in front (its clients are capped there).
    if (!address || this.opts.exempt?.(address)) return;
    const count = this.open.get(address) ?? 0;
    if (count >= this.opts.max) {
      socket.destroy();
      if (!this.reported.has(address)) { this.reported.add(address); this.opts.onRefused?.(address); }
      return;
    }
    this.open.set(address, count + 1);
    socket.once('close', () => {
      const left = (this.open.get(address) ?? 1) - 1;
      if (left > 0) { this.open.set(address, left); return; }
      this.open.delete(address);
      this.reported.delete(address);
    });
  }
}
