/** Prints `value` as JSON when `json`, else the human lines. */
export function print(json: boolean | undefined, value: unknown, lines: readonly string[]): void {
  process.stdout.write(
    json ? `${JSON.stringify(value, null, 2)}\n` : lines.map((l) => `${l}\n`).join(''),
  );
}

/** A plain aligned table; empty input prints "(none)". */
export function printTable<T extends object>(
  rows: readonly T[],
  columns: readonly (keyof T & string)[],
): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cell = (r: T, c: keyof T & string) => String(r[c] ?? '');
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r, c).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  process.stdout.write(
    `${line([...columns])}\n${rows.map((r) => line(columns.map((c) => cell(r, c)))).join('\n')}\n`,
  );
}
