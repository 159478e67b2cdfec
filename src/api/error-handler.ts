import type { FastifyError, FastifyInstance } from 'fastify';
import { CodeyardError, kindForStatus } from '../errors.ts';
import { storageError } from '../store/storage-errors.ts';

export interface ErrorHandlerOptions {
  /** The data dir, whose disk a full-disk answer names. */
  dataDir?: string;
  /** Where store faults go instead of one error line per request (the storage guard's once-a-minute log). */
  reportStoreFault?: (what: string, err: unknown) => void;
}

/** The one place errors become HTTP answers: { code, message, error }. */
export function installErrorHandler(app: FastifyInstance, opts: ErrorHandlerOptions = {}): void {
  app.setErrorHandler((raw: FastifyError | CodeyardError | Error, request, reply) => {
    // A raw store or disk fault (SqliteError SQLITE_FULL/BUSY, ENOSPC) becomes its typed error here, once
    // for every route: 507 naming the disk, 503 with Retry-After; never a bare 500.
    const stored = raw instanceof CodeyardError ? undefined : storageError(raw, opts.dataDir);
    const err = stored ?? raw;
    if (err instanceof CodeyardError) {
      if (stored && opts.reportStoreFault) opts.reportStoreFault(`${request.method} ${request.routeOptions.url ?? 'a request'}`, raw);
      else if (err.status >= 500) request.log.error({ err: raw }, err.message);
      const retryAfter = (err as { retryAfterSeconds?: unknown }).retryAfterSeconds;
      if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
      return reply.status(err.status).send(err.toJSON());
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) {
      // fastify's own rejections: bad JSON, wrong content type, body too large.
      const message = status === 415 ? `unsupported content-type "${request.headers['content-type'] ?? ''}": send JSON with content-type: application/json` : err.message;
      const answer = () => reply.status(status).send({ code: status, message, error: kindForStatus(status) });
      // A body refused for its size is still arriving: read (and drop) a bounded rest of it first, so the
      // client, still sending, gets this answer instead of a connection reset.
      if (status === 413 && !request.raw.complete) return drainThen(request.raw, answer);
      return answer();
    }
    request.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ code: 500, message: 'internal error: see the gateway log for details', error: 'internal' });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ code: 404, message: `no route ${request.method} ${request.url.split('?')[0]}`, error: 'not_found' });
  });
}

const DRAIN_MAX_BYTES = 32 * 2 ** 20;
const DRAIN_MAX_MS = 3_000;

function drainThen(req: NodeJS.ReadableStream & { destroyed?: boolean }, then: () => unknown): Promise<unknown> {
  return new Promise((resolve) => {
    let seen = 0;
    let answered = false;
    const done = () => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      req.removeListener('data', count);
      resolve(then());
    };
    const count = (chunk: Buffer) => { seen += chunk.length; if (seen > DRAIN_MAX_BYTES) done(); };
    const timer = setTimeout(done, DRAIN_MAX_MS);
    req.on('data', count);
    req.once('end', done);
    req.once('error', done);
    req.resume();
  });
}
