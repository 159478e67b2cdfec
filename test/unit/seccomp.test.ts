// The no-user-namespaces seccomp filter: its shape, its verdicts on synthetic
// syscalls (through a small BPF interpreter, for both arches), and, as root
// with bubblewrap, what it really does to processes under bwrap --seccomp.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { noUserNamespacesFilter } from '../../src/runtime/local/seccomp.ts';

const ALLOW = 0x7fff0000;
const EPERM = 0x00050000 | 1;
const ENOSYS = 0x00050000 | 38;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNS = 0x00020000;
const SIGCHLD = 17;

const NATIVE = {
  x64: { audit: 0xc000003e, unshare: 272, clone: 56, clone3: 435, getpid: 39 },
  arm64: { audit: 0xc00000b7, unshare: 97, clone: 220, clone3: 435, getpid: 172 },
} as const;
const I386 = 0x40000003;

/** Runs a classic-BPF seccomp program over a struct seccomp_data; only the opcodes the filter uses. */
function run(prog: Buffer, d: { nr: number; arch: number; args?: bigint[] }): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(d.nr, 0);
  data.writeUInt32LE(d.arch, 4);
  (d.args ?? []).forEach((a, i) => data.writeBigUInt64LE(a, 16 + i * 8));
  let acc = 0;
  for (let pc = 0, steps = 0; pc * 8 < prog.length && steps < 1000; pc++, steps++) {
    const code = prog.readUInt16LE(pc * 8), jt = prog.readUInt8(pc * 8 + 2), jf = prog.readUInt8(pc * 8 + 3), k = prog.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case 0x20: acc = data.readUInt32LE(k); break;
      case 0x15: pc += acc === k ? jt : jf; break;
      case 0x35: pc += acc >= k ? jt : jf; break;
      case 0x45: pc += (acc & k) !== 0 ? jt : jf; break;
      case 0x06: return k;
      default: throw new Error(`unexpected opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('program fell off its end');
}

describe('noUserNamespacesFilter: structure', () => {
  for (const arch of ['x64', 'arm64'] as const) {
    test(`${arch}: whole sock_filters ending in a RET, every jump in range`, () => {
      const prog = noUserNamespacesFilter(arch);
      assert.ok(prog.length > 0 && prog.length % 8 === 0, `length ${prog.length}`);
      const n = prog.length / 8;
      assert.equal(prog.readUInt16LE((n - 1) * 8), 0x06, 'last instruction is BPF_RET|BPF_K');
      for (let i = 0; i < n; i++) {
        const code = prog.readUInt16LE(i * 8);
        if ((code & 0x07) === 0x05) {
          assert.ok(i + 1 + prog.readUInt8(i * 8 + 2) < n && i + 1 + prog.readUInt8(i * 8 + 3) < n, `jump at ${i} leaves the program`);
        }
      }
    });
  }

  test('the default is this machine\'s arch', () => {
    if (process.arch === 'x64' || process.arch === 'arm64') assert.deepEqual(noUserNamespacesFilter(), noUserNamespacesFilter(process.arch));
    else assert.throws(() => noUserNamespacesFilter());
  });

  test('an unsupported arch throws, saying why', () => {
    assert.throws(() => noUserNamespacesFilter('ia32'), /user namespaces cannot be refused on this architecture.*ia32/);
    assert.throws(() => noUserNamespacesFilter('riscv64'), /cannot be refused/);
  });
});

describe('noUserNamespacesFilter: verdicts', () => {
  for (const arch of ['x64', 'arm64'] as const) {
    const a = NATIVE[arch];
    const prog = noUserNamespacesFilter(arch);
    const verdict = (nr: number, args: bigint[] = [], auditArch: number = a.audit) => run(prog, { nr, arch: auditArch, args });

    test(`${arch}: unshare and clone with CLONE_NEWUSER are EPERM, without it allowed`, () => {
      for (const nr of [a.unshare, a.clone]) {
        assert.equal(verdict(nr, [BigInt(CLONE_NEWUSER)]), EPERM);
        assert.equal(verdict(nr, [BigInt(CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD)]), EPERM);
        assert.equal(verdict(nr, [0xffffffffn]), EPERM);
        assert.equal(verdict(nr, [BigInt(CLONE_NEWNS)]), ALLOW);
        assert.equal(verdict(nr, [BigInt(SIGCHLD)]), ALLOW);
        assert.equal(verdict(nr, [0n]), ALLOW);
        // Only args[0] counts: CLONE_NEWUSER's bit in the high half or in another argument is not the flag.
        assert.equal(verdict(nr, [BigInt(CLONE_NEWUSER) << 32n]), ALLOW);
        assert.equal(verdict(nr, [0n, BigInt(CLONE_NEWUSER)]), ALLOW);
      }
    });

    test(`${arch}: clone3 is ENOSYS whatever its arguments`, () => {
      assert.equal(verdict(a.clone3), ENOSYS);
      assert.equal(verdict(a.clone3, [0x1234n, 88n]), ENOSYS);
    });

    test(`${arch}: other syscalls are allowed`, () => {
      for (const nr of [0, 1, a.getpid, 59, 221, 434, 436, 1000]) {
        if (nr === a.unshare || nr === a.clone || nr === a.clone3) continue;
        assert.equal(verdict(nr, [BigInt(CLONE_NEWUSER)]), ALLOW, `nr ${nr}`);
      }
    });

    test(`${arch}: another ABI's syscalls are ENOSYS`, () => {
      const other = arch === 'x64' ? NATIVE.arm64.audit : NATIVE.x64.audit;
      for (const auditArch of [I386, other, 0]) {
        assert.equal(verdict(a.getpid, [], auditArch), ENOSYS);
        assert.equal(verdict(a.unshare, [0n], auditArch), ENOSYS);
      }
    });
  }

  test('x64: x32 syscalls are EPERM (they share the audit arch and number unshare/clone differently)', () => {
    const prog = noUserNamespacesFilter('x64');
    for (const nr of [0x40000000, 0x40000000 + 39, 0x40000000 + 272, 0x40000000 + 56, 0x7fffffff]) {
      assert.equal(run(prog, { nr, arch: NATIVE.x64.audit }), EPERM, `nr 0x${nr.toString(16)}`);
    }
  });

  test('arm64: there is no x32 range', () => {
    assert.equal(run(noUserNamespacesFilter('arm64'), { nr: 0x40000000, arch: NATIVE.arm64.audit }), ALLOW);
  });
});

// ---------------------------------------------------------------------------
// Under a real kernel, through bubblewrap.

const BWRAP = '/usr/bin/bwrap';
const isRoot = process.getuid?.() === 0;
const nativeArch = process.arch === 'x64' || process.arch === 'arm64' ? process.arch : undefined;

interface Result { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs `cmd` under `bwrap --dev-bind / /`, with the filter on a pipe at fd 3 when there is one. */
function bwrap(filter: Buffer | null, cmd: string[]): Promise<Result> {
  const args = ['--dev-bind', '/', '/', ...(filter ? ['--seccomp', '3'] : []), '--', ...cmd];
  const child = spawn(BWRAP, args, { stdio: ['ignore', 'pipe', 'pipe', filter ? 'pipe' : 'ignore'], timeout: 30_000 });
  if (filter) {
    const fd3 = child.stdio[3] as Writable;
    fd3.on('error', () => {}); // bwrap dying before it reads shows in its exit status and stderr
    fd3.end(filter);
  }
  let stdout = '', stderr = '';
  child.stdout!.on('data', (b: Buffer) => { stdout += b; });
  child.stderr!.on('data', (b: Buffer) => { stderr += b; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const show = (r: Result) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** The real interpreter behind any pyenv shim, so the probe doesn't depend on the shim's environment. */
function python(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  const exe = r.status === 0 ? r.stdout.trim() : '';
  return exe && existsSync(exe) ? exe : undefined;
}

// Makes the raw syscalls no command-line tool makes (clone with CLONE_NEWUSER,
// clone3, an x32 call) and prints each outcome as an errno name or "ok".
const PROBE = `
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
nr = json.loads(sys.argv[1])
def call(n, *args):
    r = libc.syscall(ctypes.c_long(n), *[ctypes.c_long(a) for a in args])
    return r, (errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())) if r < 0 else None)
out = {}
r, err = call(nr["clone"], 0x10000000 | 17, 0, 0, 0, 0)
if r == 0:
    os._exit(0)
if r > 0:
    os.waitpid(r, 0)
out["clone_newuser"] = err or "ok"
r, err = call(nr["clone3"], 0, 0)
out["clone3"] = err or "ok"
if nr.get("x32") is not None:
    r, err = call(nr["x32"])
    out["x32"] = err or "ok"
print(json.dumps(out))
`;

describe('noUserNamespacesFilter under bwrap --seccomp', () => {
  const prereq = (t: { skip: (m: string) => void }): boolean => {
    if (!isRoot) { t.skip('needs root: bwrap runs here without a user namespace of its own'); return false; }
    assert.ok(existsSync(BWRAP), `${BWRAP} is missing: the project's setup installs bubblewrap (apt-get install bubblewrap)`);
    assert.ok(nativeArch, `no filter for ${process.arch}`);
    return true;
  };
  const filter = () => noUserNamespacesFilter();

  test('without the filter, unshare -Ur works here (so the refusal below means something)', async (t) => {
    if (!prereq(t)) return;
    const r = await bwrap(null, ['unshare', '-Ur', 'true']);
    assert.equal(r.code, 0, `unshare -Ur fails under bwrap even without the filter, so this machine can't show the filter working:\n${show(r)}`);
  });

  test('with the filter, unshare -Ur is refused with EPERM', async (t) => {
    if (!prereq(t)) return;
    const r = await bwrap(filter(), ['unshare', '-Ur', 'true']);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /Operation not permitted/, show(r));
  });

  test('with the filter, a shell still runs', async (t) => {
    if (!prereq(t)) return;
    const r = await bwrap(filter(), ['sh', '-c', 'echo ok']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'ok\n');
  });

  test('with the filter, root may still make namespaces other than user ones', async (t) => {
    if (!prereq(t)) return;
    const r = await bwrap(filter(), ['unshare', '--mount', '--pid', '--uts', '--fork', 'sh', '-c', 'echo unshared']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'unshared\n');
  });

  test('with the filter, Node starts threads and spawns children (clone3 falls back to clone)', async (t) => {
    if (!prereq(t)) return;
    const r = await bwrap(filter(), [process.execPath, '-e', "require('child_process').execSync('true'); console.log('spawned')"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, 'spawned\n');
  });

  test('with the filter, python forks; raw clone(CLONE_NEWUSER) is EPERM, clone3 ENOSYS', async (t) => {
    if (!prereq(t)) return;
    const py = python();
    if (!py) { t.skip('python3 is not installed'); return; }
    const r0 = await bwrap(filter(), [py, '-c', "import os, sys\npid = os.fork()\nif pid == 0: print('forked'); sys.stdout.flush(); os._exit(0)\nos.waitpid(pid, 0)"]);
    assert.equal(r0.code, 0, show(r0));
    assert.equal(r0.stdout, 'forked\n');

    const nr = { ...NATIVE[nativeArch!], x32: nativeArch === 'x64' ? 0x40000000 + 39 : undefined };
    const probe = async (f: Buffer | null) => {
      const r = await bwrap(f, [py, '-c', PROBE, JSON.stringify(nr)]);
      assert.equal(r.code, 0, show(r));
      return JSON.parse(r.stdout) as Record<string, string>;
    };
    const without = await probe(null);
    // Without the filter the same calls get through to the kernel (clone3 rejects its NULL argument).
    assert.equal(without.clone_newuser, 'ok', JSON.stringify(without));
    assert.notEqual(without.clone3, 'ENOSYS', JSON.stringify(without));
    const withFilter = await probe(filter());
    assert.equal(withFilter.clone_newuser, 'EPERM', JSON.stringify(withFilter));
    assert.equal(withFilter.clone3, 'ENOSYS', JSON.stringify(withFilter));
    if (nativeArch === 'x64') assert.equal(withFilter.x32, 'EPERM', JSON.stringify(withFilter));
  });

  test('bwrap refuses to run on an empty or cut-short filter (a gateway dying mid-write cannot start it unfiltered)', async (t) => {
    if (!prereq(t)) return;
    for (const bytes of [0, 12, 16]) {
      const r = await bwrap(filter().subarray(0, bytes), ['sh', '-c', 'echo ran']);
      assert.notEqual(r.code, 0, `${bytes} bytes: ${show(r)}`);
      assert.equal(r.stdout, '', `${bytes} bytes: ${show(r)}`);
    }
  });
});
