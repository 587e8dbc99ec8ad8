import type { SqliteDatabase } from '@alert-hub/runtime';

/**
 * Tables of the router's state whose primary key changed after an earlier release, with the key
 * they have now. A statement is signed by one agency and names its own ids: a receipt id is
 * unique per agency (one agency cannot take another's receipt id), an outcome id per reporter.
 */
const REKEYED: readonly { readonly table: string; readonly key: readonly string[] }[] = [
  { table: 'receipts', key: ['agency', 'receipt_id'] },
  { table: 'outcomes', key: ['reporter', 'alert_id'] },
  // An inbound sequence is its stream's: each agency's stream numbers from 1 (store.ts).
  { table: 'decisions', key: ['stream', 'stream_seq'] },
];

/**
 * Rebuilds, inside the caller's transaction, each table of {@link REKEYED} that an earlier
 * release made with another primary key (a receipt or an outcome keyed by its id alone): the old
 * table is renamed, `schema` (the store's `CREATE TABLE IF NOT EXISTS` statements) creates it
 * again as it is defined now, every row is copied over (a row whose new key repeats an earlier
 * one's cannot exist: the old key was narrower) and the old table dropped. A table that already
 * has its current key is left alone.
 */
export function rekeyTables(db: SqliteDatabase, schema: string): void {
  const columns = (table: string) =>
    db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; pk: number }[];
  for (const t of REKEYED) {
    const old = columns(t.table);
    if (old.length === 0) continue;
    const key = old
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    if (key.join(',') === t.key.join(',')) continue;
    const previous = `${t.table}_before_rekey`;
    db.exec(`ALTER TABLE ${t.table} RENAME TO ${previous}`);
    db.exec(schema);
    const now = columns(t.table).map((c) => c.name);
    const kept = old
      .map((c) => c.name)
      .filter((c) => now.includes(c))
      .join(', ');
    db.exec(`INSERT INTO ${t.table} (${kept}) SELECT ${kept} FROM ${previous};
      DROP TABLE ${previous};`);
  }
}
