import { spawn } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { SYSTEM_PATH } from '../../toolchain/system-commands.ts';
import type { Toolchain } from '../../toolchain/paths.ts';
import { engineError, isNotFound } from './docker-client.ts';
import { EXTENSION_VSIX } from '../../toolchain/extension-install.ts';

const DOCKERFILE = join(import.meta.dirname, '..', '..', '..', 'images', 'workspace', 'Dockerfile');
const DEBIAN_SUITE = 'bookworm';
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
const PROGRESS_EVERY_MS = 15_000;
/**
 * What the debootstrap base includes: the Dockerfile's PACKAGES but chromium,
 * whose desktop dependencies will not configure inside debootstrap; the image
 * build installs it from Debian (containers reach the mirror).
 */
export const WORKSPACE_PACKAGES = ['ca-certificates', 'git', 'python3', 'python3-venv', 'tini', 'procps', 'curl', 'less', 'openssh-client', 'nano', 'xz-utils', 'unzip', 'bash-completion'];

export interface ImageBuildOptions {
  docker: Docker;
  where: string;
  tag: string;
  toolchain: Toolchain;
  /** Make the Debian base locally (debootstrap → docker import) instead of pulling debian:bookworm-slim. */
  baseFromDebootstrap: boolean;
  /** Extra CA certificates (PEM files) the image trusts. */
  caCerts: string[];
  uid: number;
  /** Where slow things are kept between runs (the debootstrap tarball). */
  cacheDir: string;
  say: (line: string) => void;
}

/** What the image is made of: a different toolchain, Dockerfile or uid means a different image. */
export function imageRecipe(toolchain: Toolchain, uid: number): string {
  return createHash('sha256').update([toolchain.nodeDir, toolchain.codeServerDir, toolchain.opencodeDir, readFileSync(DOCKERFILE, 'utf8'), uid, existsSync(EXTENSION_VSIX) ? readFileSync(EXTENSION_VSIX).toString('base64') : ''].join('\n')).digest('hex').slice(0, 16);
}

/** Whether `tag` exists and was built from this recipe. */
export async function imageIsCurrent(docker: Docker, tag: string, recipe: string): Promise<boolean> {
  try {
    return (await docker.getImage(tag).inspect()).Config?.Labels?.['codeyard.recipe'] === recipe;
  } catch {
    return false;
  }
}

/** Builds the workspace image; returns its ID. */
export async function buildWorkspaceImage(o: ImageBuildOptions): Promise<string> {
  const started = Date.now();
  const base = o.baseFromDebootstrap ? await debootstrapBase(o) : 'debian:bookworm-slim';
  const context = join(o.cacheDir, `.image-context-${process.pid}`);
  rmSync(context, { recursive: true, force: true });
  try {
    mkdirSync(join(context, 'ca'), { recursive: true });
    mkdirSync(join(context, 'toolchain'), { recursive: true });
    copyFileSync(DOCKERFILE, join(context, 'Dockerfile'));
    writeFileSync(join(context, 'ca', '.keep'), '');
    for (const cert of o.caCerts) {
      if (!existsSync(cert)) throw new Error(`--ca-cert ${cert}: no such file`);
      copyFileSync(cert, join(context, 'ca', basename(cert).replace(/\.(pem|crt)$/, '') + '.crt'));
    }
    // Hard links: the context costs no copy of the (large) toolchain.
    o.say(`• toolchain from ${o.toolchain.dir}: Node ${o.toolchain.nodeDir}, code-server ${o.toolchain.codeServerDir}`);
    await run('cp', ['-al', o.toolchain.nodeDir, join(context, 'toolchain', 'node')]);
    await run('cp', ['-al', o.toolchain.codeServerDir, join(context, 'toolchain', 'code-server')]);
    if (existsSync(o.toolchain.opencodeDir)) {
      await run('cp', ['-al', o.toolchain.opencodeDir, join(context, 'toolchain', 'opencode')]);
    } else {
      o.say(`! opencode is not in the toolchain (${o.toolchain.opencodeDir}): the image will lack it; \`codeyard setup\` installs it`);
      mkdirSync(join(context, 'toolchain', 'opencode'), { recursive: true });
      writeFileSync(join(context, 'toolchain', 'opencode', '.keep'), '');
    }
    o.say(`• building ${o.tag} on ${base} (uid ${o.uid})`);
    const tar = spawn('tar', ['-C', context, '-c', '.'], { env: { PATH: SYSTEM_PATH }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stream: NodeJS.ReadableStream;
    try {
      stream = await o.docker.buildImage(tar.stdout as unknown as NodeJS.ReadableStream, {
        t: o.tag, buildargs: { BASE: base, UID: String(o.uid) }, rm: true, forcerm: true,
        labels: { 'codeyard.image': 'workspace', 'codeyard.recipe': imageRecipe(o.toolchain, o.uid) },
      });
    } catch (err) {
      throw engineError(err, o.where, 'building the workspace image');
    }
    // A step like installing Chromium prints nothing for a minute: say it is still going.
    let step = '';
    const ticker = setInterval(() => o.say(`  … still at ${step || 'the first step'} (${Math.round((Date.now() - started) / 1000)} s)`), PROGRESS_EVERY_MS);
    await new Promise<void>((resolve, reject) => {
      o.docker.modem.followProgress(stream, (err: Error | null, output: { error?: string }[]) => {
        const failed = err?.message ?? output.find((x) => x.error)?.error;
        if (failed) reject(new Error(`building ${o.tag} failed: ${failed.trim()}${base.startsWith('debian:') ? '\n  (no registry here? build with --base-from-debootstrap)' : ''}`));
        else resolve();
      }, (event: { stream?: string; status?: string }) => {
        const line = (event.stream ?? event.status ?? '').trim();
        if (/^Step \d+\/\d+/.test(line)) step = line.split(':')[0]!;
        if (/^Step \d+\/\d+/.test(line) || /^(Successfully|Pulling|Digest|Status)/.test(line)) o.say(`  ${line.slice(0, 160)}`);
      });
    }).finally(() => clearInterval(ticker));
    const id = (await o.docker.getImage(o.tag).inspect()).Id;
    o.say(`✓ ${o.tag} built in ${((Date.now() - started) / 1000).toFixed(0)} s (${id.slice(7, 19)})`);
    return id;
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/**
 * A minimal Debian with the workspace packages, made with debootstrap and
 * imported into the engine: no registry needed. The tarball is cached, so a
 * fresh engine imports in seconds instead of bootstrapping again.
 */
async function debootstrapBase(o: ImageBuildOptions): Promise<string> {
  const hash = createHash('sha256').update(`${DEBIAN_SUITE} ${WORKSPACE_PACKAGES.join(',')}`).digest('hex').slice(0, 12);
  const tag = `codeyard/debian-base:${DEBIAN_SUITE}-${hash}`;
  try {
    await o.docker.getImage(tag).inspect();
    o.say(`✓ base ${tag} present`);
    return tag;
  } catch (err) {
    if (!isNotFound(err)) throw engineError(err, o.where, 'looking for the base image');
  }
  const tarball = join(o.cacheDir, `debian-${DEBIAN_SUITE}-${hash}.tar`);
  if (!existsSync(tarball)) {
    const root = join(o.cacheDir, `.debootstrap-${process.pid}`);
    rmSync(root, { recursive: true, force: true });
    o.say(`• debootstrap ${DEBIAN_SUITE} (minbase + ${WORKSPACE_PACKAGES.length} packages) from ${DEBIAN_MIRROR}: a minute or two`);
    try {
      const t0 = Date.now();
      const ticker = setInterval(() => o.say(`  … debootstrap still running (${Math.round((Date.now() - t0) / 1000)} s)`), PROGRESS_EVERY_MS);
      await run('debootstrap', ['--variant=minbase', `--include=${WORKSPACE_PACKAGES.join(',')}`, DEBIAN_SUITE, root, DEBIAN_MIRROR])
        .catch((err: Error) => {
          // The bootstrap folder goes away below: keep its log where the operator can read it.
          const kept = join(o.cacheDir, 'debootstrap-failed.log');
          try { copyFileSync(join(root, 'debootstrap', 'debootstrap.log'), kept); } catch { /* it failed before writing one */ }
          throw new Error(`${err.message}\n  debootstrap's log: ${kept}`);
        })
        .finally(() => clearInterval(ticker));
      // The package cache is not part of an image.
      await run('sh', ['-c', `rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/*`]);
      await run('tar', ['-C', root, '--numeric-owner', '-cf', `${tarball}.partial`, '.']);
      renameSync(`${tarball}.partial`, tarball);
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(`${tarball}.partial`, { force: true });
    }
  }
  o.say(`• importing ${tarball} as ${tag}`);
  const [repo, version] = tag.split(':') as [string, string];
  try {
    const progress = await o.docker.importImage(createReadStream(tarball), { repo, tag: version });
    await new Promise<void>((resolve, reject) => o.docker.modem.followProgress(progress, (err: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    throw engineError(err, o.where, `importing ${tarball}`);
  }
  return tag;
}

/** Runs a system tool; its stderr's end becomes the error. */
function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { PATH: SYSTEM_PATH, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    child.once('error', (e) => reject(new Error(`${cmd}: ${e.message}${(e as NodeJS.ErrnoException).code === 'ENOENT' ? ` (install it: apt-get install ${cmd})` : ''}`)));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')}… failed (${code}): ${stderr.trim().slice(-1500)}`))));
  });
}
