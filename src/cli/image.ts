import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { toolchainPaths } from '../toolchain/paths.ts';
import { codeServerVersion } from '../toolchain/code-server-install.ts';
import { CODE_SERVER_VERSION } from '../toolchain/versions.ts';
import { dockerClient } from '../runtime/docker/docker-client.ts';
import { buildWorkspaceImage } from '../runtime/docker/image-build.ts';
import type { GlobalFlags } from './main.ts';

/** `codeyard image build`: the workspace image the docker runtime runs. */
export function imageCommands(program: Command, globals: () => GlobalFlags): void {
  const image = program.command('image').description('the workspace image for runtime: docker');
  image.command('build').description('build the workspace image from images/workspace/Dockerfile with the toolchain `codeyard setup` made')
    .option('-t, --tag <tag>', 'image tag (default: runtime.docker.image, codeyard/workspace:<version>)')
    .option('--base-from-debootstrap', 'make the Debian base locally (debootstrap → import) instead of pulling debian:bookworm-slim: works with no registry')
    .option('--ca-cert <file...>', 'extra CA certificates (PEM) the image trusts, e.g. a corporate proxy\'s')
    .action(async (opts: { tag?: string; baseFromDebootstrap?: boolean; caCert?: string[] }) => {
      const config = loadConfig(globals());
      const toolchain = toolchainPaths();
      if (codeServerVersion(toolchain) !== CODE_SERVER_VERSION) throw new Error(`code-server ${CODE_SERVER_VERSION} is not in the toolchain (${toolchain.codeServerDir}): run \`npm run setup\` first`);
      const { docker, where } = dockerClient(config.runtime.docker.host);
      await buildWorkspaceImage({
        docker, where, tag: opts.tag ?? config.runtime.docker.image, toolchain,
        baseFromDebootstrap: opts.baseFromDebootstrap ?? false, caCerts: opts.caCert ?? [],
        uid: config.runtime.docker.uid, cacheDir: toolchain.dir, say: (line) => process.stderr.write(line + '\n'),
      });
    });
}
