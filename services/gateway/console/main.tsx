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
import { SendForm } from './send';
import { SentDetail, SentList } from './sent';

type View = 'inbox' | 'send' | 'sent';

function App() {
  const [lang, setLang] = useLanguage(preferredLanguage());
  const session = useSession('/console');
  const [view, setView] = useState<View>('inbox');
  // A received alert is identified by (origin, id); a sent one by its id.
  const [open, setOpen] = useState<
    { kind: 'received' | 'sent'; id: string; origin?: string } | undefined
  >(undefined);
  const roles = (session.who?.['roles'] as string[] | undefined) ?? [];
  const agency = typeof session.who?.['agency'] === 'string' ? session.who['agency'] : '';
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
        {open?.kind === 'received' ? (
          <Detail
            key={`${open.origin ?? ''}/${open.id}`}
            id={open.id}
            {...(open.origin ? { origin: open.origin } : {})}
            agency={agency}
            canReport={roles.includes('submit')}
            onClose={() => setOpen(undefined)}
            onOpenSent={(id) => setOpen({ kind: 'sent', id })}
          />
        ) : open?.kind === 'sent' ? (
          <SentDetail key={open.id} id={open.id} onClose={() => setOpen(undefined)} />
        ) : view === 'inbox' ? (
          <Inbox state={inbox} onOpen={(id, origin) => setOpen({ kind: 'received', id, origin })} />
        ) : view === 'send' ? (
          <SendForm agency={agency} onSent={() => undefined} />
        ) : (
          <SentList onOpen={(id) => setOpen({ kind: 'sent', id })} />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
