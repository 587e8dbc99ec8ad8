import { useEffect, useState } from 'preact/hooks';
import { callApi, formatTime, t } from '@alert-hub/web';

interface LogHealth {
  readonly ok: boolean;
  readonly records: number;
  readonly head: { readonly seq: number; readonly hash: string };
  readonly checkpoints: { readonly verified: number; readonly lastSignedSeq: number };
  readonly unsignedTail: number;
  readonly lastCheckpoint: { instance: string; seq: number; at: string; kid: string } | null;
  readonly problems: readonly string[];
  readonly witnesses: unknown;
  /** What the answer read; `cached`: nothing, the answer of `checkedAt`. */
  readonly check: { readonly mode: string; readonly checkedAt: string } | null;
}

/** The audit chain checked end to end by the router (GET /dashboard/api/health). */
export function Health() {
  const [health, setHealth] = useState<{ checkedAt: string; logs: LogHealth[] } | undefined>(
    undefined,
  );
  const check = () =>
    void callApi<{ checkedAt: string; logs: LogHealth[] }>('/dashboard/api/health').then(
      (r) => r.ok && setHealth(r.body),
    );
  useEffect(check, []);
  return (
    <section class="panel" aria-labelledby="health-title" id="health">
      <h2 id="health-title">{t('dash.health')}</h2>
      {health?.logs.map((l, i) => (
        <div key={i} class="health-log">
          <p>
            <span class={l.ok ? 'badge ok' : 'badge error'} id={i === 0 ? 'chain' : undefined}>
              {l.ok ? t('dash.health.ok') : t('dash.health.broken')}
            </span>{' '}
            {t('dash.health.records', { n: l.records, seq: l.head.seq })}{' '}
            <span class="mono" title={l.head.hash}>
              {l.head.hash.slice(0, 16)}…
            </span>
          </p>
          <p>
            {t(
              l.checkpoints.verified === 1 ? 'dash.health.checkpoint' : 'dash.health.checkpoints',
              {
                n: l.checkpoints.verified,
                seq: l.checkpoints.lastSignedSeq,
              },
            )}
          </p>
          <p>
            {l.lastCheckpoint
              ? t('dash.health.lastCheckpoint', {
                  at: formatTime(l.lastCheckpoint.at),
                  kid: `${l.lastCheckpoint.kid.slice(0, 12)}…`,
                })
              : t('dash.health.noCheckpoint')}
            {' · '}
            {t('dash.health.unsigned', { n: l.unsignedTail })}
          </p>
          {l.check?.mode === 'cached' && (
            <p class="notice">{t('dash.health.cached', { at: formatTime(l.check.checkedAt) })}</p>
          )}
          {l.problems.length > 0 && (
            <ul class="error">
              {l.problems.map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          )}
          <h3>{t('dash.health.witnesses')}</h3>
          {Array.isArray(l.witnesses) && l.witnesses.length > 0 ? (
            <p id={i === 0 ? 'witnesses' : undefined}>{(l.witnesses as string[]).join(', ')}</p>
          ) : (
            <p class="notice">{t('dash.health.witnesses.pending')}</p>
          )}
        </div>
      ))}
      <p>
        <button type="button" id="verify" onClick={check}>
          {t('dash.health.verify')}
        </button>{' '}
        {health && <span class="help">{formatTime(health.checkedAt)}</span>}
      </p>
    </section>
  );
}
