import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  ALLOWED_ALGORITHMS,
  PRINCIPAL_FORM,
  type JwksDocument,
  type Revocation,
  type SigningAlgorithm,
} from '@alert-hub/core';
import { generateKey, keyPaths, revokeKey, rotateKey } from '@alert-hub/operator';
import { REVOCATIONS_FILE } from '@alert-hub/runtime/files';
import { reading, readingThenWriting } from '../files.js';
import { print, printTable } from '../output.js';

function principalArg(value: string): string {
  if (!PRINCIPAL_FORM.test(value))
    throw new InvalidArgumentError(
      `"${value}" is not an agency id like SG-NPARKS (country, hyphen, agency code)`,
    );
  return value;
}

export function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description('generate, rotate, revoke and list signing keys (trust store under --certs)');
  const certs = () =>
    new Option('--certs <dir>', 'certs directory (trust/ and private/ inside)').default('certs');

  keys
    .command('generate')
    .description(
      'create a signing key: private JWK (mode 0600) under private/, public key added to trust/<agency>.jwks.json',
    )
    .requiredOption(
      '--agency <id>',
      'agency id, e.g. SG-NPARKS (or the router name with --role router)',
      principalArg,
    )
    .addOption(
      new Option('--role <role>', 'who the key signs for')
        .choices(['agency', 'router'])
        .default('agency'),
    )
    .option('--name <name>', 'display name of the agency')
    .addOption(
      new Option('--alg <alg>', 'signature algorithm')
        .choices([...ALLOWED_ALGORITHMS])
        .default('EdDSA'),
    )
    .option('--valid-days <n>', 'validity of the key in days', (v) => Number.parseInt(v, 10), 730)
    .addOption(certs())
    .option('--json', 'print JSON')
    .action(
      (o: {
        agency: string;
        role: 'agency' | 'router';
        name?: string;
        alg: SigningAlgorithm;
        validDays: number;
        certs: string;
        json?: boolean;
      }) => {
        const r = readingThenWriting(
          () =>
            generateKey({
              certsDir: o.certs,
              principal: o.agency,
              role: o.role,
              alg: o.alg,
              validDays: o.validDays,
              ...(o.name ? { name: o.name } : {}),
            }),
          o.certs,
        );
        print(o.json, { kid: r.kid, privateFile: r.privateFile, jwksFile: r.jwksFile }, [
          `generated ${o.alg} key ${r.kid} for ${o.agency}`,
          `  private key (keep secret, never commit): ${r.privateFile}`,
          `  public key set (share with partners):    ${r.jwksFile}`,
        ]);
      },
    );

  keys
    .command('rotate')
    .description('create a new key and end the validity of the old ones after an overlap')
    .requiredOption('--agency <id>', 'agency id', principalArg)
    .option(
      '--overlap-days <n>',
      'days the old keys stay valid for alerts signed before the switch',
      (v) => Number.parseInt(v, 10),
      7,
    )
    .addOption(
      new Option('--alg <alg>', 'signature algorithm of the new key').choices([
        ...ALLOWED_ALGORITHMS,
      ]),
    )
    .option(
      '--valid-days <n>',
      'validity of the new key in days',
      (v) => Number.parseInt(v, 10),
      730,
    )
    .addOption(certs())
    .option('--json', 'print JSON')
    .action(
      (o: {
        agency: string;
        overlapDays: number;
        alg?: SigningAlgorithm;
        validDays: number;
        certs: string;
        json?: boolean;
      }) => {
        const r = readingThenWriting(
          () =>
            rotateKey({
              certsDir: o.certs,
              principal: o.agency,
              overlapDays: o.overlapDays,
              validDays: o.validDays,
              ...(o.alg ? { alg: o.alg } : {}),
            }),
          o.certs,
        );
        print(o.json, r, [
          `new key ${r.kid} for ${o.agency}: ${r.privateFile}`,
          ...r.retired.map((k) => `  old key ${k.kid} now valid until ${k.notAfter}`),
          'publish the updated trust/ files to the hub and partners; gateways pick the new key at their next start or SIGHUP',
        ]);
      },
    );

  keys
    .command('revoke')
    .description('revoke a key: nothing it signed verifies any more')
    .requiredOption('--kid <kid>', 'the key id (RFC 7638 thumbprint)')
    .addOption(
      new Option('--reason <reason>', 'why')
        .choices(['keyCompromise', 'superseded', 'cessationOfOperation', 'unspecified'])
        .default('keyCompromise'),
    )
    .addOption(certs())
    .option('--json', 'print JSON')
    .action((o: { kid: string; reason: Revocation['reason']; certs: string; json?: boolean }) => {
      const r = readingThenWriting(
        () => revokeKey({ certsDir: o.certs, kid: o.kid, reason: o.reason }),
        o.certs,
      );
      print(o.json, r, [`revoked ${r.kid} of ${r.principal} at ${r.revokedAt} (${r.reason})`]);
    });

  keys
    .command('list')
    .description('list the keys in the trust store with their validity and status')
    .option('--agency <id>', 'only this agency', principalArg)
    .addOption(certs())
    .option('--json', 'print JSON')
    .action((o: { agency?: string; certs: string; json?: boolean }) => {
      const { trustDir, privateDir } = keyPaths(o.certs);
      const revFile = join(trustDir, REVOCATIONS_FILE);
      const revoked = new Set(
        existsSync(revFile)
          ? reading(
              () => JSON.parse(readFileSync(revFile, 'utf8')) as { revoked: Revocation[] },
              revFile,
            ).revoked.map((r) => r.kid)
          : [],
      );
      const now = new Date().toISOString();
      const docs = reading(() => (existsSync(trustDir) ? readdirSync(trustDir) : []), trustDir)
        .filter((f) => f.endsWith('.jwks.json'))
        .map((f) => join(trustDir, f))
        .map((f) => reading(() => JSON.parse(readFileSync(f, 'utf8')) as JwksDocument, f));
      const rows = docs
        .filter((d) => !o.agency || d.principal === o.agency)
        .flatMap((d) =>
          d.keys.map((k) => ({
            principal: d.principal,
            role: d.role,
            kid: k.kid,
            alg: k.alg,
            notBefore: k.notBefore ?? '',
            notAfter: k.notAfter ?? '',
            status: revoked.has(k.kid)
              ? 'revoked'
              : k.notAfter && k.notAfter < now
                ? 'expired'
                : k.notBefore && k.notBefore > now
                  ? 'not yet valid'
                  : 'valid',
            privateKeyHere: existsSync(join(privateDir, d.principal, `${k.kid}.jwk`)),
          })),
        );
      if (o.json) print(true, rows, []);
      else
        printTable(rows, [
          'principal',
          'role',
          'kid',
          'alg',
          'notBefore',
          'notAfter',
          'status',
          'privateKeyHere',
        ]);
    });
}
