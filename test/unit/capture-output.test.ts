import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { captureOutput } from '../../src/runtime/capture-output.ts';

test('captureOutput keeps the first bytes, drains the rest, marks truncation', async () => {
  const s = new PassThrough();
  const cap = captureOutput(s, 5);
  s.write('abc');
  s.write('defgh');
  s.end('ijk');
  await new Promise((r) => s.on('end', r));
  assert.equal(cap.truncated(), true);
  assert.equal(cap.text(), 'abcde\n[codeyard: output truncated after 5 bytes]\n');
});
