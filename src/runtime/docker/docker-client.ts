import Docker from 'dockerode';
import { RuntimeFailureError, UpstreamUnavailableError, type CodeyardError } from '../../errors.ts';

/** Where the Docker (or Podman) API is: DOCKER_HOST, else the default socket. */
export function dockerClient(host = process.env.DOCKER_HOST): { docker: Docker; where: string } {
  if (!host) return { docker: new Docker({ socketPath: '/var/run/docker.sock' }), where: 'unix:///var/run/docker.sock' };
  if (host.startsWith('unix://')) return { docker: new Docker({ socketPath: host.slice('unix://'.length) }), where: host };
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return { docker: new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: url.protocol === 'https:' ? 'https' : 'http' }), where: host };
}

/** Errors from the engine, worded for the operator. */
export function engineError(err: unknown, where: string, doing: string): CodeyardError {
  const e = err as { code?: string; statusCode?: number; json?: { message?: string }; message?: string };
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES') {
    // Not our fault and not the caller's: the engine is away (502, with what to do).
    return new UpstreamUnavailableError(`cannot reach the Docker engine at ${where} while ${doing} (${e.code}): start it (dockerd, or systemctl start docker; for Podman: systemctl --user start podman.socket and DOCKER_HOST), then try again`);
  }
  const message = e.json?.message ?? e.message ?? String(err);
  return new RuntimeFailureError(`Docker engine refused ${doing}: ${message}`);
}

/** Whether an engine error means "no such container/image". */
export function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}
