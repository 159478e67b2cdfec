import { Command, Option } from 'commander';
import { CodeyardError } from '../errors.ts';
import type { ConfigSources } from '../config.ts';
import { runServe } from './serve.ts';
import { runSetup } from './setup.ts';
import { runDoctor } from './doctor.ts';
import { sandboxCommands } from './sandbox.ts';
import { userCommands } from './user.ts';
import { backupCommands } from './backup.ts';
import { workspaceCommands } from './workspace.ts';
import { imageCommands } from './image.ts';
import { aiCommands } from './ai.ts';
import { frontDoorCommands } from './front-door.ts';

export type GlobalFlags = ConfigSources;

const program = new Command('codeyard')
  .description('Self-hosted browser IDE gateway: VS Code sandboxes with an HTTP API and one proxy')
  .option('-c, --config <file>', 'config file, YAML or JSON (env: CODEYARD_CONFIG; default: <data-dir>/codeyard.yaml)')
  .option('--data-dir <dir>', 'data directory (env: CODEYARD_DATA_DIR; default: ~/.local/share/codeyard)')
  .addOption(new Option('--host <host>', 'address to listen on (env: CODEYARD_HOST; default 127.0.0.1)'))
  .addOption(new Option('--port <port>', 'port to listen on (env: CODEYARD_PORT; default 8080)'))
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (env: CODEYARD_LOG_LEVEL)')
  .option('--runtime <driver>', 'local (bubblewrap) or docker (env: CODEYARD_RUNTIME)')
  .showHelpAfterError();

const globals = (): GlobalFlags => {
  const o = program.opts<{ config?: string; dataDir?: string; host?: string; port?: string; logLevel?: string; runtime?: string }>();
  return { configPath: o.config, flags: { dataDir: o.dataDir, host: o.host, port: o.port, logLevel: o.logLevel, ...(o.runtime ? { runtime: { driver: o.runtime } } : {}) } };
};

program.command('serve').description('start the gateway')
  .option('--stop-sandboxes', 'on SIGTERM/SIGINT also stop every sandbox (default: leave them running for the next start to adopt)')
  .action((opts: { stopSandboxes?: boolean }) => runServe(globals(), opts));
program.command('setup').description('install the toolchain: system packages (as root), Node 24 check, code-server')
  .option('--with-docker', 'also set up runtime: docker (docker.io and debootstrap, the engine, the workspace image)')
  .option('--with-test-deps', 'also install what the test suite needs (chromium, and everything --with-docker does)')
  .action((opts: { withTestDeps?: boolean; withDocker?: boolean }) => runSetup(opts));
program.command('doctor').description('check everything `serve` needs and say what to fix')
  .action(async () => { process.exitCode = await runDoctor(globals()); });
sandboxCommands(program, globals);
userCommands(program, globals);
workspaceCommands(program, globals);
imageCommands(program, globals);
aiCommands(program, globals);
frontDoorCommands(program, globals);
backupCommands(program, globals);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // The edge: one line the operator can act on; a stack only for the unexpected.
  const message = err instanceof CodeyardError || err instanceof Error && !(err instanceof TypeError) ? err.message : String((err as Error).stack ?? err);
  process.stderr.write(`codeyard: ${message}\n`);
  process.exit(1);
}
