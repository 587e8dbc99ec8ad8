import { Fragment } from 'preact';
import { fieldLabel } from '@alert-hub/web';

/**
 * Any JSON value as nested definition lists. Text is rendered as text nodes (Preact escapes it):
 * an alert's free text can never become markup or script.
 */
export function Fields(props: { value: unknown }) {
  const v = props.value;
  if (Array.isArray(v)) {
    const list = v as unknown[];
    if (list.every((x) => typeof x !== 'object' || x === null))
      return <span>{list.map(String).join(', ')}</span>;
    return (
      <ol class="items">
        {list.map((x, i) => (
          <li key={i}>
            <Fields value={x} />
          </li>
        ))}
      </ol>
    );
  }
  if (typeof v === 'object' && v !== null) {
    const entries: [string, unknown][] = Object.entries(v as Record<string, unknown>);
    if (isQuantity(v)) return <span>{`${String(v.value)} ${String(v.unit)}`}</span>;
    return (
      <dl class="fields">
        {entries.map(([k, x]) => (
          <Fragment key={k}>
            <dt>{fieldLabel(k)}</dt>
            <dd data-field={k}>
              <Fields value={x} />
            </dd>
          </Fragment>
        ))}
      </dl>
    );
  }
  // Its own direction (Arabic or Hebrew text right to left), isolated from what is around it.
  return <span dir="auto">{String(v)}</span>;
}

function isQuantity(v: object): v is { value: number; unit: string } {
  const k = Object.keys(v);
  return k.length === 2 && k.includes('value') && k.includes('unit');
}
