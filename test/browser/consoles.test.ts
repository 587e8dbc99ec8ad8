import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { seizureReport, startLocalHub, type LocalHub } from '@alert-hub/testkit';
import { asSubmission, sampleConsigneeFlag, sampleRetraction } from '@alert-hub/testkit/samples';
import { launchChromium, screenshot, type Browser } from './chromium.js';

// One hub and one Chromium for the whole file: the machine is shared, the tests are few.
const SG = 'SG-NPARKS';
const VN = 'VN-CUSTOMS';
const KE = 'KE-KWS';
const AGREEMENTS = {
  agreements: [
    {
      id: 'SG-VN',
      version: 1,
      title: 'Singapore and Viet Nam',
      parties: [SG, VN],
      alertTypes: ['suspicious-shipment', 'consignee-flag', 'seizure-report', 'retraction'],
      maxHandling: 'TLP:AMBER',
      validFrom: '2019-01-01T00:00:00Z',
    },
  ],
};
/** A description an attacker would like a browser to run. */
const HOSTILE =
  'Scales under frozen fish <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2">';

let hub: LocalHub;
let browser: Browser;

beforeAll(async () => {
  hub = await startLocalHub({
    agencies: [
      { id: SG, name: 'National Parks Board, Singapore' },
      { id: VN, name: 'Viet Nam Customs' },
      { id: KE, name: 'Kenya Wildlife Service' },
    ],
    agreements: AGREEMENTS,
    env: process.env,
  });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await hub?.stop();
});

/** Sends an alert through `agency`'s gateway API, as the agency's own systems would. */
async function send(agency: string, alert: unknown): Promise<{ id: string }> {
  const res = await fetch(`${hub.gateways[agency]!.url}/v1/alerts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(alert),
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { id: string };
}

async function signIn(page: Page, url: string, token: string): Promise<void> {
  const res = await page.goto(url);
  expect(res?.status()).toBe(200);
  await page.locator('#token').fill(token);
  await page.locator('#token').press('Enter');
  await page.locator('header.top').waitFor();
}

/** The direction the browser lays an element's text out in (`ltr` or `rtl`). */
function directionOf(l: Locator): Promise<string> {
  // The page's own getComputedStyle (this file is compiled without the DOM's types).
  type View = { getComputedStyle(e: unknown): { direction: string } };
  return l.evaluate((e) => (globalThis as unknown as View).getComputedStyle(e).direction);
}

/** No request of the page went anywhere but the service that served it. */
function expectOnlyOrigin(origin: string): void {
  const elsewhere = browser.requests.filter((u) => new URL(u).origin !== origin);
  expect(elsewhere).toEqual([]);
}

describe('agency console in Chromium', () => {
  let page: Page;
  const vnUrl = () => hub.gateways[VN]!.url;

  beforeAll(async () => {
    page = await browser.newPage();
  });
  afterAll(async () => {
    await page?.close();
  });

  it('console - serves a strict CSP and signs in with an HttpOnly, SameSite=Strict cookie only', async () => {
    browser.requests.length = 0;
    const res = await page.goto(`${vnUrl()}/console/`);
    const csp = res?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    await screenshot(page, 'console-sign-in');

    // A wrong token is refused at the form.
    await page.locator('#token').fill('not-the-token');
    await page.locator('#token').press('Enter');
    await page.locator('#signin [role=alert]').waitFor();

    await signIn(page, `${vnUrl()}/console/`, hub.token);
    const cookies = await browser.context.cookies(vnUrl());
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(cookies[0]!.value).not.toContain(hub.token);
    expect(await page.evaluate('document.cookie')).toBe('');
    expect(await page.evaluate('localStorage.length + sessionStorage.length')).toBe(0);
    expect(browser.requests.some((u) => u.includes(hub.token))).toBe(false);
    expectOnlyOrigin(vnUrl());
  });

  it('console - an alert another agency sends appears live; hostile text stays text; the detail shows verified badges', async () => {
    browser.requests.length = 0;
    await page.locator('#live.ok').waitFor();
    const { id } = await send(
      SG,
      seizureReport(SG, {
        id: undefined,
        origin: undefined,
        issuedAt: undefined,
        summary: HOSTILE,
      }),
    );
    const row = page.locator(`tr[data-alert-id="${id}"]`);
    await row.waitFor({ timeout: 20_000 });
    await expect(row.locator('td.summary').textContent()).resolves.toContain('<script>');
    await expect(row.locator('.tlp').textContent()).resolves.toBe('TLP:AMBER');
    await expect(row.locator('.badge.ok').count()).resolves.toBe(2);
    await screenshot(page, 'console-inbox');

    await row.locator('button').press('Enter');
    await page.locator('#detail').waitFor();
    await page.locator('#badges .badge.ok').nth(1).waitFor();
    const badges = await page.locator('#badges').textContent();
    expect(badges).toContain(` · ${SG} · `); // the origin, whose signature was verified
    expect(badges).toContain(' · HUB · '); // the router principal that countersigned
    // The description is shown, as text: no script ran, no element was made from it.
    await expect(page.locator('[data-field="summary"]').textContent()).resolves.toBe(HOSTILE);
    expect(await page.locator('#detail img').count()).toBe(0);
    expect(await page.locator('#detail script').count()).toBe(0);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    // Every part of the alert is there, readable.
    for (const field of ['containers', 'route', 'commodities', 'quantity', 'scientificName'])
      expect(await page.locator(`#detail [data-field="${field}"]`).count()).toBeGreaterThan(0);
    await expect(page.locator('[data-field="containers"]').textContent()).resolves.toBe(
      'CSQU3054383',
    );
    await screenshot(page, 'console-detail');
    await page.locator('#back').click();

    // Right-to-left text reads right to left, in the inbox and the detail, and a long summary is
    // cut between characters as a reader sees them, never inside one (an emoji is two UTF-16
    // units; a flag is two code points, cut here between them by a cut of 90 code points).
    const arabic = 'شحنة قشور البنغول مخبأة تحت السمك المجمد';
    const rtl = await send(
      SG,
      seizureReport(SG, {
        id: undefined,
        origin: undefined,
        issuedAt: undefined,
        summary: `${arabic} ${'🦔'.repeat(10)}${'🇸🇬'.repeat(60)}`,
      }),
    );
    const rtlRow = page.locator(`tr[data-alert-id="${rtl.id}"]`);
    await rtlRow.waitFor({ timeout: 20_000 });
    const cell = rtlRow.locator('td.summary');
    await expect(directionOf(cell)).resolves.toBe('rtl');
    const shown = (await cell.textContent())!.trim();
    expect(shown.endsWith('…')).toBe(true);
    const graphemes = [
      ...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(shown),
    ];
    expect(graphemes).toHaveLength(91);
    expect(shown).not.toMatch(/\p{Cs}/u);
    // Whole flags only: no regional indicator left without its pair before the ellipsis.
    expect(shown).toMatch(/^[^\u{1F1E6}-\u{1F1FF}]*(?:\u{1F1F8}\u{1F1EC})+…$/u);
    await rtlRow.locator('button').press('Enter');
    await page.locator('[data-field="summary"] span').waitFor();
    await expect(directionOf(page.locator('[data-field="summary"] span'))).resolves.toBe('rtl');
    // The field's name beside it is still read left to right.
    await expect(directionOf(page.locator('#detail dt').first())).resolves.toBe('ltr');
    await page.locator('#back').click();
    // A retraction's reason, another agency's text too, in its own direction in the detail.
    const hebrew = 'הוחלף בדוח התפיסה';
    await send(SG, asSubmission(sampleRetraction(SG, rtl.id, { reason: hebrew })));
    await rtlRow.locator('.status-withdrawn').waitFor({ timeout: 20_000 });
    await rtlRow.locator('button').press('Enter');
    const reason = page.locator('#detail dd', { hasText: hebrew });
    await reason.waitFor();
    await expect(directionOf(reason)).resolves.toBe('rtl');
    await page.locator('#back').click();

    // An alert without a summary shows its gist, several values in one cell: a right-to-left
    // override in one (the consignee's name) reverses that value only, never the country and the
    // reason after it, which stay to its right in a left-to-right reading.
    const flag = await send(
      SG,
      asSubmission(
        sampleConsigneeFlag(SG, { consignee: { name: '\u202Eabc Shell', country: 'MY' } }),
      ),
    );
    const gist = page.locator(`tr[data-alert-id="${flag.id}"] td.summary`);
    await gist.waitFor({ timeout: 20_000 });
    // Where the browser lays out one part of the cell's text (the page's own Range; this file is
    // compiled without the DOM's types).
    type Box = { left: number; right: number };
    type DomView = {
      document: {
        createRange(): {
          setStart(n: unknown, o: number): void;
          setEnd(n: unknown, o: number): void;
          getBoundingClientRect(): Box;
        };
      };
    };
    const box = (part: string) =>
      gist.evaluate((td, p) => {
        const node = (td as unknown as { firstChild: { textContent: string } }).firstChild;
        const at = node.textContent.indexOf(p);
        const r = (globalThis as unknown as DomView).document.createRange();
        r.setStart(node, at);
        r.setEnd(node, at + p.length);
        const b = r.getBoundingClientRect();
        return { left: b.left, right: b.right, found: at >= 0 };
      }, part);
    const name = await box('Shell');
    const country = await box('MY');
    expect(name.found && country.found).toBe(true);
    expect(country.left).toBeGreaterThanOrEqual(name.right);
    expectOnlyOrigin(vnUrl());
  }, 60_000);

  it('console - the send form sends a valid alert, and shows an invalid container number at its field, as the gateway words it', async () => {
    browser.requests.length = 0;
    await page.locator('#nav-send').click();
    await page.locator('#alert-type').selectOption('consignee-flag@1');
    await page.locator('[data-pointer="/handling"]').selectOption('TLP:GREEN');
    await page.locator('[data-pointer="/consignee/name"]').fill('Hai Phong Trading Co.');
    await page.locator('[data-pointer="/consignee/country"]').selectOption('VN');
    await page.locator('[data-pointer="/reason"]').selectOption('prior-seizure');
    await page.locator('#validity.ok-text').waitFor();
    await page.locator('#send-submit').click();
    await page.locator('#send-outcome.ok-text').waitFor();
    const accepted = /([0-9a-f-]{36})/.exec((await page.locator('#send-outcome').textContent())!);
    expect(accepted).not.toBeNull();
    // It really went out: the partner's gateway receives it.
    let seen = false;
    for (let i = 0; i < 100 && !seen; i++) {
      const r = await fetch(`${hub.gateways[SG]!.url}/v1/alerts/${accepted![1]}`, {
        headers: { authorization: `Bearer ${hub.token}` },
      });
      seen = r.status === 200;
      if (!seen) await new Promise((res) => setTimeout(res, 200));
    }
    expect(seen).toBe(true);

    await page.locator('#alert-type').selectOption('suspicious-shipment@1');
    await page.locator('[data-add="/shipment/containers"]').click();
    const input = page.locator('[data-pointer="/shipment/containers/0"]');
    await input.fill('CSQU3054384'); // check digit should be 3
    await input.blur();
    const error = page.locator('[data-error-for="/shipment/containers/0"]');
    await error.waitFor();
    await expect(input.getAttribute('aria-invalid')).resolves.toBe('true');
    // The same message the gateway's API gives for the same draft.
    const draft = {
      type: 'suspicious-shipment',
      version: 1,
      shipment: { containers: ['CSQU3054384'] },
    };
    const api = await fetch(`${hub.gateways[VN]!.url}/v1/alerts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(draft),
    });
    const body = (await api.json()) as {
      error: { code: string; details: { pointer: string; message: string }[] };
    };
    expect(body.error.code).toBe('ERR_SCHEMA_INVALID');
    const expected = body.error.details.find((d) => d.pointer === '/shipment/containers/0');
    expect(expected).toBeDefined();
    // Validation runs a moment after the last keystroke: the message of the blank item the
    // field held before is replaced by the one for what was typed.
    await expect
      .poll(() => error.textContent(), { timeout: 20_000, interval: 250 })
      .toBe(expected!.message);
    await screenshot(page, 'console-send');
    expectOnlyOrigin(vnUrl());
  }, 60_000);

  it('console - switches between English and French from one catalogue', async () => {
    await page.locator('#nav-inbox').click();
    await page.locator('#lang').selectOption('fr');
    await expect(page.locator('#inbox-title').textContent()).resolves.toContain(
      'Boîte de réception',
    );
    await expect(page.locator('html').getAttribute('lang')).resolves.toBe('fr');
    await screenshot(page, 'console-inbox-fr');
    await page.locator('#lang').selectOption('en');
    await expect(page.locator('#inbox-title').textContent()).resolves.toContain('Inbox');
  });
});

describe('coordinator dashboard in Chromium', () => {
  let page: Page;
  const routerUrl = () => hub.router.url;

  beforeAll(async () => {
    page = await browser.newPage();
  });
  afterAll(async () => {
    await page?.close();
  });

  it("dashboard - the flow matrix counts equal the audit log's; refusals, audit health and trace are shown", async () => {
    // Traffic the matrix and the refusal chart must reflect: forwards both ways, a denial for a
    // label above the agreement's, and alerts from an agency nobody agreed with.
    const vnSent = await send(VN, seizureReport(VN, { id: undefined, issuedAt: undefined }));
    const red = await send(
      SG,
      seizureReport(SG, { id: undefined, issuedAt: undefined, handling: 'TLP:RED' }),
    );
    const ke = await send(KE, seizureReport(KE, { id: undefined, issuedAt: undefined }));

    // Wait until the router has decided every alert sent above, then compare with the audit.
    const db = new Database(hub.auditDb, { readonly: true });
    const audit = () =>
      db
        .prepare(
          `SELECT origin, recipient, count(*) AS n FROM (
             SELECT a.origin, r.recipient FROM audit_routes r JOIN audit a ON a.seq = r.seq
              WHERE a.event = 'routed' AND r.feed_seq IS NOT NULL
             UNION ALL SELECT origin, recipient FROM audit WHERE event = 'forwarded')
           GROUP BY origin, recipient`,
        )
        .all() as { origin: string; recipient: string; n: number }[];
    try {
      const undecided = () =>
        [vnSent.id, red.id, ke.id].filter(
          (id) =>
            (
              db
                .prepare(
                  "SELECT count(*) AS n FROM audit WHERE alert_id = ? AND event IN ('routed', 'forwarded', 'denied', 'rejected')",
                )
                .get(id) as { n: number }
            ).n === 0,
        );
      for (let i = 0; i < 150 && undecided().length > 0; i++)
        await new Promise((r) => setTimeout(r, 200));
      expect(undecided()).toEqual([]);

      browser.requests.length = 0;
      const res = await page.goto(`${routerUrl()}/dashboard/`);
      expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
      await signIn(page, `${routerUrl()}/dashboard/`, hub.coordinatorToken);

      const expected = audit();
      expect(expected.length).toBeGreaterThanOrEqual(2);
      // The page refreshes its counts every few seconds; wait until it shows the audit's.
      await expect
        .poll(
          async () =>
            page.evaluate(
              `[...document.querySelectorAll('#flow-matrix td[data-from]')]
                .filter((c) => c.textContent !== '0')
                .map((c) => c.dataset.from + '>' + c.dataset.to + '=' + c.textContent)
                .sort()`,
            ),
          { timeout: 20_000, interval: 500 },
        )
        .toEqual(expected.map((e) => `${e.origin}>${e.recipient}=${e.n}`).sort());
    } finally {
      db.close();
    }

    await page.locator('#refusals tr[data-reason="DENY_HANDLING"]').waitFor({ timeout: 20_000 });
    await page.locator('#refusals tr[data-reason="DENY_NOT_PARTY"]').waitFor({ timeout: 20_000 });
    await page.locator('#refusals-chart canvas').first().waitFor();
    await page.locator('#chain.ok').waitFor();

    await page.locator('#trace-id').fill(vnSent.id);
    await page.locator('#trace-id').press('Enter');
    await page.locator('#trace-records tr[data-event="routed"]').waitFor();
    await page.locator('#tail tr[data-event="routed"]').first().waitFor({ timeout: 20_000 });
    await screenshot(page, 'dashboard');
    expectOnlyOrigin(routerUrl());

    const cookies = await browser.context.cookies(routerUrl());
    expect(cookies.find((c) => c.name.startsWith('ahub_dashboard'))).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
    });
  }, 90_000);
});
