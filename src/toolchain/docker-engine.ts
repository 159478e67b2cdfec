import { spawn, spawnSync } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { resolveCommand, SYSTEM_PATH } from './system-commands.ts';

const ENGINE_START_WAIT_MS = 60_000;
export const DOCKERD_LOG = '/var/log/codeyard-dockerd.log';

async function answers(docker: Docker): Promise<boolean> {
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure a Docker engine answers: systemd's docker service where systemd
 * runs, else dockerd started here in the background (its log in DOCKERD_LOG).
 * Root only; it never touches an engine that already answers.
 */
export async function ensureDockerEngine(docker: Docker, say: (line: string) => void): Promise<void> {
  if (await answers(docker)) return;
  if (process.getuid?.() !== 0) throw new Error('the Docker engine does not answer, and only root may start it: start dockerd (or point DOCKER_HOST at Podman\'s socket)');
  if (existsSync('/run/systemd/system') && resolveCommand('systemctl')) {
    say('• starting docker.service');
    spawnSync('systemctl', ['start', 'docker'], { stdio: 'inherit' });
  } else {
    const dockerd = resolveCommand('dockerd');
    if (!dockerd) throw new Error('dockerd is not installed: apt-get install docker.io (codeyard setup --with-docker does it)');
    say(`• starting dockerd (log: ${DOCKERD_LOG})`);
    const log = openSync(DOCKERD_LOG, 'a', 0o600);
    spawn(dockerd, [], { detached: true, stdio: ['ignore', log, log], env: { PATH: SYSTEM_PATH } }).unref();
  }
  const deadline = Date.now() + ENGINE_START_WAIT_MS;
  while (!(await answers(docker))) {
    if (Date.now() > deadline) throw new Error(`the Docker engine did not answer within ${ENGINE_START_WAIT_MS / 1000} s: see ${DOCKERD_LOG}`);
    await sleep(250);
  }
  say('✓ Docker engine answers');
}
