import { useEffect, useState } from 'preact/hooks';
import { callApi, t } from '@alert-hub/web';

export const PERIODS = ['all', '1d', '7d', '30d'] as const;
export type Period = (typeof PERIODS)[number];
const PERIOD_MS: Record<Period, number> = {
  all: 0,
  '1d': 86400_000,
  '7d': 7 * 86400_000,
  '30d': 30 * 86400_000,
};

/** The `since` query of a period (undefined: all time). */
export function sinceOf(period: Period): string | undefined {
  return period === 'all' ? undefined : new Date(Date.now() - PERIOD_MS[period]).toISOString();
}

interface Flow {
  readonly day: string;
  readonly origin: string;
  readonly recipient: string;
  readonly type: string;
  readonly count: number;
}

const REFRESH_MS = 5000;

/**
 * Sender × recipient counts of forwarded alerts from `/v1/stats/flows` (the audit's own count),
 * as a heat map: the shade grows with the logarithm of the count, and every cell shows its number.
 */
export function FlowMatrix(props: {
  period: Period;
  type: string;
  onTypes: (types: readonly string[]) => void;
}) {
  const [flows, setFlows] = useState<readonly Flow[] | undefined>(undefined);
  useEffect(() => {
    let stopped = false;
    const load = async () => {
      const since = sinceOf(props.period);
      const r = await callApi<{ flows: Flow[] }>(
        `/v1/stats/flows${since ? `?since=${encodeURIComponent(since)}` : ''}`,
      );
      if (stopped || !r.ok) return;
      setFlows(r.body.flows);
      props.onTypes([...new Set(r.body.flows.map((f) => f.type))].sort());
    };
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [props.period]);

  const shown = (flows ?? []).filter((f) => props.type === '' || f.type === props.type);
  const counts = new Map<string, number>();
  for (const f of shown)
    counts.set(
      `${f.origin}|${f.recipient}`,
      (counts.get(`${f.origin}|${f.recipient}`) ?? 0) + f.count,
    );
  const senders = [...new Set(shown.map((f) => f.origin))].sort();
  const recipients = [...new Set(shown.map((f) => f.recipient))].sort();
  const max = Math.max(1, ...counts.values());
  const shade = (n: number) =>
    n === 0 ? 0 : 1 + Math.round((Math.log(n) / Math.log(max || 2)) * 5);
  const total = (pred: (k: string) => boolean) =>
    [...counts.entries()].filter(([k]) => pred(k)).reduce((a, [, n]) => a + n, 0);

  return (
    <section class="panel wide" aria-labelledby="flows-title">
      <h2 id="flows-title">{t('dash.flows')}</h2>
      {flows && shown.length === 0 && <p class="notice">{t('dash.flows.empty')}</p>}
      {shown.length > 0 && (
        <div class="scroll">
          <table class="heat" id="flow-matrix">
            <caption class="help">{t('dash.flows.caption')}</caption>
            <thead>
              <tr>
                <th scope="col">
                  {t('dash.sender')} \ {t('dash.recipient')}
                </th>
                {recipients.map((r) => (
                  <th scope="col" key={r}>
                    {r}
                  </th>
                ))}
                <th scope="col">{t('dash.total')}</th>
              </tr>
            </thead>
            <tbody>
              {senders.map((s) => (
                <tr key={s}>
                  <th scope="row">{s}</th>
                  {recipients.map((r) => {
                    const n = counts.get(`${s}|${r}`) ?? 0;
                    return (
                      <td
                        key={r}
                        class={`cell heat-${shade(n)}${n === 0 ? ' zero' : ''}`}
                        data-from={s}
                        data-to={r}
                        title={`${s} → ${r}: ${n}`}
                      >
                        {n}
                      </td>
                    );
                  })}
                  <td class="cell">{total((k) => k.startsWith(`${s}|`))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
