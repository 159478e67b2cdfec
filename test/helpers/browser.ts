import { chromium, type Browser, type FrameLocator, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CODEYARD_CHROMIUM ?? '/usr/bin/chromium';

/** Debian's Chromium, headless, with the flags this machine's closed network needs. */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', ...extraArgs],
  });
}

/** VS Code settings for a test's eyes: the terminal drawn as DOM text, no welcome page. Run it in a sandbox before its IDE opens. */
export const DOM_TERMINAL_SETTINGS = 'mkdir -p ~/.local/share/code-server/User && ' +
  `printf '%s' '{"terminal.integrated.gpuAcceleration":"off","workbench.startupEditor":"none"}' > ~/.local/share/code-server/User/settings.json`;

/** A new page that opened a sandbox's IDE link, logged in on the way, and shows the workbench. */
export async function openIde(browser: Browser, gatewayUrl: string, sandboxID: string, username: string, password: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${gatewayUrl}/vscode-proxy/${sandboxID}/`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
  return page;
}

/**
 * Opens VS Code's integrated terminal and runs `command` in it, returning once
 * `expect` shows on screen. The keybinding is only live once the workbench has
 * focus and its contributions are registered, so this retries, then falls
 * back to the command palette.
 */
export async function runInTerminal(page: Page, command: string, expect: string): Promise<void> {
  await typeInTerminal(page, page, command);
  await page.locator('.xterm-rows', { hasText: expect }).first().waitFor({ timeout: 30_000 });
}

/**
 * Opens the integrated terminal of the workbench in `root` (the page, or the
 * frame holding the workbench) and types `command` into it.
 */
export async function typeInTerminal(page: Page, root: Page | FrameLocator, command: string): Promise<void> {
  const terminal = root.locator('.terminal-wrapper .xterm').first();
  for (let attempt = 0; attempt < 6 && !(await terminal.isVisible()); attempt++) {
    await page.bringToFront();
    await root.locator('.monaco-workbench').click({ position: { x: 400, y: 300 } }).catch(() => {});
    if (attempt < 3) {
      await page.keyboard.press('Control+Shift+Backquote');
    } else {
      await page.keyboard.press('F1');
      await page.keyboard.type('Terminal: Create New Terminal');
      await page.keyboard.press('Enter');
    }
    await terminal.waitFor({ timeout: 10_000 }).catch(() => {});
  }
  await terminal.waitFor({ timeout: 10_000 });
  await terminal.click();
  await page.keyboard.type(`${command}\n`);
}
