// Pinned versions of everything the toolchain cache holds, read from versions.json
// so the Node-20-safe launcher and setup script share them. Changing one makes a
// new folder beside the old: an upgrade never half-overwrites a working toolchain.
import versions from './versions.json' with { type: 'json' };

export const NODE_VERSION: string = versions.node;
export const CODE_SERVER_VERSION: string = versions.codeServer;
export const MIN_NODE_MAJOR = 24;

/** Debian packages the local runtime and code-server's native build need. */
export const DEBIAN_PACKAGES = [
  'build-essential', 'python3', 'pkg-config', 'libkrb5-dev', 'libxkbfile-dev', 'libsecret-1-dev',
  'bubblewrap', 'util-linux', 'coreutils', 'git', 'ca-certificates',
];

/** What the test suite needs beyond the product: a real browser for end-to-end tests. */
export const DEBIAN_TEST_PACKAGES = ['chromium'];
