import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { callApi } from './api';
import { LANGUAGES, setLanguage, t, type Language, type MessageKey } from './i18n';

/** The signed-in principal as the service describes it. */
export type Principal = Record<string, unknown> & { readonly name: string };

/**
 * The session of an app at `prefix`: undefined while asking the service, null when signed out.
 * The token goes to the service once, in a POST body; the service answers with an HttpOnly
 * cookie, so the page keeps no secret (nothing in storage, nothing in a URL).
 */
export function useSession(prefix: string) {
  const [who, setWho] = useState<Principal | null | undefined>(undefined);
  useEffect(() => {
    void callApi<Principal>(`${prefix}/api/session`).then((r) => setWho(r.ok ? r.body : null));
  }, [prefix]);
  return {
    who,
    signIn: async (token: string): Promise<boolean> => {
      const r = await callApi<Principal>(`${prefix}/api/session`, {
        method: 'POST',
        body: { token },
      });
      if (r.ok) setWho(r.body);
      return r.ok;
    },
    signOut: async (): Promise<void> => {
      await callApi(`${prefix}/api/session`, { method: 'DELETE' });
      setWho(null);
    },
  };
}

/** The language state of an app; `t()` follows it. */
export function useLanguage(initial: Language) {
  const [lang, setLang] = useState<Language>(initial);
  setLanguage(lang);
  return [lang, setLang] as const;
}

export function LanguageSwitch(props: { lang: Language; onChange: (l: Language) => void }) {
  return (
    <label class="lang">
      <span>{t('lang.label')}</span>{' '}
      <select
        id="lang"
        value={props.lang}
        onChange={(e) => props.onChange(e.currentTarget.value as Language)}
      >
        {(Object.keys(LANGUAGES) as Language[]).map((l) => (
          <option key={l} value={l}>
            {LANGUAGES[l]}
          </option>
        ))}
      </select>
    </label>
  );
}

export function SignIn(props: {
  title: MessageKey;
  help: MessageKey;
  onSignIn: (token: string) => Promise<boolean>;
}) {
  const [token, setToken] = useState('');
  const [failed, setFailed] = useState(false);
  return (
    <main class="signin">
      <h1>{t(props.title)}</h1>
      <form
        id="signin"
        onSubmit={(e) => {
          e.preventDefault();
          void props.onSignIn(token).then((ok) => {
            setFailed(!ok);
            if (ok) setToken('');
          });
        }}
      >
        <h2>{t('signin.title')}</h2>
        <label for="token">{t('signin.token')}</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          required
          value={token}
          aria-describedby="token-help"
          aria-invalid={failed}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <p id="token-help" class="help">
          {t(props.help)}
        </p>
        {failed && (
          <p role="alert" class="error">
            {t('signin.failed')}
          </p>
        )}
        <button type="submit">{t('signin.submit')}</button>
      </form>
    </main>
  );
}

export function Header(props: {
  title: MessageKey;
  who: Principal;
  lang: Language;
  onLang: (l: Language) => void;
  onSignOut: () => void;
  children?: ComponentChildren;
}) {
  return (
    <header class="top">
      <h1>{t(props.title)}</h1>
      <nav aria-label="main">{props.children}</nav>
      <div class="who">
        <span>{t('signedin.as', { name: props.who.name })}</span>
        <LanguageSwitch lang={props.lang} onChange={props.onLang} />
        <button type="button" onClick={props.onSignOut}>
          {t('signout')}
        </button>
      </div>
    </header>
  );
}

/** A TLP 2.0 label in FIRST's colours (on black, as the standard prescribes). */
export function TlpLabel(props: { label: string }) {
  const cls = props.label.replace('TLP:', '').replace('+', '-').toLowerCase();
  return <span class={`tlp tlp-${cls}`}>{props.label}</span>;
}

export function Badge(props: { ok: boolean; title: string; children: ComponentChildren }) {
  return (
    <span class={props.ok ? 'badge ok' : 'badge'} title={props.title}>
      {props.children}
    </span>
  );
}
