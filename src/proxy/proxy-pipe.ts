import { Agent, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { forwardHttp } from './http-forward.ts';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { createProxyServer } from 'http-proxy-3';
import type { Logger } from '../logger.ts';
import type { AuthService } from '../auth/auth-service.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { Endpoint } from '../runtime/interface.ts';
import { rewriteResponseHeaders } from './response-headers.ts';
import { sendProxyError } from './error-page.ts';

/** Who opened a proxied WebSocket, so revoking their credentials can end it. */
export interface SocketOwner {
  userId: number;
  sessionHash?: string;
  keyId?: string;
  sandboxID: string;
}

export interface PipeTarget {
  sandboxID: string;
  endpoint: Endpoint;
  /** A failed connection means the sandbox may be dead (its main service), not just a port nobody listens on. */
  mainService: boolean;
  /** Set-Cookie paths from upstream are rewritten to this (a path-routed sandbox's prefix). */
  cookiePath?: string;
  /** Served by path on the portal's own origin (a path preview): the page gets an opaque origin. */
  opaqueOrigin?: boolean;
  /** An IDE on its own host: the portal's origin, which may frame it. */
  framedBy?: string;
}

type RoutedRequest = IncomingMessage & { pipeTarget?: PipeTarget };

/**
 * The one place bytes flow between clients and sandboxes, for every route (by path,
 * by subdomain): streams both ways with no buffering, over keep-alive connections
 * to the sandboxes, and keeps the upgraded sockets so that revoked credentials and
 * shutdown end them. Activity for idle-stop is sampled from socket byte counters
 * on a timer, so no frame pays for it.
 */
export class ProxyPipe {
  /**
   * Kept-alive connections to sandboxes, as many idle as busy (closing them above a lower
   * cap cost reconnects under load), each idle one closed before code-server's own 5 s
   * keep-alive timeout would close it under a request.
   */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, timeout: FREE_SOCKET_MS, scheduling: 'lifo' });
  /** WebSockets only: each upgrade is a connection of its own. */
  private readonly proxy = createProxyServer({ ws: true, xfwd: true, proxyTimeout: 0 });
  private readonly sockets = new Map<Duplex, SocketOwner & { read: number; written: number }>();
  private readonly onBytes: (sandboxID: string, bytesIn: number, bytesOut: number) => void;
  private readonly sampler: NodeJS.Timeout;
  private readonly sandboxes: SandboxService;
  private readonly log: Logger;

  constructor(deps: {
    auth: AuthService; sandboxes: SandboxService; log: Logger; activitySampleMs?: number;
    /** Bytes to and from a sandbox (metrics): per HTTP exchange, and per WebSocket at each sample and at close. */
    onBytes?: (sandboxID: string, bytesIn: number, bytesOut: number) => void;
  }) {
    this.sandboxes = deps.sandboxes;
    this.log = deps.log;
    this.onBytes = deps.onBytes ?? (() => {});
    this.proxy.on('error', (err, req, res) => this.upstreamError(err, req, res));
    deps.auth.on('revoked', (what) => {
      for (const [socket, owner] of this.sockets) {
        if (owner.userId === what.userId || owner.sandboxID === what.sandboxID
          || (what.sessionHash && owner.sessionHash === what.sessionHash) || (what.keyId && owner.keyId === what.keyId)) {
          socket.destroy();
        }
      }
    });
    this.sampler = setInterval(() => this.sampleActivity(), deps.activitySampleMs ?? 1000);
    this.sampler.unref();
  }

  /** `secure`: the client's scheme is https (for the sandbox's X-Forwarded-Proto). */
  web(req: IncomingMessage, res: ServerResponse, target: PipeTarget, secure: boolean): void {
    (req as RoutedRequest).pipeTarget = target;
    this.sandboxes.touch(target.sandboxID);
    const socket = res.socket;
    const writtenBefore = socket?.bytesWritten ?? 0;
    res.once('finish', () => this.onBytes(target.sandboxID, Number(req.headers['content-length'] ?? 0) || 0, (socket?.bytesWritten ?? 0) - writtenBefore));
    forwardHttp(req, res, {
      endpoint: target.endpoint, agent: this.agent, secure,
      rewrite: (headers) => rewriteResponseHeaders(headers, { cookiePath: target.cookiePath, opaqueOrigin: target.opaqueOrigin, framedBy: target.framedBy }),
      onError: (err) => this.upstreamError(err, req, res),
    });
  }

  private upstreamError(err: Error, req: IncomingMessage, res: ServerResponse | Duplex): void {
    const target = (req as RoutedRequest).pipeTarget;
    this.log.warn({ err: err.message, url: req.url, sandboxID: target?.sandboxID }, 'proxy upstream error');
    if (target?.mainService) void this.sandboxes.reportUnreachable(target.sandboxID).catch(() => {});
    const what = target && !target.mainService ? 'nothing answered on that port in the sandbox: start your server there (on 0.0.0.0; 127.0.0.1 works in local sandboxes only), then reload'
      : 'the workspace did not answer. Reload in a moment; if it persists, check the sandbox\'s state.';
    if ('writeHead' in res) sendProxyError(req, res, 502, 'upstream_unavailable', what);
    else res.destroy();
  }

  ws(req: IncomingMessage, socket: Duplex, head: Buffer, target: PipeTarget, owner: Omit<SocketOwner, 'sandboxID'>): void {
    (req as RoutedRequest).pipeTarget = target;
    // No idle cut-off: an editor may sit quietly for hours.
    (socket as Socket).setTimeout?.(0);
    const entry = { ...owner, sandboxID: target.sandboxID, read: 0, written: 0 };
    this.sockets.set(socket, entry);
    socket.once('close', () => { this.sample(socket as Socket, entry); this.sockets.delete(socket); });
    this.sandboxes.touch(target.sandboxID);
    this.proxy.ws(req, socket, head, { target: toTarget(target.endpoint) });
  }

  /** Open proxied WebSockets, per sandbox (for metrics). */
  openSockets(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const { sandboxID } of this.sockets.values()) counts.set(sandboxID, (counts.get(sandboxID) ?? 0) + 1);
    return counts;
  }

  /** Ends every proxied WebSocket, so the server can close. */
  close(): void {
    clearInterval(this.sampler);
    for (const s of this.sockets.keys()) s.destroy();
    this.sockets.clear();
    this.proxy.close();
    this.agent.destroy();
  }

  /** A WebSocket that moved bytes either way since the last look counts as use of its sandbox. */
  private sampleActivity(): void {
    for (const [socket, entry] of this.sockets) this.sample(socket as Socket, entry);
  }

  private sample(socket: Socket, entry: { sandboxID: string; read: number; written: number }): void {
    const read = socket.bytesRead ?? 0;
    const written = socket.bytesWritten ?? 0;
    if (read === entry.read && written === entry.written) return;
    this.onBytes(entry.sandboxID, read - entry.read, written - entry.written);
    entry.read = read;
    entry.written = written;
    this.sandboxes.touch(entry.sandboxID);
  }
}

const FREE_SOCKET_MS = 4_000;

function toTarget(endpoint: Endpoint) {
  return 'socketPath' in endpoint
    ? { socketPath: endpoint.socketPath, host: 'localhost', port: 80 }
    : { host: endpoint.host, port: endpoint.port };
}
