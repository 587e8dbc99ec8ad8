import type Database from 'better-sqlite3';

/** Rows written by one statement at most (9 columns x 64 rows: far below SQLite's variable limit). */
export const ROWS_PER_INSERT = 64;

/**
 * Inserts many rows into one table with multi-row `INSERT ... VALUES (...), (...)` statements
 * (prepared once per row count, {@link ROWS_PER_INSERT} rows each at most) rather than one
 * statement run per row: a routing decision writes a row per recipient to two tables, and a
 * statement run costs about as much as the row it inserts. `insert` is the statement up to
 * `VALUES` (e.g. `INSERT INTO t (a, b)`), `tail` what follows the rows (e.g. `ON CONFLICT DO
 * NOTHING`). Returns the number of rows the statements changed, summed.
 */
export function rowsInserter(
  db: Database.Database,
  insert: string,
  columns: number,
  tail = '',
): (rows: readonly (readonly unknown[])[]) => number {
  const statements = new Map<number, Database.Statement>();
  const row = `(${Array<string>(columns).fill('?').join(', ')})`;
  const statement = (n: number): Database.Statement => {
    let s = statements.get(n);
    if (!s)
      statements.set(
        n,
        (s = db.prepare(`${insert} VALUES ${Array<string>(n).fill(row).join(', ')} ${tail}`)),
      );
    return s;
  };
  return (rows) => {
    let changes = 0;
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      const part = rows.slice(i, i + ROWS_PER_INSERT);
      const values: unknown[] = [];
      for (const r of part) {
        if (r.length !== columns)
          throw new RangeError(`a row of ${r.length} values for ${columns} columns`);
        values.push(...r);
      }
      changes += statement(part.length).run(values).changes;
    }
    return changes;
  };
}
