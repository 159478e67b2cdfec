// One error class per kind. Each knows its HTTP status and its wire name, so the
// API and the proxy turn any of them into the same JSON body in one place.

export abstract class CodeyardError extends Error {
  abstract readonly status: number;
  abstract readonly kind: string;

  toJSON(): { code: number; message: string; error: string } {
    return { code: this.status, message: this.message, error: this.kind };
  }
}

export class InvalidInputError extends CodeyardError {
  readonly status = 400;
  readonly kind = 'invalid_input';
}

export class UnauthorizedError extends CodeyardError {
  readonly status = 401;
  readonly kind = 'unauthorized';
  constructor(message = 'authentication required: log in (/login, or POST /api/auth/login), or send X-API-Key or Authorization: Bearer <key>') {
    super(message);
  }
}

export class ForbiddenError extends CodeyardError {
  readonly status = 403;
  readonly kind = 'forbidden';
}

/**
 * Past a limit (a user's allowance, a sandbox's ceiling, a user's share of the
 * host): 403 whose message names the limit, the use and what to do.
 */
export class QuotaExceededError extends CodeyardError {
  readonly status = 403;
  readonly kind = 'quota_exceeded';
  /** Which limit: a user's (`maxSandboxes`, `maxMemoryMB`, `maxCpu`) or a config key (`sandboxes.maxMemoryMB`, …). */
  readonly limit: string;
  constructor(limit: string, message: string) {
    super(message);
    this.limit = limit;
  }
}

export class RateLimitedError extends CodeyardError {
  readonly status = 429;
  readonly kind = 'rate_limited';
  readonly retryAfterSeconds: number;
  /** The first refusal of its window: worth an audit entry (later ones are not). */
  readonly first: boolean;
  constructor(message: string, retryAfterSeconds: number, first: boolean) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
    this.first = first;
  }
}

export class NotFoundError extends CodeyardError {
  readonly status = 404;
  readonly kind = 'not_found';
}

export class ConflictError extends CodeyardError {
  readonly status = 409;
  readonly kind = 'conflict';
}

export class PayloadTooLargeError extends CodeyardError {
  readonly status = 413;
  readonly kind = 'payload_too_large';
}

export class UpstreamUnavailableError extends CodeyardError {
  readonly status = 502;
  readonly kind = 'upstream_unavailable';
}

/** A sandbox on its way up: 503 with Retry-After; browsers get a page that refreshes itself. */
export class SandboxStartingError extends CodeyardError {
  readonly status = 503;
  readonly kind = 'starting';
  readonly retryAfterSeconds = 2;
}

/** The host has no room for what was asked (admission control): stop something, or ask for less. */
export class CapacityError extends CodeyardError {
  readonly status = 503;
  readonly kind = 'insufficient_capacity';
}

/**
 * The data dir's disk is full (workspaces share it with the store): nothing that needs
 * room can be written until the operator frees some. Reads and logins keep working.
 */
export class InsufficientStorageError extends CodeyardError {
  readonly status = 507;
  readonly kind = 'insufficient_storage';
}

/** Another writer held the store longer than the busy timeout: try again in a moment. */
export class StoreBusyError extends CodeyardError {
  readonly status = 503;
  readonly kind = 'store_busy';
  readonly retryAfterSeconds = 1;
}

/** A fault of ours: logged in full, answered without detail. */
export class InternalError extends CodeyardError {
  readonly status = 500;
  readonly kind = 'internal';
}

/** A sandbox's processes could not be started or stopped: the operator must look at the host. */
export class RuntimeFailureError extends CodeyardError {
  readonly status = 500;
  readonly kind = 'runtime_failure';
}

/** A fault of the machine or the setup, not of the request: the operator must act. */
export class SetupError extends CodeyardError {
  readonly status = 500;
  readonly kind = 'setup';
}

/** The wire name for a status that did not come from one of our classes (fastify's own 4xx). */
export function kindForStatus(status: number): string {
  const kinds: Record<number, string> = { 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict', 429: 'rate_limited', 502: 'upstream_unavailable', 507: 'insufficient_storage' };
  return kinds[status] ?? (status < 500 ? 'invalid_input' : 'internal');
}
