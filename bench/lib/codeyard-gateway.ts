// codeyard's gateway as a bench party, in its own process: startGateway with
// its real store, auth, lifecycle, proxy and API, and a driver whose sandboxes
// are the bench backend. Prints {"url"} when listening; the orchestrator logs
// in and creates the sandbox over HTTP like any client.
// Argv: <backend port> <admin password> (node flags such as --cpu-prof go before the script).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadConfig } from '../../src/config.ts';
import { startGateway } from '../../src/gateway.ts';
import { FixedEndpointRuntime } from './fixed-endpoint-runtime.ts';

const backendPort = Number(process.argv[2]);
const adminPassword = process.argv[3]!;
const dataDir = mkdtempSync('/tmp/cy-bench-gw-');
const config = loadConfig({ env: {}, flags: { dataDir, host: '127.0.0.1', port: 0, logLevel: 'warn' } });
const gateway = await startGateway(config, {
  runtime: new FixedEndpointRuntime({ host: '127.0.0.1', port: backendPort }),
  env: { CODEYARD_ADMIN_PASSWORD: adminPassword },
});
console.log(JSON.stringify({ url: gateway.url }));

const shutdown = async () => {
  await gateway.close();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0); // exit() also writes a --cpu-prof profile
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
