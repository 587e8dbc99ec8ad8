import { render } from 'preact';
import { useState } from 'preact/hooks';
import { Header, SignIn, preferredLanguage, t, useLanguage, useSession } from '@alert-hub/web';
import '@alert-hub/web/style.css';
import { FlowMatrix, PERIODS, type Period } from './flows';
import { Health } from './health';
import { Refusals } from './refusals';
import { OperationReportPanel } from './report';
import { Tail, Trace } from './trace';

function App() {
  const [lang, setLang] = useLanguage(preferredLanguage());
  const session = useSession('/dashboard');
  const [period, setPeriod] = useState<Period>('all');
  const [type, setType] = useState('');
  const [types, setTypes] = useState<readonly string[]>([]);

  if (session.who === undefined) return <p class="notice">{t('detail.loading')}</p>;
  if (session.who === null)
    return <SignIn title="app.dashboard" help="signin.help.dashboard" onSignIn={session.signIn} />;
  return (
    <>
      <Header
        title="app.dashboard"
        who={session.who}
        lang={lang}
        onLang={setLang}
        onSignOut={() => void session.signOut()}
      />
      <main>
        <div class="filters">
          <label class="field">
            {t('dash.period')}
            <select
              id="period"
              value={period}
              onChange={(e) => setPeriod(e.currentTarget.value as Period)}
            >
              {PERIODS.map((p) => (
                <option key={p} value={p}>
                  {t(`dash.period.${p}`)}
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            {t('col.type')}
            <select id="type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
              <option value="">{t('dash.type.all')}</option>
              {types.map((x) => (
                <option key={x} value={x}>
                  {x}
                </option>
              ))}
            </select>
          </label>
        </div>
        <div class="grid2">
          <FlowMatrix period={period} type={type} onTypes={setTypes} />
          <Refusals period={period} type={type} />
          <Health />
          <Trace />
          <Tail />
          <OperationReportPanel />
        </div>
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
