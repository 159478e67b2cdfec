import { toolchainPaths } from '../toolchain/paths.ts';
import { installOpencode, opencodeVersion } from '../toolchain/opencode-install.ts';
import { installBuiltinExtension, installedExtensionVersion } from '../toolchain/extension-install.ts';
import { CODE_SERVER_VERSION, OPENCODE_VERSION, DEBIAN_DOCKER_PACKAGES, DEBIAN_PACKAGES, DEBIAN_TEST_PACKAGES, MIN_NODE_MAJOR } from '../toolchain/versions.ts';
import { ensureDockerEngine } from '../toolchain/docker-engine.ts';
import { dockerClient } from '../runtime/docker/docker-client.ts';
import { buildWorkspaceImage, imageIsCurrent, imageRecipe } from '../runtime/docker/image-build.ts';
import { DEFAULT_IMAGE } from '../config.ts';
import type { Toolchain } from '../toolchain/paths.ts';
import { installDebianPackages, missingDebianPackages } from '../toolchain/system-packages.ts';
import { codeServerVersion, installCodeServer } from '../toolchain/code-server-install.ts';

export interface SetupOptions {
  withTestDeps?: boolean;
  /** runtime: docker: the engine (started if it does not answer) and the workspace image. */
  withDocker?: boolean;
}

const say = (line: string) => process.stderr.write(line + '\n');
const step = (line: string) => say(`\x1b[1m==> ${line}\x1b[0m`);

/** `codeyard setup`: system packages, Node check, code-server; idempotent and verified. */
export async function runSetup(opts: SetupOptions): Promise<void> {
  // scripts/setup.sh passes its own start time, so the total includes Node and npm ci.
  const t0 = Number(process.env.CODEYARD_SETUP_STARTED_MS) || Date.now();
  const withDocker = opts.withDocker || opts.withTestDeps;
  const wanted = [...new Set([...DEBIAN_PACKAGES, ...(opts.withTestDeps ? DEBIAN_TEST_PACKAGES : []), ...(withDocker ? DEBIAN_DOCKER_PACKAGES : [])])];
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
  // The opencode extension, packaged by scripts/build-extension.ts, as a built-in of code-server (always refreshed: it is quick).
  installBuiltinExtension(t);
  say(`✓ extension codeyard-opencode ${installedExtensionVersion(t)} built into code-server`);
  const oc = opencodeVersion(t);
  if (oc === OPENCODE_VERSION) {
    say(`✓ opencode ${oc} (${t.opencodeDir})`);
  } else {
    step(`installing opencode ${OPENCODE_VERSION} into ${t.opencodeDir}`);
    await installOpencode(t, say);
    const got = opencodeVersion(t);
    if (got !== OPENCODE_VERSION) throw new Error(`opencode was installed but \`opencode --version\` gave ${got ?? 'nothing'}: see ${t.opencodeDir}`);
  }
  if (withDocker) await setUpDocker(t, say);
  const next = process.env.npm_lifecycle_event === 'start' ? 'starting the gateway…'
    : process.env.npm_lifecycle_event === 'test' ? 'running the tests…'
    : 'start the gateway with: npm start   (or: npx codeyard serve)';
  say(`setup complete in ${((Date.now() - t0) / 1000).toFixed(1)}s; ${next}`);
}

/** The Docker engine answering, and the workspace image built from this toolchain (debootstrap base: no registry needed). */
async function setUpDocker(t: Toolchain, say: (line: string) => void): Promise<void> {
  const { docker, where } = dockerClient();
  await ensureDockerEngine(docker, say);
  const uid = 1000;
  if (await imageIsCurrent(docker, DEFAULT_IMAGE, imageRecipe(t, uid))) {
    say(`✓ workspace image ${DEFAULT_IMAGE}`);
    return;
  }
  step(`building the workspace image ${DEFAULT_IMAGE} (a few minutes the first time)`);
  const build = () => buildWorkspaceImage({ docker, where, tag: DEFAULT_IMAGE, toolchain: t, baseFromDebootstrap: true, caCerts: [], uid, cacheDir: t.dir, say });
  await build().catch(async (err: Error) => {
    // The engine's untar of a large COPY has been seen to fail once and pass on the next try (the finished steps are cached).
    say(`! ${err.message.split('\n')[0]}; trying the build once more`);
    await build();
  });
}
