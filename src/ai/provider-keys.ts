import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const KEYS_FILE = 'ai-keys.json';

/**
 * The model providers' API keys: in one file of the data dir, mode 0600,
 * written whole (rename) so a crash never leaves half a file. Only the
 * gateway's model proxy reads them; no sandbox ever sees one.
 */
export class ProviderKeys {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, KEYS_FILE);
  }

  private read(): Record<string, string> {
    if (!existsSync(this.file)) return {};
    return JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, string>;
  }

  get(provider: string): string | undefined {
    return this.read()[provider];
  }

  set(provider: string, key: string): void {
    this.write({ ...this.read(), [provider]: key });
  }

  delete(provider: string): boolean {
    const keys = this.read();
    if (!(provider in keys)) return false;
    delete keys[provider];
    this.write(keys);
    return true;
  }

  /** Which providers have a key (never the keys). */
  configured(): string[] {
    return Object.keys(this.read());
  }

  private write(keys: Record<string, string>): void {
    const partial = `${this.file}.${process.pid}.partial`;
    writeFileSync(partial, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
    renameSync(partial, this.file);
  }
}
