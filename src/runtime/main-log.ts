import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** At most this much log per read when following it. */
const LOG_READ_MAX_BYTES = 256 * 1024;

/** The last `bytes` of a sandbox's main log (a file only the gateway writes), or '' if there is none. */
export function tailFile(path: string, bytes: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(bytes, size));
    readSync(fd, buf, 0, buf.length, size - buf.length);
    return buf.toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The log from byte `offset` on; `offset` in the answer is where the next read starts (0 again after a rotation). */
export function readFileFrom(path: string, offset: number): { text: string; offset: number } {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const from = offset > size ? 0 : offset;
    const buf = Buffer.alloc(Math.min(size - from, LOG_READ_MAX_BYTES));
    readSync(fd, buf, 0, buf.length, from);
    return { text: buf.toString('utf8'), offset: from + buf.length };
  } catch {
    return { text: '', offset };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
