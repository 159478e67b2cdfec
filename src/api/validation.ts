import { z } from 'zod';
import { InvalidInputError } from '../errors.ts';

/** Parses `value` with `schema`; the error names the first bad field and what is wrong with it. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, what = 'body'): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const at = issue.path.length ? `${issue.path.join('.')}.` : '';
    throw new InvalidInputError(`unknown field${issue.keys.length > 1 ? 's' : ''} in ${what}: ${issue.keys.map((k) => at + k).join(', ')}`);
  }
  const field = issue.path.join('.') || what;
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    throw new InvalidInputError(`${field}: required (${issue.expected})`);
  }
  throw new InvalidInputError(`${field}: ${issue.message}`);
}

/** A string that can become a process argument or environment value: no NUL bytes. */
export const text = () => z.string().refine((s) => !s.includes('\0'), 'must not contain NUL bytes');

/** Environment variable names as POSIX shells accept them. */
export const envVarsSchema = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'names must match [A-Za-z_][A-Za-z0-9_]*'),
  text().max(32 * 1024),
).refine((r) => Object.keys(r).length <= 200, 'at most 200 variables');

/** A number field whose type error says what to send, e.g. number('a whole number of megabytes, e.g. 2048'). */
export const number = (what: string) =>
  z.number({ error: (iss) => (iss.code === 'invalid_type' && iss.input !== undefined ? `expected ${what}` : undefined) });
