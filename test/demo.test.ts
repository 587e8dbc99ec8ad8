import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '@alert-hub/testkit';
import { launchChromium, screenshot } from './browser/chromium.js';

const dir = mkdtempSync(join(tmpdir(), 'ahub-demo-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runDemo(args: string[]) {
  const proc = spawn(process.execPath, [join(ROOT, 'demo/dist/main.js'), ...args], {
    cwd: ROOT,
    env: process.env,
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, exited, output: () => out, errors: () => err };
}

interface DemoAlert {
  type: string;
  version: number;
  seizure?: {
    commodities: { quantities?: unknown[] }[];
    shipment?: { containers: { seals?: string[] }[] };
  };
}

interface Outcome {
  step: number;
  forwarded: { recipient: string; agreement: string }[];
  denied: { recipient: string; reason: string }[];
  rejected?: { code: string };
  refusedByNats?: string;
  delivered?: string[];
  refusalNotice?: { agency: string; code: string };
}

describe('demo - npm run demo, non-interactively', () => {
  it('plays the scenario and every step ends as the agreements say', async () => {
    const summary = join(dir, 'summary.json');
    const run = runDemo(['--summary', summary]);
    expect(await run.exited, run.errors()).toBe(0);
    const out = run.output();
    expect(out).toContain('Routing table');
    // Verified against the router's latest checkpoint as cosigned by the agencies' gateways.
    expect(out).toMatch(
      /Audit log: verified, \d+ entries, \d+ witnessed by [2-7] agencies, 0 not yet witnessed/,
    );
    expect(out).toContain('stopped; temporary files removed');
    // The coordinator's trace names the agencies no agreement pairs with the sender, as
    // `hubctl audit trace` does; a step's line says what "not a party" means for that agency.
    expect(out).toMatch(/^ {2}# *\d+ .* refused to KE-KWS, US-FWS: DENY_NOT_PARTY /m);
    expect(out).toContain(
      'refused to HK-CED: DENY_NOT_PARTY, not party to any agreement (or operation) with NG-NCS',
    );
    expect(out).not.toMatch(/^ {3}refused to .*other agencies/m);
    const s = JSON.parse(readFileSync(summary, 'utf8')) as {
      outcomes: Outcome[];
      audit: { ok: boolean };
    };
    const step = (n: number) => s.outcomes.filter((o) => o.step === n);
    const to = (o: Outcome) => o.forwarded.map((f) => `${f.recipient} ${f.agreement}`).sort();
    expect(to(step(1)[0]!)).toEqual(['SG-NPARKS NG-SG-MOU@1', 'VN-CUSTOMS AFRICA-ASIA-ROUTES@1']);
    expect(step(1)[0]!.denied.find((d) => d.recipient === 'KE-KWS')?.reason).toBe('DENY_CONDITION');
    expect(to(step(2)[0]!)).toEqual([
      'CN-GACC WEN-ASIA@1',
      'HK-CED WEN-ASIA@1',
      'NG-NCS NG-SG-MOU@1',
      'VN-CUSTOMS WEN-ASIA@1',
    ]);
    expect(to(step(4)[0]!)).toContain('US-FWS HK-US-CONSIGNEES@2');
    expect(step(5)[0]!.forwarded).toEqual([]);
    expect(step(6)[0]!.refusedByNats).toMatch(/Permissions Violation/);
    expect(step(6)[1]!.rejected?.code).toBe('ERR_KEY_UNKNOWN');
    expect(to(step(7)[0]!)).toEqual(['SG-NPARKS NG-SG-MOU@1', 'VN-CUSTOMS AFRICA-ASIA-ROUTES@1']);
    expect(out).toContain("in VN-CUSTOMS's feed the original is now: withdrawn");
    // Each sender sees its alerts delivered, with the partners' receipts verified by the hub.
    for (const o of s.outcomes.filter((x) => x.forwarded.length > 0))
      expect(o.delivered, `step ${o.step}`).toEqual(o.forwarded.map((f) => f.recipient).sort());
    // The forgery's refusal notice goes to the agency whose connection published it.
    expect(step(6)[1]!.refusalNotice).toEqual({ agency: 'SG-NPARKS', code: 'ERR_KEY_UNKNOWN' });
    // Operation Thunderball: to the members only; Viet Nam's outcome goes back to Nigeria.
    expect(to(step(8)[0]!)).toEqual(
      ['CN-GACC', 'HK-CED', 'KE-KWS', 'SG-NPARKS', 'VN-CUSTOMS'].map(
        (a) => `${a} THUNDERBALL-DEMO@1`,
      ),
    );
    expect(step(9)[0]!.forwarded.map((f) => f.recipient)).toEqual(['NG-NCS']);
    expect(out).toMatch(/Nigeria's status of \S+ shows: outcome from VN-CUSTOMS: seizure/);
    // The demo ends with the operation report.
    expect(out).toContain('Operation report');
    expect(out).toContain('countries taking part: CN, HK, KE, NG, SG, VN');
    expect(out).toMatch(/seized: VN {2}Manis javanica \(scales\) {2}450 kg/);
    expect(s.audit.ok).toBe(true);
  }, 180_000);

  it('without nats-server it says how to install it, before generating anything', async () => {
    const proc = spawn(process.execPath, [join(ROOT, 'demo/dist/main.js')], {
      cwd: ROOT,
      env: { ...process.env, NATS_SERVER_BIN: '/nonexistent/nats-server' },
    });
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    expect(await new Promise((r) => proc.on('exit', r))).toBe(1);
    expect(err).toContain('sudo apt-get install nats-server');
  });

  it('--keep leaves the hub running with its URLs printed; Ctrl-C stops every process', async () => {
    const run = runDemo(['--keep']);
    // "  logs: <dir>" is the last line --keep prints; the URLs come before it (and may arrive in
    // a later chunk than the "Ctrl-C" line, which is why waiting for that one was a race).
    // A shared 2-core machine can take well over a minute to start nine processes.
    for (let i = 0; i < 1200 && !/^ {2}logs: .*\n/m.test(run.output()); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(run.output()).toContain('Ctrl-C stops every process');
    const url = /^ {2}VN-CUSTOMS {2}(http:\/\/\S+)$/m.exec(run.output())?.[1];
    const token = /gateway token \(submit and read-feed on every gateway\): (\S+)/.exec(
      run.output(),
    )?.[1];
    expect(url).toBeDefined();
    const feed = await fetch(`${url}/v1/feed`, { headers: { authorization: `Bearer ${token}` } });
    const items = ((await feed.json()) as { items: { alert: DemoAlert }[] }).items;
    expect(items.length).toBeGreaterThan(0);
    // The Singapore seizure is a v2 report: count and weight of the ivory, container and seal.
    const seizure = items.find((i) => i.alert.type === 'seizure-report' && i.alert.version === 2);
    expect(seizure?.alert.seizure?.commodities[1]?.quantities).toEqual([
      { value: 30, unit: 'piece' },
      { value: 177, unit: 'kg' },
    ]);
    expect(seizure?.alert.seizure?.shipment?.containers[0]?.seals).toEqual(['NG-CS-0412775']);
    // The operation report it suggests works as printed, from the repository.
    const suggested = /^ {2}(AHUB_COORDINATOR_TOKEN=\S+ npx hubctl operation report .*)$/m.exec(
      run.output(),
    )?.[1];
    expect(suggested).toBeDefined();
    const report = spawnSync('bash', ['-c', suggested!], { cwd: ROOT, encoding: 'utf8' });
    expect(report.status, report.stderr).toBe(0);
    expect(report.stdout).toMatch(/^Operation THUNDERBALL-DEMO: /);

    // The consoles the README points at show the scenario's alerts and flows.
    const consoleUrl = /^ {2}VN-CUSTOMS {2}console {2}(http:\/\/\S+)$/m.exec(run.output())?.[1];
    const dashboardUrl = /^ {2}coordinator dashboard {2}(http:\/\/\S+)$/m.exec(run.output())?.[1];
    const coordinator = /coordinator token: (\S+)/.exec(run.output())?.[1];
    expect(consoleUrl).toBe(`${url}/console/`);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      for (const [at, secret] of [
        [consoleUrl!, token!],
        [dashboardUrl!, coordinator!],
      ] as const) {
        await page.goto(at);
        await page.locator('#token').fill(secret);
        await page.locator('#token').press('Enter');
        await page.locator('header.top').waitFor();
      }
      await page.goto(consoleUrl!);
      await page.locator('#inbox tr[data-alert-id]').first().waitFor({ timeout: 20_000 });
      await screenshot(page, 'demo-console');
      await page.goto(dashboardUrl!);
      await page.locator('#flow-matrix td[data-from]').first().waitFor({ timeout: 20_000 });
      await page.locator('#refusals tr[data-reason]').first().waitFor({ timeout: 20_000 });
      await page.locator('#tail tr').first().waitFor({ timeout: 20_000 });
      // The demo's operation, with the scenario's alerts in it.
      await page
        .locator('#report-body[data-operation="THUNDERBALL-DEMO"] #report-types tr[data-key]')
        .first()
        .waitFor({ timeout: 20_000 });
      await screenshot(page, 'demo-dashboard');
      const origins = new Set([new URL(consoleUrl!).origin, new URL(dashboardUrl!).origin]);
      expect(browser.requests.filter((u) => !origins.has(new URL(u).origin))).toEqual([]);
    } finally {
      await browser.close();
    }
    run.proc.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('stopped; temporary files removed');
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }, 240_000);
});

describe('demo - npm run demo -- --federated', () => {
  it("shows the cut agency's alerts queued at the agency, then delivered: lost 0, duplicated 0 from the partners' inboxes", async () => {
    const run = runDemo(['--federated']);
    expect(await run.exited, run.errors()).toBe(0);
    const out = run.output();
    expect(out).toContain('a 3-node NATS cluster');
    expect(out).toMatch(/NG-NCS officer files flag 5: HTTP 202/);
    expect(out).toMatch(
      /queued on NG-NCS's leaf node: 5 alert\(s\) not yet at the hub; the hub's inbound stream gained 0/,
    );
    expect(out).toMatch(/SG-NPARKS\s+10 of 10 received, 0 lost, 0 duplicated/);
    expect(out).toMatch(/VN-CUSTOMS\s+10 of 10 received, 0 lost, 0 duplicated/);
    expect(out).toContain('lost 0, duplicated 0');
  }, 300_000);
});
