import { jetstream } from '@nats-io/jetstream';
import {
  NEAR_MISSES,
  deniedRecipients,
  forwardedCopies,
  type AuditRecord as AuditLogRecord,
} from '@alert-hub/audit';
import {
  DenyReason,
  encodeEnvelope,
  generateSigningJwk,
  importSigningKey,
  inboundSubject,
  loadSchemaRegistry,
  DEFAULT_SCHEMAS_DIR,
  signAlert,
  DEMO_ALERTS,
  asSubmission,
  sampleOutcome,
  sampleSeizureReport,
  sampleSuspiciousShipment,
  type Alert,
  type LocalHub,
} from './deps.js';

/** What happened to one step's alert: the routing table row. */
export interface StepOutcome {
  readonly step: number;
  readonly title: string;
  readonly from: string;
  readonly type: string;
  readonly alertId?: string;
  readonly forwarded: readonly { recipient: string; agreement: string }[];
  readonly denied: readonly { recipient: string; reason: string; detail: string }[];
  readonly rejected?: { code: string; reason: string };
  /** NATS itself refused the publication (permissions). */
  readonly refusedByNats?: string;
  /** Recipients whose signed delivery receipt the hub verified, as the sender's status shows. */
  readonly delivered?: readonly string[];
  /** The hub's signed refusal notice that reached the publishing connection's agency. */
  readonly refusalNotice?: { readonly agency: string; readonly code: string };
}

interface AlertStatus {
  state: string;
  refused?: { code: string };
  recipients: { recipient: string; state: string; receiptVerified?: boolean }[];
  outcomes: { from: string; result: string; outcome: Record<string, unknown> }[];
}

interface AuditRecord {
  event: string;
  recipient: string | null;
  agreementId: string | null;
  agreementVersion: number | null;
  reasonCode: string | null;
  reason: string | null;
  streamSeq: number | null;
  detail: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  f: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Plays the scenario through the agencies' gateways and the router, and reports each step. */
export class Scenario {
  readonly #hub: LocalHub;
  readonly #say: (line: string) => void;
  readonly outcomes: StepOutcome[] = [];
  readonly ids: Record<string, string> = {};

  constructor(hub: LocalHub, say: (line: string) => void) {
    this.#hub = hub;
    this.#say = say;
  }

  #auth() {
    return { authorization: `Bearer ${this.#hub.token}` };
  }

  async #send(agency: string, alert: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${this.#hub.gateways[agency]!.url}/v1/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.#auth() },
      body: JSON.stringify(alert),
    });
    const body = (await res.json()) as {
      id?: string;
      error?: { message: string; details?: unknown };
    };
    if (res.status !== 202 || !body.id)
      throw new Error(`${agency}'s gateway refused the alert: ${JSON.stringify(body.error)}`);
    return body.id;
  }

  async #status(agency: string, id: string): Promise<AlertStatus | undefined> {
    const res = await fetch(`${this.#hub.gateways[agency]!.url}/v1/alerts/${id}/status`, {
      headers: this.#auth(),
    });
    return res.ok ? ((await res.json()) as AlertStatus) : undefined;
  }

  /** Waits until the sender's status shows every forwarded copy delivered with a verified receipt. */
  async #delivered(from: string, alertId: string, count: number): Promise<string[]> {
    const s = await until(`the receipts for ${alertId}`, async () => {
      const v = await this.#status(from, alertId);
      const done = v?.recipients.filter((r) => r.state === 'delivered' && r.receiptVerified);
      return done && done.length === count ? done : undefined;
    });
    return s.map((r) => r.recipient).sort();
  }

  async #audit(path: string): Promise<AuditRecord[] | undefined> {
    const res = await fetch(`${this.#hub.router.url}${path}`, {
      headers: { authorization: `Bearer ${this.#hub.coordinatorToken}` },
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { records: AuditRecord[] };
    return body.records.length > 0 ? body.records : undefined;
  }

  /** Waits for the router's decision on an alert and for each entitled partner's gateway to hold it. */
  async #outcome(
    step: number,
    title: string,
    from: string,
    type: string,
    alertId: string,
  ): Promise<StepOutcome> {
    const records = await until(`the router's decision on ${alertId}`, () =>
      this.#audit(`/v1/audit/trace/${alertId}`),
    );
    // A routing decision lists its recipients (a held copy's forward comes later, on its own).
    const forwarded = forwardedCopies(records as unknown as AuditLogRecord[]).map((f) => ({
      recipient: f.recipient,
      agreement: `${f.agreementId}@${f.agreementVersion}`,
    }));
    // A summary of refusals is listed recipient by recipient, each with its own code. A summary's
    // sentence is about the whole group ("... and any of 2 other agencies"): it is not repeated
    // after each agency's code; a "not a party" refusal says what it means for that agency.
    const denied = records
      .filter((r) => r.event === 'denied')
      .flatMap((r) =>
        deniedRecipients(r as unknown as AuditLogRecord).map((d) => ({
          ...d,
          detail:
            r.recipient !== null
              ? (d.reason ?? '')
              : r.reasonCode === DenyReason.NotParty
                ? `not party to any agreement (or operation) with ${from}`
                : r.reasonCode !== NEAR_MISSES
                  ? (d.reason ?? '')
                  : '',
        })),
      )
      .flatMap((d) =>
        d.recipient === null
          ? []
          : [{ recipient: d.recipient, reason: d.reasonCode ?? '', detail: d.detail }],
      );
    const rej = records.find((r) => r.event === 'rejected');
    for (const f of forwarded) {
      await until(`${alertId} in ${f.recipient}'s feed`, async () => {
        const res = await fetch(`${this.#hub.gateways[f.recipient]!.url}/v1/alerts/${alertId}`, {
          headers: this.#auth(),
        });
        return res.ok ? true : undefined;
      });
    }
    const delivered = forwarded.length
      ? await this.#delivered(from, alertId, forwarded.length)
      : undefined;
    const o: StepOutcome = {
      step,
      title,
      from,
      type,
      alertId,
      forwarded,
      denied,
      ...(rej ? { rejected: { code: rej.reasonCode ?? '', reason: rej.reason ?? '' } } : {}),
      ...(delivered ? { delivered } : {}),
    };
    this.outcomes.push(o);
    this.#report(o);
    return o;
  }

  #report(o: StepOutcome): void {
    this.#say(`   ${o.from} -> ${o.type}${o.alertId ? ` ${o.alertId}` : ''}`);
    if (o.refusedByNats) this.#say(`   refused by NATS: ${o.refusedByNats}`);
    if (o.rejected)
      this.#say(
        `   rejected by the router: ${o.rejected.code} (${o.rejected.reason}); dead-lettered, forwarded to nobody`,
      );
    if (o.forwarded.length)
      this.#say(
        `   received by: ${o.forwarded.map((f) => `${f.recipient} (${f.agreement})`).join(', ')}`,
      );
    if (!o.rejected && !o.refusedByNats && o.forwarded.length === 0)
      this.#say('   received by: nobody');
    for (const d of o.denied)
      this.#say(`   refused to ${d.recipient}: ${d.reason}${d.detail ? `, ${d.detail}` : ''}`);
    if (o.delivered)
      this.#say(`   ${o.from}'s status: delivered, receipt verified, to ${o.delivered.join(', ')}`);
    if (o.refusalNotice)
      this.#say(
        `   the hub's signed refusal notice reached ${o.refusalNotice.agency}, the connection's agency: ${o.refusalNotice.code}`,
      );
  }

  async #step(
    n: number,
    title: string,
    from: string,
    alert: Record<string, unknown>,
    name: string,
  ): Promise<StepOutcome> {
    this.#say('');
    this.#say(`${n}. ${title}`);
    const id = await this.#send(from, alert);
    this.ids[name] = id;
    return this.#outcome(n, title, from, String(alert['type']), id);
  }

  async run(): Promise<StepOutcome[]> {
    const steps: [number, string, keyof typeof DEMO_ALERTS][] = [
      [
        1,
        'Nigeria Customs flags a container at Apapa, Lagos, declared as frozen beef and bound for Hai Phong via Singapore',
        'nigeriaFlag',
      ],
      [
        2,
        'Singapore intercepts it in transit: 12.9 tonnes of pangolin scales and 177 kg of ivory (as on 8 April 2019)',
        'singaporeSeizure',
      ],
      [
        3,
        'Viet Nam seizes an ivory shipment at Da Nang, shipped from Matadi via Singapore (as in March 2019, 9.1 tonnes)',
        'vietNamSeizure',
      ],
      [
        4,
        'Hong Kong Customs flags the consignee behind several shipments, under the regional agreement',
        'hongKongFlag',
      ],
      [
        5,
        'Kenya Wildlife Service flags a consignee; no agreement covers consignee flags from Kenya, so nobody receives it',
        'kenyaFlag',
      ],
    ];
    for (const [n, title, name] of steps) {
      const { from, submission } = DEMO_ALERTS[name];
      await this.#step(n, title, from, submission(this.ids), name);
    }

    await this.#forgery(6);

    this.#say('');
    this.#say(
      '7. Nigeria withdraws its first alert: the seizure report supersedes it. The retraction reaches everyone who received the original.',
    );
    const retractionId = await this.#send('NG-NCS', DEMO_ALERTS.retraction.submission(this.ids));
    this.ids['retraction'] = retractionId;
    const r = await this.#outcome(
      7,
      'Nigeria withdraws its first alert',
      'NG-NCS',
      'retraction',
      retractionId,
    );
    for (const f of r.forwarded) {
      const item = await until(`the withdrawal in ${f.recipient}'s feed`, async () => {
        const res = await fetch(
          `${this.#hub.gateways[f.recipient]!.url}/v1/alerts/${this.ids['nigeriaFlag']}`,
          { headers: this.#auth() },
        );
        const body = (await res.json()) as { status?: string };
        return body.status === 'withdrawn' ? body : undefined;
      });
      this.#say(`   in ${f.recipient}'s feed the original is now: ${item.status}`);
    }

    await this.#step(
      8,
      "Operation Thunderball: Nigeria flags another container to the operation's members (and only to them, during its period)",
      'NG-NCS',
      asSubmission(
        sampleSuspiciousShipment('NG-NCS', {
          operation: 'THUNDERBALL-DEMO',
          summary: 'Second container of the same consignor, declared as frozen fish.',
        }),
      ),
      'thunderballFlag',
    );
    await this.#outcomeStep(9);
    return this.outcomes;
  }

  /** Viet Nam reports what it did with Nigeria's flag; Nigeria sees it beside its alert. */
  async #outcomeStep(n: number): Promise<void> {
    const flag = this.ids['thunderballFlag']!;
    this.#say('');
    this.#say(
      `${n}. Viet Nam reports the outcome of Nigeria's flag: 450 kg of pangolin scales seized at Hai Phong, 2 arrests`,
    );
    const id = await this.#send('VN-CUSTOMS', asSubmission(sampleOutcome('VN-CUSTOMS', flag)));
    this.ids['vietNamOutcome'] = id;
    await this.#outcome(n, "Viet Nam's outcome on Nigeria's flag", 'VN-CUSTOMS', 'outcome', id);
    const seen = await until("the outcome beside Nigeria's alert", async () => {
      const v = await this.#status('NG-NCS', flag);
      return v && v.outcomes.length > 0 ? v : undefined;
    });
    for (const o of seen.outcomes)
      this.#say(`   Nigeria's status of ${flag} shows: outcome from ${o.from}: ${o.result}`);
  }

  /** Two forgeries: one NATS refuses outright, one only the router's checks can catch. */
  async #forgery(n: number): Promise<void> {
    this.#say('');
    this.#say(
      `${n}. A compromised connection of Singapore's gateway tries to pass forged alerts off as Viet Nam Customs'`,
    );
    const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
    const forged = sampleSeizureReport('VN-CUSTOMS', {
      handling: 'TLP:CLEAR',
      summary: 'Forged: "all clear, release the containers".',
    }) as unknown as Alert;
    // A key Viet Nam never registered, used to sign in its name.
    const rogue = importSigningKey(generateSigningJwk().privateJwk, 'VN-CUSTOMS');
    const bytes = encodeEnvelope(
      await signAlert(forged, rogue, registry.schemaIdFor('seizure-report', 1)!),
    );
    const nc = await this.#hub.connectAs('SG-NPARKS');
    try {
      const js = jetstream(nc);
      let refusedByNats = '';
      try {
        await js.publish(inboundSubject('VN-CUSTOMS', 'seizure-report'), bytes, { timeout: 3000 });
      } catch (err) {
        refusedByNats = (err as Error).message;
      }
      const a: StepOutcome = {
        step: n,
        title: "publish on Viet Nam's subject",
        from: 'SG-NPARKS (as VN-CUSTOMS)',
        type: 'seizure-report',
        forwarded: [],
        denied: [],
        refusedByNats,
      };
      this.outcomes.push(a);
      this.#say('   a) on ahub.in.VN-CUSTOMS.seizure-report');
      this.#report(a);
      const ack = await js.publish(inboundSubject('SG-NPARKS', 'seizure-report'), bytes, {
        msgID: `forged-${forged.id}`,
      });
      const records = await until('the router to reject the forgery', async () =>
        (await this.#audit('/v1/audit?outcome=rejected&limit=5000'))?.filter(
          (r) => r.streamSeq === ack.seq,
        ),
      );
      const rej = records.find((r) => r.streamSeq === ack.seq);
      const b: StepOutcome = {
        step: n,
        title: 'signed with a key Viet Nam never registered',
        from: 'SG-NPARKS (as VN-CUSTOMS)',
        type: 'seizure-report',
        alertId: forged.id,
        forwarded: [],
        denied: [],
        ...(rej ? { rejected: { code: rej.reasonCode ?? '', reason: rej.reason ?? '' } } : {}),
        refusalNotice: await until("the refusal notice at Singapore's gateway", async () => {
          const res = await fetch(`${this.#hub.gateways['SG-NPARKS']!.url}/v1/refusals`, {
            headers: this.#auth(),
          });
          const items = ((await res.json()) as { items: { code: string }[] }).items;
          return items[0] ? { agency: 'SG-NPARKS', code: items[0].code } : undefined;
        }),
      };
      this.outcomes.push(b);
      this.#say('   b) on its own subject, signed with a key Viet Nam never registered');
      this.#report(b);
    } finally {
      await nc.close();
    }
  }
}
