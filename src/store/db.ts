import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type Db = Database.Database;

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

/** Opens (creating if needed) the SQLite store in WAL mode and applies pending numbered migrations. */
export function openDb(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path);
  // Password hashes and session hashes live here: owner-only, whatever the umask.
  if (path !== ':memory:') for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  for (const file of files) {
    const version = Number.parseInt(file, 10);
    if (version <= current) continue;
    const sql = readFileSync(join(MIGRATIONS_DIR, file), 'utf8');
    // A migration that rebuilds a table others point at runs with foreign keys off (they cannot be
    // switched inside a transaction), and must leave none dangling.
    const rebuilds = sql.startsWith('-- codeyard:foreign-keys-off');
    if (rebuilds) db.pragma('foreign_keys = OFF');
    try {
      db.transaction(() => {
        db.exec(sql);
        if (rebuilds && (db.pragma('foreign_key_check') as unknown[]).length > 0) throw new Error(`migration ${file} left rows pointing nowhere`);
        db.pragma(`user_version = ${version}`);
      })();
    } finally {
      if (rebuilds) db.pragma('foreign_keys = ON');
    }
  }
}
