import { appendFileSync } from 'node:fs';

// Loader hooks for module-trace.ts; they run on the loader thread, so they write synchronously.
let file: string | undefined;

export function initialize(data: { file: string }): void {
  file = data.file;
}

export async function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => Promise<{ url: string }>,
): Promise<{ url: string }> {
  const resolved = await next(specifier, context);
  if (file) appendFileSync(file, `${resolved.url}\n`);
  return resolved;
}
