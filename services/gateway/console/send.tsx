import { useEffect, useRef, useState } from 'preact/hooks';
import { callApi, fieldLabel, t, type ApiError, type MessageKey } from '@alert-hub/web';
import { SchemaSet, getIn, pointerOf, prune, setIn, type Located, type Schema } from './schema';

interface SchemasResponse {
  readonly agency: string;
  readonly alertTypes: readonly { type: string; version: number; schemaId: string }[];
  readonly schemas: readonly Schema[];
}

type Validation = { ok: true } | { ok: false; error: ApiError };

export interface SentAlert {
  readonly id: string;
  readonly sequence: number;
  readonly type: string;
  readonly at: string;
}

/**
 * A form for one alert type with some members decided by the page (an outcome's `answers`):
 * `fixed` members are sent as given and not shown; `initial` ones are filled in and editable.
 */
export interface FormPreset {
  readonly type: string;
  /** The schema version to fill in (the newest of the type when absent). */
  readonly version?: number;
  readonly fixed: Readonly<Record<string, unknown>>;
  readonly initial?: Readonly<Record<string, unknown>>;
}

/** Members of every alert the gateway fills in itself; the form does not ask for them. */
const FILLED = new Set(['id', 'origin', 'issuedAt', 'type', 'version']);
const VALIDATE_DELAY_MS = 250;

/**
 * The send form, generated from the alert type's JSON Schema. As the officer types, the draft
 * goes to the gateway's own checks (POST /console/api/validate), so the rules and the messages
 * are exactly those of POST /v1/alerts; each message is shown at its field.
 */
export function SendForm(props: {
  agency: string;
  onSent: (s: SentAlert) => void;
  /** Without a preset the officer picks any alert type; with one, the form is for that type. */
  preset?: FormPreset;
  formId?: string;
  title?: MessageKey;
}) {
  const { preset } = props;
  const formId = props.formId ?? 'send';
  const [schemas, setSchemas] = useState<SchemasResponse | undefined>(undefined);
  const [typeKey, setTypeKey] = useState('');
  const [value, setValue] = useState<Record<string, unknown>>({});
  const [result, setResult] = useState<Validation | undefined>(undefined);
  const [touched, setTouched] = useState<ReadonlySet<string>>(new Set());
  const [showAll, setShowAll] = useState(false);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | undefined>(undefined);
  const seq = useRef(0);

  useEffect(() => {
    void callApi<SchemasResponse>('/console/api/schemas').then((r) => {
      if (!r.ok) return;
      setSchemas(r.body);
      const first = preset
        ? r.body.alertTypes
            .filter(
              (a) =>
                a.type === preset.type &&
                (preset.version === undefined || a.version === preset.version),
            )
            .sort((a, b) => b.version - a.version)[0]
        : r.body.alertTypes[0];
      if (first) choose(`${first.type}@${first.version}`);
    });
  }, []);

  const set = schemas ? new SchemaSet(schemas.schemas) : undefined;
  const entry = schemas?.alertTypes.find((a) => `${a.type}@${a.version}` === typeKey);
  const root = entry && set?.get(entry.schemaId);

  function choose(key: string) {
    const [type, version] = key.split('@');
    setTypeKey(key);
    setValue({
      ...(preset ? { ...preset.initial, ...preset.fixed } : {}),
      type,
      version: Number(version),
    });
    setTouched(new Set());
    setShowAll(false);
    setResult(undefined);
  }

  // Validate the draft a moment after the last keystroke; a late answer never overwrites a newer one.
  useEffect(() => {
    if (!entry) return undefined;
    const mine = ++seq.current;
    const timer = setTimeout(() => {
      void callApi<Validation>('/console/api/validate', {
        method: 'POST',
        body: prune(value) ?? {},
      }).then((r) => {
        if (mine !== seq.current) return;
        setResult(r.ok ? r.body : { ok: false, error: r.error });
      });
    }, VALIDATE_DELAY_MS);
    return () => clearTimeout(timer);
  }, [value, typeKey]);

  const issues = new Map<string, string>();
  if (result && !result.ok)
    for (const d of result.error.details ?? []) issues.set(d.pointer, d.message);
  const update = (path: readonly (string | number)[], v: unknown) => {
    setOutcome(undefined);
    setValue((prev) => setIn(prev, path, v) as Record<string, unknown>);
  };
  const touch = (pointer: string) =>
    setTouched((prev) => (prev.has(pointer) ? prev : new Set([...prev, pointer])));

  async function send(e: Event) {
    e.preventDefault();
    setShowAll(true);
    const r = await callApi<{ id: string; sequence: number }>('/v1/alerts', {
      method: 'POST',
      body: prune(value) ?? {},
    });
    if (r.ok) {
      setOutcome({ ok: true, text: t('send.accepted', { id: r.body.id, seq: r.body.sequence }) });
      props.onSent({
        id: r.body.id,
        sequence: r.body.sequence,
        type: String(value['type']),
        at: new Date().toISOString(),
      });
      choose(typeKey);
    } else {
      setOutcome({
        ok: false,
        text: t('send.refused', { message: `${r.error.code}: ${r.error.message}` }),
      });
      setResult({ ok: false, error: r.error });
    }
  }

  const ctx: FieldContext | undefined = set && {
    set,
    hidden: new Set([...FILLED, ...Object.keys(preset?.fixed ?? {})]),
    value,
    issues,
    visible: (p) => showAll || touched.has(p),
    update,
    touch,
  };
  const problems = issues.size;
  return (
    <section aria-labelledby={`${formId}-title`}>
      <h2 id={`${formId}-title`}>{t(props.title ?? 'send.title')}</h2>
      {schemas && (
        <form id={formId} onSubmit={(e) => void send(e)} noValidate>
          <div class="field" hidden={preset !== undefined}>
            <label for="alert-type">{t('send.type')}</label>
            <select id="alert-type" value={typeKey} onChange={(e) => choose(e.currentTarget.value)}>
              {schemas.alertTypes.map((a) => (
                <option key={a.schemaId} value={`${a.type}@${a.version}`}>
                  {a.type} (v{a.version})
                </option>
              ))}
            </select>
            <p class="help">{t('send.filled')}</p>
          </div>
          {root && ctx && <Field ctx={ctx} path={[]} at={root} required />}
          <p id="validity" aria-live="polite" class={result?.ok ? 'ok-text' : 'help'}>
            {result === undefined
              ? ''
              : result.ok
                ? t('send.valid')
                : t('send.invalid', { n: problems })}
          </p>
          {showAll && problems > 0 && (
            // Every problem once more, by place: also those of members the form has no field for.
            <ul id="problems" class="error">
              {[...issues].map(([pointer, message]) => (
                <li key={pointer}>
                  <span class="mono">{pointer || '/'}</span>: {message}
                </li>
              ))}
            </ul>
          )}
          <button type="submit" class="primary" id="send-submit">
            {t('send.submit')}
          </button>
          {outcome && (
            <p id="send-outcome" role="status" class={outcome.ok ? 'ok-text' : 'error'}>
              {outcome.text}
            </p>
          )}
        </form>
      )}
    </section>
  );
}

interface FieldContext {
  readonly set: SchemaSet;
  /** Top-level members the form does not show (filled by the gateway or the page). */
  readonly hidden: ReadonlySet<string>;
  readonly value: unknown;
  readonly issues: ReadonlyMap<string, string>;
  readonly visible: (pointer: string) => boolean;
  readonly update: (path: readonly (string | number)[], v: unknown) => void;
  readonly touch: (pointer: string) => void;
}

function Field(props: {
  ctx: FieldContext;
  path: readonly (string | number)[];
  at: Located;
  required: boolean;
}) {
  const { ctx, path } = props;
  const pointer = pointerOf(path);
  const id = `f${pointer.replace(/\//g, '.') || '.root'}`;
  const last = path[path.length - 1];
  const label =
    last === undefined ? '' : typeof last === 'number' ? `#${last + 1}` : fieldLabel(last);
  const error = ctx.issues.get(pointer);
  const shown = error !== undefined && ctx.visible(pointer);
  const errorId = `${id}-error`;
  const current = getIn(ctx.value, path);
  const view = ctx.set.view(props.at, current);
  const errorLine = shown && (
    <p class="field-error" id={errorId} data-error-for={pointer}>
      {error}
    </p>
  );
  if (view.const !== undefined) return null;

  if (view.type === 'object' || Object.keys(view.properties).length > 0) {
    const members = Object.entries(view.properties).filter(
      ([k]) => !(path.length === 0 && ctx.hidden.has(k)),
    );
    const body = members.map(([k, sub]) => (
      <Field key={k} ctx={ctx} path={[...path, k]} at={sub} required={view.required.includes(k)} />
    ));
    if (path.length === 0) return <>{body}</>;
    // An optional part stays folded until the officer opens it (or it holds something).
    if (!props.required)
      return (
        <details class="optional" data-pointer={pointer} open={current !== undefined || shown}>
          <summary>{label}</summary>
          {errorLine}
          {body}
        </details>
      );
    return (
      <fieldset data-pointer={pointer} aria-describedby={shown ? errorId : undefined}>
        <legend>
          {label}
          {props.required && <span class="req">{t('send.required')}</span>}
        </legend>
        {errorLine}
        {body}
      </fieldset>
    );
  }

  if (view.type === 'array' && view.items) {
    const items = Array.isArray(current) ? (current as unknown[]) : [];
    const itemView = ctx.set.view(view.items, undefined);
    const blank = itemView.type === 'object' ? {} : '';
    return (
      <fieldset data-pointer={pointer} aria-describedby={shown ? errorId : undefined}>
        <legend>
          {label}
          {props.required && <span class="req">{t('send.required')}</span>}
        </legend>
        {errorLine}
        {items.map((_, i) => (
          <div key={i} class="array-item">
            <Field ctx={ctx} path={[...path, i]} at={view.items!} required />
            <button
              type="button"
              onClick={() => {
                const next = items.filter((__, j) => j !== i);
                ctx.update(path, next.length > 0 ? next : undefined);
              }}
            >
              {t('send.remove')} {label} #{i + 1}
            </button>
          </div>
        ))}
        <button
          type="button"
          data-add={pointer}
          onClick={() => ctx.update(path, [...items, blank])}
        >
          {t('send.add')}: {label}
        </button>
      </fieldset>
    );
  }

  const common = {
    id,
    'data-pointer': pointer,
    'aria-invalid': shown,
    'aria-describedby': shown ? errorId : undefined,
    onBlur: () => ctx.touch(pointer),
  };
  let input;
  if (view.enum) {
    input = (
      <select
        {...common}
        value={typeof current === 'string' || typeof current === 'number' ? String(current) : ''}
        onChange={(e) => {
          const v = e.currentTarget.value;
          ctx.touch(pointer);
          ctx.update(path, v === '' ? undefined : v);
        }}
      >
        <option value="">{t('send.none')}</option>
        {view.enum.map((o) => (
          <option key={String(o)} value={String(o)}>
            {String(o)}
          </option>
        ))}
      </select>
    );
  } else if (view.type === 'boolean') {
    input = (
      <input
        {...common}
        type="checkbox"
        checked={current === true}
        onChange={(e) => ctx.update(path, e.currentTarget.checked)}
      />
    );
  } else if (view.type === 'integer' || view.type === 'number') {
    input = (
      <input
        {...common}
        type="number"
        step={view.type === 'integer' ? 1 : 'any'}
        value={typeof current === 'string' || typeof current === 'number' ? String(current) : ''}
        onInput={(e) => {
          const raw = e.currentTarget.value;
          ctx.update(path, raw === '' ? undefined : Number(raw));
        }}
      />
    );
  } else if ((view.maxLength ?? 0) > 400) {
    input = (
      <textarea
        {...common}
        rows={4}
        value={typeof current === 'string' ? current : ''}
        onInput={(e) => ctx.update(path, e.currentTarget.value)}
      />
    );
  } else {
    input = (
      <input
        {...common}
        type="text"
        placeholder={placeholderOf(view.format)}
        value={typeof current === 'string' ? current : ''}
        onInput={(e) => ctx.update(path, e.currentTarget.value)}
      />
    );
  }
  return (
    <div class="field">
      <label for={id}>
        {label}
        {props.required && <span class="req">{t('send.required')}</span>}
      </label>
      {input}
      {view.description && <p class="help">{view.description}</p>}
      {errorLine}
    </div>
  );
}

function placeholderOf(format: string | undefined): string | undefined {
  if (format === 'date') return 'YYYY-MM-DD';
  if (format === 'date-time') return 'YYYY-MM-DDThh:mm:ssZ';
  return undefined;
}
