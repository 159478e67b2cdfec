import { dirname } from 'node:path';
import type { Db } from './db.ts';
import { storeFault } from './storage-errors.ts';

/** What the store does about faults; the gateway fills these in (tests may too). */
export interface StoreHooks {
  /**
   * A write found the disk full: make room if there is any to give (the gateway's
   * reserve file) and say whether trying the write again could work now.
   */
  onDiskFull?: (err: unknown) => boolean;
  /** A write nobody waits for (Store.bestEffort), or a timer's work, failed: report it. */
  onFault?: (what: string, err: unknown) => void;
}

/**
 * Every write through `db` that fails for a full disk asks `hooks.onDiskFull` for room
 * and, given some, is tried once more: a statement on its own, or a transaction whole
 * (a statement inside one is not retried alone; the transaction is, after its rollback).
 * SQLite leaves the database as it was before a failed write, so nothing else changes.
 */
export function guardWrites(db: Db, hooks: StoreHooks): void {
  const dir = db.memory ? undefined : dirname(db.name);
  const retried = <A extends unknown[], R>(op: (...args: A) => R) => (...args: A): R => {
    // Asked before: SQLite may roll a whole transaction back on SQLITE_FULL, so after the failure
    // inTransaction no longer tells whether this statement was part of one.
    const inTransaction = db.inTransaction;
    try {
      return op(...args);
    } catch (err) {
      if (inTransaction || db.inTransaction || storeFault(err, dir) !== 'disk_full' || !hooks.onDiskFull?.(err)) throw err;
      return op(...args);
    }
  };
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    const stmt = prepare(source);
    if (!stmt.readonly) {
      stmt.run = retried(stmt.run.bind(stmt));
      // INSERT … RETURNING and the like write, and answer through get/all.
      if (stmt.reader) {
        stmt.get = retried(stmt.get.bind(stmt)) as typeof stmt.get;
        stmt.all = retried(stmt.all.bind(stmt)) as typeof stmt.all;
      }
    }
    return stmt;
  }) as Db['prepare'];
  const exec = db.exec.bind(db);
  db.exec = retried(exec);
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn: (...args: unknown[]) => unknown) => {
    const tx = transaction(fn);
    const wrapped = retried(tx);
    Object.defineProperties(wrapped, {
      default: { value: wrapped }, deferred: { value: retried(tx.deferred) }, immediate: { value: retried(tx.immediate) },
      exclusive: { value: retried(tx.exclusive) }, database: { value: db, enumerable: true },
    });
    return wrapped;
  }) as Db['transaction'];
}
