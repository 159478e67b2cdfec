// Pinned versions of everything the toolchain cache holds, read from versions.json
// so the Node-20-safe launcher and setup script share them. Changing one makes a
// new folder beside the old: an upgrade never half-overwrites a working toolchain.
import versions from './versions.json' with { type: 'json' };

export const NODE_VERSION: string = versions.node;
export const CODE_SERVER_VERSION: string = versions.codeServer;
export const OPENCODE_VERSION: string = versions.opencode;
export const MIN_NODE_MAJOR = 24;

/** Debian packages the local runtime and code-server's native build need. */
export const DEBIAN_PACKAGES = [
  'build-essential', 'python3', 'pkg-config', 'libkrb5-dev', 'libxkbfile-dev', 'libsecret-1-dev',
  'bubblewrap', 'slirp4netns', 'iproute2', 'btrfs-progs', 'util-linux', 'coreutils', 'git', 'ca-certificates', 'unzip', 'openssl',
];

/** runtime: docker: the engine, and debootstrap to make the image's base with no registry. */
export const DEBIAN_DOCKER_PACKAGES = ['docker.io', 'debootstrap'];

/** What the test suite and benchmarks need beyond the product: a real browser, nginx (the front door's
 *  tests and the proxy baseline), and Docker for the container runtime's tests. */
export const DEBIAN_TEST_PACKAGES = ['chromium', 'nginx', ...DEBIAN_DOCKER_PACKAGES];
