import 'reflect-metadata';
import { X509Certificate, randomBytes, webcrypto } from 'node:crypto';
import type { webcrypto as WebCrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { OPS_IDENTITY, natsIdentity } from './nats-config.js';
import { ROUTE_IDENTITY } from './nats-cluster.js';

type CryptoKey = WebCrypto.CryptoKey;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 3600_000;

/** File names of the development PKI under `certs/dev/`. */
export function devPkiPaths(dir: string, name?: string) {
  return {
    caFile: join(dir, 'ca.pem'),
    caKeyFile: join(dir, 'ca-key.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server-key.pem'),
    /** The cluster's route certificate: server and client use, for mutual TLS between nodes. */
    routeCertFile: join(dir, 'route.pem'),
    routeKeyFile: join(dir, 'route-key.pem'),
    certFile: name ? join(dir, `${name}.pem`) : '',
    keyFile: name ? join(dir, `${name}-key.pem`) : '',
  };
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}

async function writeKey(file: string, key: CryptoKey): Promise<void> {
  writeFileSync(file, pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key)), {
    mode: 0o600,
  });
  chmodSync(file, 0o600);
}

async function importKey(file: string): Promise<CryptoKey> {
  const der = Buffer.from(readFileSync(file, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
}

const serial = () =>
  randomBytes(16)
    .toString('hex')
    .replace(/^[89a-f]/, '1');

/**
 * Creates (or completes) a development PKI: a CA, a server certificate for `hosts`, and one
 * client certificate per principal whose SAN e-mail is the identity `verify_and_map` maps to a
 * NATS user (plus one for operators). Existing files are kept unless `force`. Development only:
 * an agency in production brings a certificate from its own PKI (see docs/security.md).
 */
export async function createDevPki(options: {
  dir: string;
  principals: readonly string[];
  hosts?: readonly string[];
  days?: number;
  force?: boolean;
}): Promise<{ created: string[]; dir: string }> {
  const { dir } = options;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = devPkiPaths(dir);
  const created: string[] = [];
  const now = new Date(Date.now() - 60_000);
  const until = new Date(now.getTime() + (options.days ?? 365) * DAY_MS);

  let caCert: x509.X509Certificate;
  let caKey: CryptoKey;
  if (!options.force && existsSync(p.caFile) && existsSync(p.caKeyFile)) {
    caCert = new x509.X509Certificate(readFileSync(p.caFile, 'utf8'));
    caKey = await importKey(p.caKeyFile);
  } else {
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'CN=alert-hub development CA, O=alert-hub (development only)',
      notBefore: now,
      notAfter: new Date(now.getTime() + (options.days ?? 365) * 2 * DAY_MS),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    writeFileSync(p.caFile, caCert.toString('pem'));
    await writeKey(p.caKeyFile, keys.privateKey);
    caKey = keys.privateKey;
    created.push(p.caFile, p.caKeyFile);
  }

  const issue = async (
    name: string,
    subject: string,
    san: x509.JsonGeneralName[],
    usage: string | string[],
  ) => {
    const f = devPkiPaths(dir, name);
    const certFile = name === 'server' ? p.serverCertFile : f.certFile;
    const keyFile = name === 'server' ? p.serverKeyFile : f.keyFile;
    if (
      !options.force &&
      existsSync(certFile) &&
      existsSync(keyFile) &&
      new X509Certificate(readFileSync(certFile)).checkIssued(
        new X509Certificate(caCert.toString('pem')),
      )
    )
      return;
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject,
      issuer: caCert.subject,
      notBefore: now,
      notAfter: until,
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(Array.isArray(usage) ? usage : [usage]),
        new x509.SubjectAlternativeNameExtension(san),
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ],
    });
    writeFileSync(certFile, cert.toString('pem'));
    await writeKey(keyFile, keys.privateKey);
    created.push(certFile, keyFile);
  };

  const hosts = ['localhost', '127.0.0.1', '::1', ...(options.hosts ?? [])];
  const hostNames = hosts.map((h): x509.JsonGeneralName =>
    isIP(h) ? { type: 'ip', value: h } : { type: 'dns', value: h },
  );
  await issue(
    'server',
    'CN=alert-hub NATS server, O=alert-hub (development only)',
    hostNames,
    x509.ExtendedKeyUsage.serverAuth,
  );
  // Each node of a cluster dials the others with this certificate and accepts them with it:
  // `verify_and_map` on the route listener admits only its SAN e-mail, so no agency's client
  // certificate (signed by the same CA) can join the cluster.
  await issue(
    'route',
    'CN=alert-hub NATS cluster route, O=alert-hub (development only)',
    [{ type: 'email', value: ROUTE_IDENTITY }, ...hostNames],
    [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  );
  for (const principal of options.principals) {
    await issue(
      principal,
      `CN=${principal}, O=alert-hub (development only)`,
      [{ type: 'email', value: natsIdentity(principal) }],
      x509.ExtendedKeyUsage.clientAuth,
    );
  }
  await issue(
    'ops',
    'CN=operators, O=alert-hub (development only)',
    [{ type: 'email', value: OPS_IDENTITY }],
    x509.ExtendedKeyUsage.clientAuth,
  );
  return { created, dir };
}
