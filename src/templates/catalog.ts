import type { SandboxLayout, ServiceSpec } from '../runtime/interface.ts';

/** What the gateway's configuration adds to a template's command. */
export interface TemplateOptions {
  /** code-server's --proxy-domain: where its Ports view says a port is, e.g. `{{port}}-<id>.code.example.com`. */
  proxyDomain?: string;
}

export interface Template {
  templateID: string;
  description: string;
  command: (layout: SandboxLayout, options: TemplateOptions) => string[];
  services: Record<string, ServiceSpec>;
  /** The workspace a sandbox mounts when its creator names none; null: a throwaway one. */
  defaultWorkspace: string | null;
  /** `isolated`: its own network namespace, out only through the gateway's egress proxy. */
  network: 'outbound' | 'isolated';
}

/**
 * What happens when a sandbox's timeout passes: one with a persistent workspace
 * is stopped (nothing of the user's is lost, opening it starts it again); one
 * with a throwaway workspace is deleted, like E2B's. `templates.<id>.onExpiry`
 * in the config overrides it per template.
 */
export function defaultOnExpiry(hasPersistentWorkspace: boolean): 'stop' | 'delete' {
  return hasPersistentWorkspace ? 'stop' : 'delete';
}

const vscode: Template = {
  templateID: 'vscode',
  description: 'VS Code in the browser (code-server) on the workspace',
  command: (l, o) => [
    l.nodeBin, l.codeServerEntry,
    '--auth', 'none',
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    // The gateway serves /proxy/<port>/ and /absproxy/<port>/ itself, through the sandbox's own
    // network namespace, under the gateway's login, and can turn previews off.
    '--disable-proxy',
    ...(o.proxyDomain ? ['--proxy-domain', o.proxyDomain] : []),
    '--socket', `${l.runDir}/ide.sock`,
    '--user-data-dir', `${l.home}/.local/share/code-server`,
    '--extensions-dir', `${l.home}/.local/share/code-server/extensions`,
    l.workspace,
  ],
  services: { ide: { socketName: 'ide.sock', healthPath: '/healthz' } },
  defaultWorkspace: 'default',
  network: 'outbound',
};

/**
 * Headless Chromium, driven over CDP through the gateway (/cdp-proxy/<id>/).
 * Its DevTools listener has no authentication, so the sandbox gets a network
 * namespace of its own: the listener is on the sandbox's loopback, reachable
 * only through cdp.sock, and pages reach the world through the gateway.
 */
const browser: Template = {
  templateID: 'browser',
  description: 'Headless Chromium, driven over the Chrome DevTools Protocol (Playwright, Puppeteer, …)',
  command: (l) => [l.nodeBin, `${l.agentDir}/browser-sandbox.mjs`],
  services: { cdp: { socketName: 'cdp.sock', healthPath: '/json/version' } },
  defaultWorkspace: null,
  network: 'isolated',
};

const TEMPLATES = new Map<string, Template>([vscode, browser].map((t) => [t.templateID, t]));

export function findTemplate(templateID: string): Template | undefined {
  return TEMPLATES.get(templateID);
}

export function listTemplates(): { templateID: string; description: string; defaultWorkspace: string | null }[] {
  return [...TEMPLATES.values()].map(({ templateID, description, defaultWorkspace }) => ({ templateID, description, defaultWorkspace }));
}

export function templateIDs(): string[] {
  return [...TEMPLATES.keys()];
}
