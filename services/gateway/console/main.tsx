import { render } from 'preact';
import { useState } from 'preact/hooks';
import {
  Header,
  SignIn,
  preferredLanguage,
  t,
  useLanguage,
  useSession,
  type MessageKey,
} from '@alert-hub/web';
import '@alert-hub/web/style.css';
import { Detail } from './detail';
import { Inbox, useInbox } from './inbox';
import { SendForm, SentList, type SentAlert } from './send';

type View = 'inbox' | 'send' | 'sent';

function App() {
  const [lang, setLang] = useLanguage(preferredLanguage());
  const session = useSession('/console');
  const [view, setView] = useState<View>('inbox');
  const [open, setOpen] = useState<string | undefined>(undefined);
  const [openOrigin, setOpenOrigin] = useState<string | undefined>(undefined);
  const [sent, setSent] = useState<SentAlert[]>([]);
  const roles = (session.who?.['roles'] as string[] | undefined) ?? [];
  const inbox = useInbox(session.who != null && roles.includes('read-feed'));

  if (session.who === undefined) return <p class="notice">{t('detail.loading')}</p>;
  if (session.who === null)
    return <SignIn title="app.console" help="signin.help.console" onSignIn={session.signIn} />;
  const tab = (v: View, label: MessageKey) => (
    <button
      type="button"
      id={`nav-${v}`}
      aria-current={view === v && !open ? 'page' : undefined}
      onClick={() => {
        setOpen(undefined);
        setView(v);
      }}
    >
      {t(label)}
    </button>
  );
  return (
    <>
      <Header
        title="app.console"
        who={session.who}
        lang={lang}
        onLang={setLang}
        onSignOut={() => void session.signOut()}
      >
        {roles.includes('read-feed') && tab('inbox', 'nav.inbox')}
        {roles.includes('submit') && tab('send', 'nav.send')}
        {roles.includes('submit') && tab('sent', 'nav.sent')}
      </Header>
      <main>
        {open ? (
          <Detail id={open} origin={openOrigin} onClose={() => setOpen(undefined)} />
        ) : view === 'inbox' ? (
          <Inbox
            state={inbox}
            onOpen={(id, origin) => {
              setOpen(id);
              setOpenOrigin(origin);
            }}
          />
        ) : view === 'send' ? (
          <SendForm
            agency={typeof session.who['agency'] === 'string' ? session.who['agency'] : ''}
            onSent={(s) => setSent((prev) => [s, ...prev])}
          />
        ) : (
          <SentList sent={sent} />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
