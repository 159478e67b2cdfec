import type { Readable } from 'node:stream';

export const TRUNCATION_MARKER = (limit: number) => `\n[codeyard: output truncated after ${limit} bytes]\n`;

/** Keeps the first `limit` bytes of a stream and drains the rest, so the writer never blocks. */
export function captureOutput(stream: Readable, limit: number): { text: () => string; truncated: () => boolean } {
  const chunks: Buffer[] = [];
  let kept = 0;
  let over = false;
  stream.on('data', (chunk: Buffer) => {
    if (kept >= limit) { over = true; return; }
    const room = limit - kept;
    if (chunk.length > room) { over = true; chunk = chunk.subarray(0, room); }
    chunks.push(chunk);
    kept += chunk.length;
  });
  return {
    text: () => Buffer.concat(chunks).toString('utf8') + (over ? TRUNCATION_MARKER(limit) : ''),
    truncated: () => over,
  };
}
