import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const KEYS_FILE = 'ai-keys.json';

interface KeyFile {
  /** The organisation's keys, set by admins, by provider. */
  providers: Record<string, string>;
  /** Keys users brought themselves, by user id then provider: used for their calls only. */
  users: Record<string, Record<string, string>>;
}

/** That a provider has a key, and a hint to tell keys apart: never the key. */
export interface KeyHint {
  provider: string;
  /** The key's last four characters; null for a key under 20 characters, where four would give too much away. */
  hint: string | null;
}

const HINT_MIN_KEY_LENGTH = 20;
const hintOf = (key: string) => (key.length >= HINT_MIN_KEY_LENGTH ? `…${key.slice(-4)}` : null);

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

  private read(): KeyFile {
    if (!existsSync(this.file)) return { providers: {}, users: {} };
    const raw = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<KeyFile> | Record<string, string>;
    // The first version kept only the organisation's keys, flat.
    if (!('providers' in raw) && !('users' in raw)) return { providers: raw as Record<string, string>, users: {} };
    return { providers: (raw as KeyFile).providers ?? {}, users: (raw as KeyFile).users ?? {} };
  }

  get(provider: string): string | undefined {
    return this.read().providers[provider];
  }

  /** The key for a user's call: their own if they brought one, else the organisation's; and which it is. */
  forUser(provider: string, userId: number): { key: string; own: boolean } | undefined {
    const keys = this.read();
    const own = keys.users[String(userId)]?.[provider];
    if (own) return { key: own, own: true };
    const shared = keys.providers[provider];
    return shared ? { key: shared, own: false } : undefined;
  }

  set(provider: string, key: string): void {
    const keys = this.read();
    keys.providers[provider] = key;
    this.write(keys);
  }

  delete(provider: string): boolean {
    const keys = this.read();
    if (!(provider in keys.providers)) return false;
    delete keys.providers[provider];
    this.write(keys);
    return true;
  }

  setForUser(userId: number, provider: string, key: string): void {
    const keys = this.read();
    keys.users[String(userId)] = { ...keys.users[String(userId)], [provider]: key };
    this.write(keys);
  }

  deleteForUser(userId: number, provider: string): boolean {
    const keys = this.read();
    const mine = keys.users[String(userId)];
    if (!mine || !(provider in mine)) return false;
    delete mine[provider];
    this.write(keys);
    return true;
  }

  /** Which providers have an organisation key. */
  configured(): KeyHint[] {
    return Object.entries(this.read().providers).map(([provider, key]) => ({ provider, hint: hintOf(key) }));
  }

  /** Which providers a user brought a key for. */
  configuredForUser(userId: number): KeyHint[] {
    return Object.entries(this.read().users[String(userId)] ?? {}).map(([provider, key]) => ({ provider, hint: hintOf(key) }));
  }

  private write(keys: KeyFile): void {
    const partial = `${this.file}.${process.pid}.partial`;
    writeFileSync(partial, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
    renameSync(partial, this.file);
  }
}
