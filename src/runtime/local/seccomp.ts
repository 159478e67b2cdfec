// A seccomp filter that stops a sandbox from making user namespaces. Inside a
// user namespace an unprivileged process holds every capability over the
// namespaces it owns, which is the entry point for most kernel privilege
// escalations; the sandbox never needs one of its own.
//
// The result is what bubblewrap's `--seccomp FD` reads: a bare array of
// classic-BPF `struct sock_filter` (no `struct sock_fprog` header), which bwrap
// installs after setting no_new_privs, just before it execs the command.

// struct sock_filter codes.
const LD_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET = 0x06; // BPF_RET | BPF_K

// struct seccomp_data offsets. args[0] is a u64; on these little-endian
// machines its low half, which holds every CLONE_NEW* flag, comes first.
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG0_LO = 16;

const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEWUSER = 0x10000000;
const X32_SYSCALL_BIT = 0x40000000;

interface ArchInfo {
  audit: number;
  unshare: number;
  clone: number;
  clone3: number;
  ioctl: number;
  /** x86_64 also accepts x32 syscalls under the same audit arch, numbered from X32_SYSCALL_BIT. */
  x32: boolean;
}

const ARCHES: Record<string, ArchInfo> = {
  x64: { audit: 0xc000003e, unshare: 272, clone: 56, clone3: 435, ioctl: 16, x32: true },
  arm64: { audit: 0xc00000b7, unshare: 97, clone: 220, clone3: 435, ioctl: 29, x32: false },
};

/**
 * btrfs ioctls that make a subvolume (or a snapshot, which is one): a subvolume gets a
 * qgroup of its own, outside the workspace's limit (storage.workspaceImageMB), so a
 * sandbox could write past its quota through one. _IOW(0x94, n, 4096-byte args).
 */
const BTRFS_SUBVOLUME_IOCTLS = [0x50009401 /* SNAP_CREATE */, 0x5000940e /* SUBVOL_CREATE */, 0x50009417 /* SNAP_CREATE_V2 */, 0x50009418 /* SUBVOL_CREATE_V2 */];
// args[1] (the ioctl request) is a u64 after args[0]; its low half comes first.
const OFF_ARG1_LO = 24;

type Label = 'next' | 'flags' | 'ioctl' | 'eperm' | 'enosys' | 'allow';
type Insn = { code: number; jt: Label; jf: Label; k: number; label?: Label };

const ld = (k: number): Insn => ({ code: LD_ABS, jt: 'next', jf: 'next', k });
const jmp = (code: number, k: number, jt: Label, jf: Label): Insn => ({ code, jt, jf, k });
const ret = (k: number, label?: Label): Insn => ({ code: RET, jt: 'next', jf: 'next', k, label });

/** The filter for `arch` (a `process.arch` value), as bwrap's `--seccomp` wants it. */
export function noUserNamespacesFilter(arch: string = process.arch): Buffer {
  const a = ARCHES[arch];
  if (!a) throw new Error(`seccomp: user namespaces cannot be refused on this architecture (${arch}); only x64 and arm64 are supported`);

  const program: Insn[] = [
    // Syscall numbers mean something else under another ABI (32-bit compat
    // calls through int 0x80, say), so only the native one is judged. Foreign
    // calls fail with ENOSYS rather than killing the process (as Docker does
    // for arches it doesn't list): nothing in the sandbox should make them,
    // and a failing call is easier to diagnose than a dead process.
    ld(OFF_ARCH),
    jmp(JEQ, a.audit, 'next', 'enosys'),
    ld(OFF_NR),
    // x32 shares x86_64's audit arch, and its own unshare/clone numbers would slip past the checks below.
    ...(a.x32 ? [jmp(JGE, X32_SYSCALL_BIT, 'eperm', 'next')] : []),
    jmp(JEQ, a.unshare, 'flags', 'next'),
    jmp(JEQ, a.clone, 'flags', 'next'),
    jmp(JEQ, a.ioctl, 'ioctl', 'next'),
    // clone3 passes its flags in memory, which seccomp cannot read; ENOSYS
    // makes glibc and libuv fall back to clone, whose flags it can.
    jmp(JEQ, a.clone3, 'enosys', 'allow'),
    { ...ld(OFF_ARG0_LO), label: 'flags' },
    jmp(JSET, CLONE_NEWUSER, 'eperm', 'allow'),
    { ...ld(OFF_ARG1_LO), label: 'ioctl' },
    ...BTRFS_SUBVOLUME_IOCTLS.map((request, i) => jmp(JEQ, request, 'eperm', i === BTRFS_SUBVOLUME_IOCTLS.length - 1 ? 'allow' : 'next')),
    ret(RET_ERRNO | EPERM, 'eperm'),
    ret(RET_ERRNO | ENOSYS, 'enosys'),
    ret(RET_ALLOW, 'allow'),
  ];

  const at = new Map(program.flatMap((insn, i) => (insn.label ? [[insn.label, i] as const] : [])));
  const offset = (from: number, to: Label): number => {
    if (to === 'next') return 0;
    const target = at.get(to);
    if (target === undefined || target <= from) throw new Error(`seccomp: bad jump to ${to}`);
    return target - from - 1; // BPF jumps are relative to the next instruction and only go forward
  };

  const buf = Buffer.alloc(program.length * 8);
  program.forEach((insn, i) => {
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(offset(i, insn.jt), i * 8 + 2);
    buf.writeUInt8(offset(i, insn.jf), i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}
