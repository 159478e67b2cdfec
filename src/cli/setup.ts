import { toolchainPaths } from '../toolchain/paths.ts';
import { CODE_SERVER_VERSION, DEBIAN_PACKAGES, DEBIAN_TEST_PACKAGES, MIN_NODE_MAJOR } from '../toolchain/versions.ts';
import { installDebianPackages, missingDebianPackages } from '../toolchain/system-packages.ts';
import { codeServerVersion, installCodeServer } from '../toolchain/code-server-install.ts';

export interface SetupOptions {
  withTestDeps?: boolean;
}

const say = (line: string) => process.stderr.write(line + '\n');
const step = (line: string) => say(`\x1b[1m==> ${line}\x1b[0m`);

/** `codeyard setup`: system packages, Node check, code-server; idempotent and verified. */
export async function runSetup(opts: SetupOptions): Promise<void> {
  // scripts/setup.sh passes its own start time, so the total includes Node and npm ci.
  const t0 = Number(process.env.CODEYARD_SETUP_STARTED_MS) || Date.now();
  const wanted = [...DEBIAN_PACKAGES, ...(opts.withTestDeps ? DEBIAN_TEST_PACKAGES : [])];
  const missing = missingDebianPackages(wanted);
  if (missing.length === 0) {
    say(`✓ Debian packages present (${wanted.length})`);
  } else if (process.getuid?.() === 0) {
    step(`installing Debian packages: ${missing.join(' ')}`);
    installDebianPackages(missing);
  } else {
    say(`! missing Debian packages: ${missing.join(' ')}\n  run as root: apt-get install -y ${missing.join(' ')}`);
  }

  const major = Number(process.versions.node.split('.')[0]);
  if (major < MIN_NODE_MAJOR) throw new Error(`codeyard runs on Node >= ${MIN_NODE_MAJOR}; this is ${process.version}: run \`npm run setup\``);
  const t = toolchainPaths();
  say(`✓ Node ${process.version} (${t.nodeBin})`);

  let version = codeServerVersion(t);
  if (version === CODE_SERVER_VERSION) {
    say(`✓ code-server ${version} (${t.codeServerDir})`);
  } else {
    step(`installing code-server ${CODE_SERVER_VERSION} into ${t.codeServerDir} (a few minutes the first time)`);
    await installCodeServer(t, say);
    version = codeServerVersion(t);
    if (version !== CODE_SERVER_VERSION) throw new Error(`code-server was installed but \`code-server --version\` gave ${version ?? 'nothing'}: see ${t.dir}`);
    say(`✓ code-server ${version} runs`);
  }
  const next = process.env.npm_lifecycle_event === 'start' ? 'starting the gateway…'
    : process.env.npm_lifecycle_event === 'test' ? 'running the tests…'
    : 'start the gateway with: npm start   (or: npx codeyard serve)';
  say(`setup complete in ${((Date.now() - t0) / 1000).toFixed(1)}s; ${next}`);
}
