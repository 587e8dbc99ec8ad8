import { useState } from 'preact/hooks';
import { callApi, formatTime, t } from '@alert-hub/web';
import type { FeedItem } from './inbox';
import { SendForm } from './send';
import { RecipientTable, resultLabel, usePolling, type AlertStatus } from './sent';

/** An outcome this agency reported on a received alert (`GET /console/api/alerts/:id/reported`). */
interface Reported {
  readonly id: string;
  readonly acceptedAt: string;
  readonly result: string | null;
  readonly status: AlertStatus | null;
}

/**
 * The outcomes panel of a received alert: what this agency reported to the alert's origin, each
 * with its own delivery (an outcome travels back as an alert), and a form to record another,
 * generated from the outcome schema and checked by the gateway as the officer types.
 */
export function ReportedOutcomes(props: { item: FeedItem; agency: string; canReport: boolean }) {
  const { item } = props;
  const [reported, setReported] = useState<readonly Reported[] | undefined>(undefined);
  const [origins, setOrigins] = useState<readonly string[]>([]);
  const [recording, setRecording] = useState(false);
  const [recorded, setRecorded] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  usePolling(() => {
    void callApi<{ items: Reported[]; origins: string[] }>(
      `/console/api/alerts/${encodeURIComponent(item.id)}/reported`,
    ).then((r) => {
      if (!r.ok) return;
      setReported(r.body.items);
      setOrigins(r.body.origins);
    });
  }, [item.id, tick]);

  if (!props.canReport) return null;
  return (
    <div class="panel" id="outcomes" aria-live="polite">
      <h3>{t('detail.outcomes')}</h3>
      <p class="help">{t('detail.outcomes.reported', { origin: item.origin })}</p>
      {reported !== undefined && reported.length === 0 && (
        <p class="notice">{t('detail.outcomes.none')}</p>
      )}
      {reported !== undefined && reported.length > 0 && (
        <ol class="outcomes" id="reported">
          {reported.map((o) => (
            <li key={o.id} class="outcome" data-outcome-id={o.id} data-result={o.result ?? ''}>
              <p>
                <strong class={`result result-${o.result ?? ''}`}>
                  {o.result ? resultLabel(o.result) : ''}
                </strong>{' '}
                · {formatTime(o.acceptedAt)} · <span class="mono">{o.id}</span> ·{' '}
                {t(`sent.state.${o.status?.state ?? 'accepted'}`)}
              </p>
              {o.status && o.status.recipients.length > 0 && (
                <RecipientTable recipients={o.status.recipients} id={`delivery-${o.id}`} />
              )}
              {o.status?.refused && (
                <p class="error">
                  {t('sent.detail.refused', {
                    code: o.status.refused.code,
                    reason: o.status.refused.reason,
                  })}
                </p>
              )}
            </li>
          ))}
        </ol>
      )}
      {recorded && (
        <p id="outcome-recorded" role="status" class="ok-text">
          {t('detail.outcomes.recorded', { id: recorded, origin: item.origin })}
        </p>
      )}
      <p>
        <button
          type="button"
          id="record-outcome"
          aria-expanded={recording}
          aria-controls="outcome-form"
          onClick={() => {
            setRecorded(undefined);
            setRecording(!recording);
          }}
        >
          {recording ? t('detail.outcomes.cancel') : t('detail.outcomes.record')}
        </button>
      </p>
      {recording && (
        <SendForm
          agency={props.agency}
          formId="outcome-form"
          title="detail.outcomes.record"
          preset={
            // Version 1 reaches every origin, those that read only version 1 included; when
            // several origins sent an alert with this id, version 2 names the one on this page.
            origins.length > 1
              ? {
                  type: 'outcome',
                  version: 2,
                  fixed: { answers: item.id, answersOrigin: item.origin },
                  initial: { handling: item.alert['handling'] ?? item.handling },
                }
              : {
                  type: 'outcome',
                  version: 1,
                  fixed: { answers: item.id },
                  initial: { handling: item.alert['handling'] ?? item.handling },
                }
          }
          onSent={(s) => {
            setRecording(false);
            setRecorded(s.id);
            setTick((n) => n + 1);
          }}
        />
      )}
    </div>
  );
}
