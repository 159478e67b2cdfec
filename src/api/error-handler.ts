import type { FastifyError, FastifyInstance } from 'fastify';
import { CodeyardError, kindForStatus } from '../errors.ts';

/** The one place errors become HTTP answers: { code, message, error }. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | CodeyardError | Error, request, reply) => {
    if (err instanceof CodeyardError) {
      if (err.status >= 500) request.log.error({ err }, err.message);
      return reply.status(err.status).send(err.toJSON());
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) {
      // fastify's own rejections: bad JSON, wrong content type, body too large.
      const message = status === 415 ? `unsupported content-type "${request.headers['content-type'] ?? ''}": send JSON with content-type: application/json` : err.message;
      return reply.status(status).send({ code: status, message, error: kindForStatus(status) });
    }
    request.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ code: 500, message: 'internal error: see the gateway log for details', error: 'internal' });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ code: 404, message: `no route ${request.method} ${request.url.split('?')[0]}`, error: 'not_found' });
  });
}
