import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyCrash } from '../../src/supervisor/crash-classifier.ts';

test('crashes are classified from the OOM counter, the output and the exit', () => {
  const base = { exitCode: null, signal: null, oomKilled: false, logTail: '' };
  assert.equal(classifyCrash({ ...base, signal: 'SIGKILL', oomKilled: true }), 'oom');
  assert.equal(classifyCrash({ ...base, exitCode: 1, logTail: "Error: Cannot find module '/x'\n    at Module._resolveFilename" }), 'missing_dependency');
  assert.equal(classifyCrash({ ...base, exitCode: 127, logTail: 'sh: 1: code-server: command not found' }), 'missing_dependency');
  assert.equal(classifyCrash({ ...base, exitCode: 1, logTail: 'error while loading shared libraries: libsecret-1.so.0' }), 'missing_dependency');
  assert.equal(classifyCrash({ ...base, exitCode: 1, logTail: "error: Unknown option --bogus" }), 'config_error');
  assert.equal(classifyCrash({ ...base, signal: 'SIGKILL' }), 'signal');
  assert.equal(classifyCrash({ ...base, signal: 'SIGKILL', logTail: 'Failed to connect to socket /run/dbus/system_bus_socket: No such file or directory' }), 'signal');
  assert.equal(classifyCrash({ ...base, exitCode: 1, logTail: 'dbus: No such file or directory\nready' }), 'nonzero_exit', 'noise is not a missing dependency');
  assert.equal(classifyCrash({ ...base, exitCode: 127, logTail: 'env: node: No such file or directory' }), 'missing_dependency');
  assert.equal(classifyCrash({ ...base, exitCode: 3 }), 'nonzero_exit');
  assert.equal(classifyCrash({ ...base, exitCode: 0 }), 'unexpected_exit');
  assert.equal(classifyCrash(base), 'unexpected_exit');
});
