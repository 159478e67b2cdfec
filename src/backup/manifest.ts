/** What a backup archive holds; `manifest.json` at its root. */
export interface BackupManifest {
  format: 'codeyard-backup';
  version: 1;
  createdAt: string;
  /** `full`: the database and every workspace; `user`: one user's workspaces only. */
  scope: 'full' | 'user';
  user: string | null;
  workspaces: {
    owner: string;
    name: string;
    createdAt: string;
    /** Paths in the archive: users/<owner>/<name>/{workspace,config}. */
    path: string;
    /** Whether every sandbox using it was frozen while it was copied (false: copied live). */
    consistent: boolean;
  }[];
}

export const MANIFEST_FILE = 'manifest.json';
export const DATABASE_FILE = 'codeyard.db';

export function parseManifest(text: string, source: string): BackupManifest {
  let m: BackupManifest;
  try {
    m = JSON.parse(text) as BackupManifest;
  } catch {
    throw new Error(`${source}: manifest.json is not JSON; is this a codeyard backup?`);
  }
  if (m?.format !== 'codeyard-backup') throw new Error(`${source}: not a codeyard backup (no codeyard manifest.json)`);
  if (m.version !== 1) throw new Error(`${source}: backup format version ${m.version} is newer than this codeyard understands; upgrade codeyard first`);
  return m;
}
