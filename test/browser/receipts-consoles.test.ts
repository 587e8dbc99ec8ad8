import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { seizureReport, startLocalHub, type LocalHub } from '@alert-hub/testkit';
import { launchChromium, screenshot, type Browser } from './chromium.js';

/**
 * What receipts and outcomes add to the consoles, in Chromium against a real hub (nats-server,
 * router, one gateway per agency): each recipient's state of a sent alert, an outcome recorded
 * by an officer and seen by the sender, and the operation report on the coordinator dashboard.
 */
const NG = 'NG-CUSTOMS';
const VN = 'VN-CUSTOMS';
const KE = 'KE-KWS';
const SG = 'SG-NPARKS';
const day = 86_400_000;
/** An officer's note: alert text, which must never appear in a URL or a service log. */
const NOTE = 'Scales in 18 sacks under frozen fish, consignee questioned at Hai Phong';

let hub: LocalHub;
let browser: Browser;

beforeAll(async () => {
  hub = await startLocalHub({
    agencies: [NG, VN, KE, SG].map((id) => ({ id, name: id })),
    agreements: {
      agreements: [
        {
          id: 'NG-VN-SG',
          version: 1,
          title: 'Nigeria, Viet Nam, Singapore',
          parties: ['NG', 'VN', 'SG'],
          alertTypes: ['seizure-report', 'retraction'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
        {
          // Kenya takes green alerts only: an amber one is refused for it (DENY_HANDLING).
          id: 'NG-KE',
          version: 1,
          title: 'Nigeria and Kenya',
          parties: ['NG', 'KE'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:GREEN',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
      operations: [
        {
          id: 'THUNDERBALL',
          version: 1,
          name: 'Operation Thunderball',
          period: {
            from: new Date(Date.now() - day).toISOString(),
            until: new Date(Date.now() + 30 * day).toISOString(),
          },
          members: ['NG', 'VN'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
        },
        {
          id: 'OLD-OP',
          version: 1,
          name: 'An operation that ended',
          period: { from: '2019-01-01T00:00:00Z', until: '2019-02-01T00:00:00Z' },
          members: ['NG', 'VN'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
        },
      ],
    },
    env: process.env,
  });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await hub?.stop();
});

const gw = (agency: string) => hub.gateways[agency]!.url;

/** Sends an alert through `agency`'s gateway API, as the agency's own systems would. */
async function send(agency: string, alert: unknown): Promise<string> {
  const res = await fetch(`${gw(agency)}/v1/alerts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(alert),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function signIn(page: Page, url: string, token: string): Promise<void> {
  const res = await page.goto(url);
  expect(res?.status()).toBe(200);
  // The pages keep the strict policy: scripts and connections to the service only, nothing inline.
  const csp = res?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("connect-src 'self'");
  expect(csp).not.toContain('unsafe-');
  await page.locator('#token').fill(token);
  await page.locator('#token').press('Enter');
  await page.locator('header.top').waitFor();
}

/** The visible text of a locator, whitespace folded. */
async function textOf(page: Page, selector: string): Promise<string> {
  return ((await page.locator(selector).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

/** Every URL each page asked for (pages of several services are open at once). */
const requests = new Map<Page, string[]>();

async function openPage(): Promise<Page> {
  const page = await browser.newPage();
  const list: string[] = [];
  page.on('request', (r) => list.push(r.url()));
  requests.set(page, list);
  return page;
}

/** No request of `page` went anywhere but `origin`, and none carried a token or alert text. */
function expectCleanRequests(page: Page, origin: string): void {
  const urls = requests.get(page) ?? [];
  expect(urls.length).toBeGreaterThan(0);
  expect(urls.filter((u) => new URL(u).origin !== origin)).toEqual([]);
  const leaking = urls.filter(
    (u) =>
      u.includes(hub.token) ||
      u.includes(hub.coordinatorToken) ||
      decodeURIComponent(u).includes(NOTE.slice(0, 20)),
  );
  expect(leaking).toEqual([]);
}

let sentId: string;
let operationAlert: string;

describe('receipts and outcomes in the consoles, in Chromium', () => {
  let ngPage: Page;
  let vnPage: Page;

  beforeAll(async () => {
    ngPage = await openPage();
    vnPage = await openPage();
  });
  afterAll(async () => {
    await ngPage?.close();
    await vnPage?.close();
  });

  it('console - a sent alert shows each recipient: delivered with its receipt time, refused with the code, forwarded and awaiting its receipt', async () => {
    // Singapore's gateway is down: its copy waits in its feed, and no receipt comes back.
    await hub.gateways[SG]!.stop();
    sentId = await send(NG, seizureReport(NG, { id: undefined, issuedAt: undefined }));

    await signIn(ngPage, `${gw(NG)}/console/`, hub.token);
    await ngPage.locator('#nav-sent').press('Enter');
    const row = ngPage.locator(`#sent tr[data-alert-id="${sentId}"]`);
    await row.waitFor({ timeout: 20_000 });
    await row.locator('button').press('Enter');
    await ngPage.locator('#sent-detail').waitFor();
    await expect(ngPage.locator('#sent-detail-title').textContent()).resolves.toContain(sentId);

    // Viet Nam's receipt arrives while the page is open: the row turns delivered without reload.
    const vn = ngPage.locator(`#recipients tr[data-recipient="${VN}"]`);
    await expect
      .poll(async () => (await vn.locator('td').nth(1).textContent()) ?? '', { timeout: 30_000 })
      .toBe('delivered');
    const vnDetail = (await vn.locator('td').nth(2).textContent()) ?? '';
    expect(vnDetail).toContain('receipt committed at');
    expect(vnDetail).toContain('UTC');
    expect(vnDetail).toContain('signed receipt verified by the hub');

    const ke = ngPage.locator(`#recipients tr[data-recipient="${KE}"]`);
    await expect(ke.locator('td').nth(1).textContent()).resolves.toBe('refused');
    await expect(ke.locator('td').nth(2).textContent()).resolves.toContain('DENY_HANDLING');

    const sg = ngPage.locator(`#recipients tr[data-recipient="${SG}"]`);
    await expect(sg.locator('td').nth(1).textContent()).resolves.toBe(
      'forwarded, awaiting receipt',
    );
    await expect(sg.locator('td').nth(2).textContent()).resolves.toContain('forwarded at');

    // What the page shows is what the gateway's API says, recipient by recipient.
    const res = await fetch(`${gw(NG)}/v1/alerts/${sentId}/status`, {
      headers: { authorization: `Bearer ${hub.token}` },
    });
    const api = (await res.json()) as {
      state: string;
      recipients: { recipient: string; state: string; code?: string }[];
    };
    expect(api.state).toBe('routed');
    const shown = await ngPage.evaluate(
      `[...document.querySelectorAll('#recipients tbody tr')].map((r) => [r.cells[0].textContent, r.dataset.state])`,
    );
    expect(shown).toEqual(api.recipients.map((r) => [r.recipient, r.state]));
    expect(api.recipients.find((r) => r.recipient === KE)!.code).toBe('DENY_HANDLING');
    await expect(ngPage.locator('#sent-state').textContent()).resolves.toBe('routed');
    await screenshot(ngPage, 'console-sent-status');

    // The list shows the same alert with its counts.
    await ngPage.locator('#back').press('Enter');
    await expect
      .poll(async () => (await row.locator('td').nth(4).textContent()) ?? '', { timeout: 10_000 })
      .toBe('1 delivered · 1 awaiting receipt · 1 refused');
    expectCleanRequests(ngPage, gw(NG));
  }, 90_000);

  it('console - an officer records a seizure outcome on a received alert with the keyboard; the sender sees it with its details', async () => {
    operationAlert = await send(
      NG,
      seizureReport(NG, { id: undefined, issuedAt: undefined, operation: 'THUNDERBALL' }),
    );

    await signIn(vnPage, `${gw(VN)}/console/`, hub.token);
    const row = vnPage.locator(`#inbox tr[data-alert-id="${operationAlert}"]`);
    await row.waitFor({ timeout: 30_000 });
    await row.locator('button').press('Enter');
    await vnPage.locator('#detail').waitFor();
    await expect
      .poll(() => textOf(vnPage, '#outcomes'), { timeout: 10_000 })
      .toContain('Your agency has reported no outcome on this alert yet.');

    await vnPage.locator('#record-outcome').press('Enter');
    const form = vnPage.locator('#outcome-form');
    await form.waitFor();
    const field = (pointer: string) => form.locator(`[data-pointer="${pointer}"]`);
    // The label the alert came with is proposed; the officer picks what happened.
    await expect(field('/handling').inputValue()).resolves.toBe('TLP:AMBER');
    await field('/result').selectOption('seizure');
    // A seizure needs its details: the schema's rule adds them as required at once.
    await field('/seizure/date').fill(new Date().toISOString().slice(0, 10));
    await field('/seizure/location/country').selectOption('VN');
    await form.locator('[data-add="/seizure/commodities"]').press('Enter');
    await field('/seizure/commodities/0/taxon/scientificName').fill('Manis javanica');
    await field('/seizure/commodities/0/product').selectOption('scales');
    await field('/seizure/commodities/0/quantity/value').fill('450');
    await field('/seizure/commodities/0/quantity/unit').selectOption('kg');
    await field('/arrests').fill('2');
    await field('/note').fill(NOTE);
    await form.locator('#validity.ok-text').waitFor({ timeout: 20_000 });
    await form.locator('#send-submit').press('Enter');
    // The form closes and says where the outcome goes.
    await vnPage.locator('#outcome-recorded').waitFor({ timeout: 20_000 });
    const recorded = await textOf(vnPage, '#outcome-recorded');
    expect(recorded).toContain(`It goes to ${NG}.`);
    const outcomeId = /([0-9a-f-]{36})/.exec(recorded)![1]!;
    expect(await form.count()).toBe(0);

    // Listed under the alert, and delivered to Nigeria: its receipt comes back.
    const reported = vnPage.locator(`#reported li[data-outcome-id="${outcomeId}"]`);
    await reported.waitFor({ timeout: 20_000 });
    await expect(reported.locator('.result').textContent()).resolves.toBe('seizure');
    await vnPage
      .locator(`#delivery-${outcomeId} tr[data-recipient="${NG}"][data-state="delivered"]`)
      .waitFor({ timeout: 30_000 });
    await reported.scrollIntoViewIfNeeded();
    await screenshot(vnPage, 'console-outcome');
    expectCleanRequests(vnPage, gw(VN));

    // Nigeria opens the alert it sent and sees Viet Nam's outcome, every detail readable.
    await ngPage.locator('#nav-sent').press('Enter');
    const sentRow = ngPage.locator(`#sent tr[data-alert-id="${operationAlert}"]`);
    await sentRow.waitFor({ timeout: 20_000 });
    await sentRow.locator('button').press('Enter');
    const outcome = ngPage.locator(`#outcomes li[data-outcome-id="${outcomeId}"]`);
    await outcome.waitFor({ timeout: 30_000 });
    const text = ((await outcome.textContent()) ?? '').replace(/\s+/g, ' ');
    expect(text).toContain('seizure');
    expect(text).toContain(VN);
    expect(text).toContain('Manis javanica');
    expect(text).toContain('450 kg');
    expect(text).toContain(NOTE);
    await expect(outcome.locator('[data-field="arrests"]').textContent()).resolves.toBe('2');
    await expect(outcome.locator('[data-field="country"]').textContent()).resolves.toBe('VN');
    await expect(textOf(ngPage, '#sent-detail')).resolves.toContain('THUNDERBALL');
    // The console records an outcome as version 1, which every origin reads: NG sent the only
    // alert with this id this agency received.
    const signed = (await (
      await fetch(`${gw(NG)}/v1/alerts/${operationAlert}/status`, {
        headers: { authorization: `Bearer ${hub.token}` },
      })
    ).json()) as { outcomes: { id: string; outcome: Record<string, unknown> }[] };
    const asSigned = signed.outcomes.find((o) => o.id === outcomeId)?.outcome;
    expect(asSigned).toMatchObject({ version: 1, answers: operationAlert });
    expect(asSigned).not.toHaveProperty('answersOrigin');
    await outcome.scrollIntoViewIfNeeded();
    await screenshot(ngPage, 'console-sent-outcome');

    // The outcome also arrived in Nigeria's inbox; from it, the alert it answers opens.
    await ngPage.locator('#nav-inbox').press('Enter');
    const inboxRow = ngPage.locator(`#inbox tr[data-alert-id="${outcomeId}"]`);
    await inboxRow.waitFor({ timeout: 20_000 });
    // (the id isolated in its own direction, as every value of the gist: U+2068 ... U+2069)
    await expect(inboxRow.locator('td.summary').textContent()).resolves.toBe(
      `seizure → \u2068${operationAlert}\u2069`,
    );
    await inboxRow.locator('button').press('Enter');
    await ngPage.locator('#open-answered').press('Enter');
    await expect(ngPage.locator('#sent-detail-title').textContent()).resolves.toContain(
      operationAlert,
    );
    expectCleanRequests(ngPage, gw(NG));

    // Neither the officer's note nor a token reached any service's log.
    const logs = join(hub.dir, 'logs');
    for (const name of readdirSync(logs)) {
      const log = readFileSync(join(logs, name), 'utf8');
      expect(log.includes(NOTE), name).toBe(false);
      expect(log.includes(hub.token), name).toBe(false);
    }
  }, 120_000);

  it("dashboard - the operation report shows the router's counts, outcomes and seizures for the operation chosen", async () => {
    const page = await openPage();
    try {
      await signIn(page, `${hub.router.url}/dashboard/`, hub.coordinatorToken);
      // The newest operation is shown first.
      await page.locator('#report-body[data-operation="THUNDERBALL"]').waitFor({ timeout: 20_000 });

      const res = await fetch(`${hub.router.url}/v1/operations/THUNDERBALL/report`, {
        headers: { authorization: `Bearer ${hub.coordinatorToken}` },
      });
      expect(res.status).toBe(200);
      const api = (await res.json()) as {
        countries: string[];
        alertsByType: Record<string, number>;
        deliveries: { forwarded: number; delivered: number; pending: number };
        outcomes: Record<string, number>;
        agencies: {
          agency: string;
          sent: number;
          received: number;
          delivered: number;
          outcomes: number;
        }[];
        seizures: {
          country: string;
          commodity: string;
          unit: string;
          quantity: number;
          reports: number;
        }[];
      };
      // What the test did: one operation alert to Viet Nam, one seizure outcome back.
      expect(api.outcomes).toEqual({ seizure: 1 });
      expect(api.alertsByType).toEqual({ 'seizure-report': 1, outcome: 1 });
      expect(api.agencies).toEqual([
        { agency: NG, sent: 1, received: 0, delivered: 0, outcomes: 0 },
        { agency: VN, sent: 0, received: 1, delivered: 1, outcomes: 1 },
      ]);

      const shown = async () => ({
        countries: await textOf(page, '#report-countries'),
        types: await page.evaluate(
          `[...document.querySelectorAll('#report-types tbody tr')].map((r) => [r.cells[0].textContent, r.cells[1].textContent])`,
        ),
        deliveries: await page.evaluate(
          `[...document.querySelectorAll('#report-deliveries dd')].map((d) => [d.dataset.count, d.textContent])`,
        ),
        outcomes: await page.evaluate(
          `[...document.querySelectorAll('#report-outcomes tbody tr')].map((r) => [r.cells[0].textContent, r.cells[1].textContent])`,
        ),
        agencies: await page.evaluate(
          `[...document.querySelectorAll('#report-agencies tbody tr')].map((r) => [...r.cells].map((c) => c.textContent))`,
        ),
        seizures: await page.evaluate(
          `[...document.querySelectorAll('#report-seizures tbody tr')].map((r) => [...r.cells].map((c) => c.textContent.trim()))`,
        ),
      });
      await expect
        .poll(
          async () => {
            await page.locator('#report-refresh').press('Enter');
            return shown();
          },
          { timeout: 30_000, interval: 1000 },
        )
        .toEqual({
          countries: api.countries.join(', '),
          types: Object.entries(api.alertsByType)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([k, n]) => [k, String(n)]),
          deliveries: [
            ['forwarded', String(api.deliveries.forwarded)],
            ['delivered', String(api.deliveries.delivered)],
            ['pending', String(api.deliveries.pending)],
          ],
          outcomes: [['seizure', '1']],
          agencies: api.agencies.map((a) =>
            [a.agency, a.sent, a.received, a.delivered, a.outcomes].map(String),
          ),
          seizures: api.seizures.map((s) => [
            s.country,
            s.commodity,
            `${s.quantity} ${s.unit}`,
            String(s.reports),
          ]),
        });
      const seizures = await page.evaluate(
        `[...document.querySelectorAll('#report-seizures tbody tr')].map((r) => r.textContent)`,
      );
      expect(seizures).toContainEqual(expect.stringContaining('Manis javanica (scales)'));
      expect(seizures).toContainEqual(expect.stringContaining('450 kg'));
      await page.locator('#report').scrollIntoViewIfNeeded();
      await screenshot(page, 'dashboard-report');

      // The trace of the first alert names Kenya in its refusal (a summary of near-misses).
      await page.locator('#trace-id').fill(sentId);
      await page.locator('#trace-id').press('Enter');
      const denied = page.locator('#trace-records tr[data-event="denied"]');
      await denied.first().waitFor();
      await expect(denied.allTextContents()).resolves.toContainEqual(
        expect.stringMatching(new RegExp(`${KE}.*DENY_HANDLING`)),
      );

      // Another operation, chosen with the keyboard: nothing happened in it.
      await page.locator('#operation').focus();
      await page.locator('#operation').selectOption('OLD-OP');
      await page.locator('#report-body[data-operation="OLD-OP"]').waitFor();
      await expect(textOf(page, '#report-body')).resolves.toContain('No outcome reported yet.');

      // In French, from the same catalogue.
      await page.locator('#operation').selectOption('THUNDERBALL');
      await page.locator('#report-body[data-operation="THUNDERBALL"]').waitFor();
      await page.locator('#lang').selectOption('fr');
      await expect(textOf(page, '#report-title')).resolves.toBe("Rapport d'opération");
      await expect(textOf(page, '#report-outcomes tbody tr')).resolves.toContain('saisie');
      await page.locator('#lang').selectOption('en');
      expectCleanRequests(page, hub.router.url);
    } finally {
      await page.close();
    }
  }, 90_000);
});
