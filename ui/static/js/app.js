// Standin single-page app: loads the session, then shows either the login
// view or the signed-in home view, and keeps the home view in step with the
// server through the live connection.
//
// Views are cloned from <template> elements in index.html into #app, so only
// the current view's elements exist in the document. All text coming from
// the server is inserted with textContent, never as HTML.

import { about, api, ApiError, fetchSession, login, logout, setCsrfToken } from './api.js';
import { LiveConnection, LiveState } from './live.js';

const SESSION_ENDED_NOTICE = 'Your session ended. Sign in again.';
const SIGNED_OUT_NOTICE = 'You signed out.';

const CONNECTION_LABELS = {
  [LiveState.CONNECTING]: 'Connecting…',
  [LiveState.LIVE]: 'Live',
  [LiveState.RECONNECTING]: 'Reconnecting…',
  [LiveState.OFFLINE]: 'Offline',
};

const CONNECTION_TITLES = {
  [LiveState.CONNECTING]: 'Connecting to live updates.',
  [LiveState.LIVE]: 'Live updates are on.',
  [LiveState.RECONNECTING]: 'The live connection dropped; reconnecting.',
  [LiveState.OFFLINE]: 'No live connection. Changes made elsewhere will not show until it is back.',
};

/** Everything the app knows; views render from it. */
const state = {
  /** @type {'loading'|'login'|'home'|'failure'|null} */
  view: null,
  /** The last GET /api/v1/session answer while signed in. */
  session: null,
  /** @type {LiveConnection|null} */
  live: null,
  connection: LiveState.CONNECTING,
  /** Set while this tab signs out, so the server's own "ended" push is not reported as a surprise. */
  signingOut: false,
  /** Pending session re-check while the live connection is down. */
  sessionCheck: null,
  lastSessionCheck: 0,
};

const root = document.getElementById('app');
const toasts = document.getElementById('toasts');

// ------------------------------------------------------------------ helpers

/** Replaces the current view with a clone of template #tpl-NAME. */
function mount(name) {
  const template = document.getElementById(`tpl-${name}`);
  const fragment = template.content.cloneNode(true);
  root.replaceChildren(fragment);
  state.view = name;
  return root;
}

function slot(scope, name) {
  return scope.querySelector(`[data-slot="${name}"]`);
}

function setText(el, text) {
  if (el) el.textContent = text == null ? '' : String(text);
}

/** Up to two initials for an avatar. */
function initials(name, email) {
  const source = (name || '').trim() || (email || '').split('@')[0] || '?';
  const parts = source.split(/[\s._-]+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : source.slice(0, 2);
  return letters.toUpperCase();
}

function personName(person) {
  if (!person) return '';
  return person.name || person.email || person.id || '';
}

function formatTime(value) {
  if (!value) return '';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/** Puts a button into (or out of) its pending state. */
function setBusy(button, busy, pendingLabel) {
  const label = slot(button, 'label');
  if (busy) {
    button.dataset.idleLabel = label ? label.textContent : '';
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    if (label && pendingLabel) label.textContent = pendingLabel;
  } else {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    if (label && button.dataset.idleLabel) label.textContent = button.dataset.idleLabel;
  }
}

/** Moves keyboard focus to an element, if there is one. */
function focus(el) {
  if (el && typeof el.focus === 'function') el.focus();
}

// ------------------------------------------------------------------- toasts

/**
 * Shows a short message in the corner.
 * @param {string} message
 * @param {{kind?: 'info'|'success'|'warning'|'error', timeout?: number}} [options]
 */
function toast(message, { kind = 'info', timeout = 6000 } = {}) {
  const item = document.createElement('div');
  item.className = `toast toast--${kind}`;
  if (kind === 'error') item.setAttribute('role', 'alert');

  const text = document.createElement('p');
  text.className = 'toast__message';
  text.textContent = message;

  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'btn btn--ghost toast__close';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';

  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    item.classList.add('is-leaving');
    setTimeout(() => item.remove(), 220);
  };
  close.addEventListener('click', dismiss);
  item.append(text, close);
  toasts.append(item);
  if (timeout > 0) {
    timer = setTimeout(dismiss, timeout);
    // Keep it while the pointer or keyboard focus is on it.
    item.addEventListener('mouseenter', () => clearTimeout(timer));
    item.addEventListener('focusin', () => clearTimeout(timer));
    item.addEventListener('mouseleave', () => { timer = setTimeout(dismiss, timeout / 2); });
  }
}

function clearToasts() {
  toasts.replaceChildren();
}

// ------------------------------------------------------------ loading view

function showLoading(message = 'Loading Standin…') {
  const view = mount('loading');
  setText(slot(view, 'message'), message);
  document.title = 'Standin';
}

// ------------------------------------------------------------ failure view

function showFailure(error) {
  const view = mount('failure');
  const unreachable = error instanceof ApiError && error.status === 0;
  setText(slot(view, 'title'), unreachable ? 'Standin is not reachable' : 'Standin could not load');
  setText(slot(view, 'message'), error && error.message ? error.message : 'Something went wrong.');
  document.title = unreachable ? 'Standin · not reachable' : 'Standin · error';
  const retry = view.querySelector('[data-action="retry"]');
  retry.addEventListener('click', () => boot());
  focus(retry);
}

// -------------------------------------------------------------- login view

/**
 * Shows the login form.
 * @param {{notice?: string, email?: string}} [options]
 */
function showLogin({ notice = '', email = '' } = {}) {
  const view = mount('login');
  document.title = 'Sign in · Standin';

  const form = view.querySelector('#login-form');
  const emailInput = view.querySelector('#email');
  const passwordInput = view.querySelector('#password');
  const submit = view.querySelector('#login-submit');
  const errorBox = view.querySelector('#login-error');
  const noticeBox = view.querySelector('#notice');

  if (email) emailInput.value = email;

  // Filled a moment after the view is in the document so screen readers
  // announce it as a status update.
  if (notice) requestAnimationFrame(() => setText(noticeBox, notice));

  const showError = (message, field) => {
    setText(errorBox, message);
    for (const input of [emailInput, passwordInput]) {
      if (input === field) {
        input.setAttribute('aria-invalid', 'true');
        input.setAttribute('aria-describedby', 'login-error');
      } else {
        input.removeAttribute('aria-invalid');
        input.removeAttribute('aria-describedby');
      }
    }
  };
  const clearError = () => showError('', null);

  for (const input of [emailInput, passwordInput]) {
    input.addEventListener('input', () => {
      if (input.getAttribute('aria-invalid') === 'true') {
        input.removeAttribute('aria-invalid');
        input.removeAttribute('aria-describedby');
      }
    });
  }

  // The demo accounts are listed only when the server runs the demo.
  about()
    .then((facts) => {
      if (facts && facts.demo) view.querySelector('#demo-hint').hidden = false;
    })
    .catch(() => {});

  // Demo accounts: choosing one fills the email and moves on to the password.
  for (const button of view.querySelectorAll('[data-email]')) {
    button.addEventListener('click', () => {
      emailInput.value = button.dataset.email;
      clearError();
      focus(passwordInput);
    });
  }

  let pending = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (pending) return;

    const address = emailInput.value.trim();
    const password = passwordInput.value;
    if (!address) {
      showError('Enter your email address.', emailInput);
      focus(emailInput);
      return;
    }
    if (!password) {
      showError('Enter your password.', passwordInput);
      focus(passwordInput);
      return;
    }

    pending = true;
    clearError();
    setText(noticeBox, '');
    setBusy(submit, true, 'Signing in…');
    try {
      await login(address, password);
    } catch (error) {
      pending = false;
      setBusy(submit, false);
      const message = loginErrorMessage(error);
      if (error instanceof ApiError && error.status === 401) {
        showError(message, passwordInput);
        passwordInput.select();
        focus(passwordInput);
      } else {
        showError(message, null);
      }
      return;
    }

    let session;
    try {
      session = await fetchSession();
    } catch (error) {
      pending = false;
      setBusy(submit, false);
      if (error instanceof ApiError && error.status === 401) {
        showError('You were signed in, but the browser did not keep the session. Allow cookies for this site and try again.', null);
      } else {
        showError(error.message || 'Could not load your session. Try again.', null);
      }
      return;
    }
    clearToasts();
    showHome(session, { focusHeading: true });
  });

  focus(email ? passwordInput : emailInput);
}

function loginErrorMessage(error) {
  if (!(error instanceof ApiError)) return 'Something went wrong. Try again.';
  switch (error.status) {
    case 401:
      return 'Wrong email or password.';
    case 429:
      return 'Too many attempts. Try again in a few minutes.';
    default:
      return error.message;
  }
}

// --------------------------------------------------------------- home view

/**
 * Shows (or refreshes) the signed-in view for a session.
 * @param {object} session GET /api/v1/session answer
 * @param {{focusHeading?: boolean}} [options]
 */
function showHome(session, { focusHeading = false } = {}) {
  state.session = session;
  let view = root;
  if (state.view !== 'home') {
    view = mount('home');
    view.querySelector('#logout').addEventListener('click', onLogoutClick);
    const exit = view.querySelector('#impersonation-exit');
    exit.addEventListener('click', () => exitImpersonation(exit));
  }
  renderHome(view, session);
  renderConnection(state.connection);
  startLive();
  if (focusHeading) focus(view.querySelector('#welcome-title'));
}

/** Ends the impersonation and returns to the actor's own console, no sign-in. */
async function exitImpersonation(button) {
  setBusy(button, true, 'Exiting…');
  try {
    await api.delete('/impersonations/current');
    await refreshSession();
  } catch (error) {
    setBusy(button, false);
    toast(error instanceof ApiError ? error.message : 'Could not exit the impersonation. Try again.', { kind: 'error' });
  }
}

function renderHome(view, session) {
  const user = session.user || {};
  const actor = session.actor || user;
  const imp = session.impersonation || null;
  const name = personName(user);

  document.title = imp ? `Acting as ${name} · Standin` : `Standin · ${name}`;

  // Top bar: the effective identity.
  setText(view.querySelector('#whoami'), name);
  setText(view.querySelector('#whoami-role'), user.role || '');
  for (const el of view.querySelectorAll('[data-slot="initials"]')) {
    setText(el, initials(user.name, user.email));
  }

  // Impersonation banner.
  const banner = view.querySelector('#impersonation-banner');
  if (imp) {
    const subject = personName(imp.subject) || name;
    const actorName = personName(imp.actor) || personName(actor);
    setText(slot(banner, 'text'), `Acting as ${subject} — signed in as ${actorName}`);
    const until = formatTime(imp.expires_at);
    setText(slot(banner, 'detail'), until ? ` · ends at ${until}` : '');
    setBusy(view.querySelector('#impersonation-exit'), false);
    banner.hidden = false;
  } else {
    setText(slot(banner, 'text'), '');
    setText(slot(banner, 'detail'), '');
    banner.hidden = true;
  }

  // Welcome card.
  setText(view.querySelector('#welcome-title'), imp ? `Acting as ${name}` : `Signed in as ${name}`);
  setText(
    slot(view, 'subtitle'),
    imp ? 'Everything you do here is done and audited as this user.' : 'Welcome to the Standin support console.',
  );
  setText(slot(view, 'email'), user.email || '—');
  setText(slot(view, 'role'), user.role || '—');

  const status = slot(view, 'status');
  setText(status, user.status || 'active');
  status.classList.toggle('badge--success', (user.status || 'active') === 'active');
  status.classList.toggle('badge--danger', user.status === 'suspended');

  const actorItem = slot(view, 'actor-item');
  if (imp) {
    const who = personName(actor);
    setText(slot(view, 'actor'), actor.role ? `${who} (${actor.role})` : who);
    actorItem.hidden = false;
  } else {
    actorItem.hidden = true;
  }
}

function renderConnection(connState) {
  state.connection = connState;
  const pill = document.getElementById('conn-status');
  if (!pill) return;
  pill.dataset.state = connState;
  pill.title = CONNECTION_TITLES[connState] || '';
  setText(slot(pill, 'label'), CONNECTION_LABELS[connState] || connState);
}

async function onLogoutClick(e) {
  const button = e.currentTarget;
  if (state.signingOut) return;
  state.signingOut = true;
  setBusy(button, true, 'Signing out…');
  try {
    await logout();
  } catch (error) {
    // 401: the session is already gone, which is what we wanted.
    if (!(error instanceof ApiError && error.status === 401)) {
      state.signingOut = false;
      setBusy(button, false);
      toast(`Could not sign out. ${error.message}`, { kind: 'error' });
      return;
    }
  }
  leaveSession(SIGNED_OUT_NOTICE);
}

// ------------------------------------------------------------- live updates

function startLive() {
  if (state.live) return;
  const live = new LiveConnection({
    onState: (connState) => {
      renderConnection(connState);
      if (connState === LiveState.RECONNECTING || connState === LiveState.OFFLINE) {
        // The socket may be down because the session ended while the tab
        // slept; ask the API rather than retrying blindly forever.
        checkSessionSoon();
      }
    },
    onSessionEnded: () => sessionEnded(),
    // Impersonation started or ended in this or another tab: show it.
    onSessionChanged: () => refreshSession(),
    onError: (message) => console.warn('live: server refused a request', message),
  });
  live.subscribe('session', onSessionEvent);
  state.live = live;
  live.start();
}

function stopLive() {
  const live = state.live;
  state.live = null;
  if (live) live.stop();
  state.connection = LiveState.CONNECTING;
}

function onSessionEvent(event) {
  if (!event) return;
  if (event.kind === 'ended') {
    sessionEnded();
    return;
  }
  // Any other change to this session (identity switch, expiry moved, …):
  // reload it so this tab shows the same state as every other.
  refreshSession();
}

let refreshing = null;

/**
 * Reloads the session and re-renders home; coalesces concurrent calls.
 * With settle (the default), a 401 is retried a few times over a second
 * first: right after the session was replaced (impersonation started or
 * ended, here or in another tab), the response carrying the new cookie may
 * still be on its way. A session that really ended still ends.
 */
function refreshSession({ settle = true } = {}) {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      let session;
      for (let attempt = 0; ; attempt += 1) {
        try {
          session = await fetchSession();
          break;
        } catch (error) {
          const retry = settle && attempt < 4 && error instanceof ApiError && error.status === 401;
          if (!retry) throw error;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      state.lastSessionCheck = Date.now();
      if (state.view === 'home' && !state.signingOut) showHome(session);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) sessionEnded();
      // Network trouble: the connection pill already says so.
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Verifies the session at most every few seconds while the socket is down. */
function checkSessionSoon() {
  if (state.sessionCheck || state.view !== 'home') return;
  const wait = Math.max(0, state.lastSessionCheck + 5000 - Date.now());
  state.sessionCheck = setTimeout(() => {
    state.sessionCheck = null;
    if (state.view === 'home' && state.live && state.live.state !== LiveState.LIVE) refreshSession();
  }, wait);
}

/** The server ended this session (sign-out elsewhere, expiry, revocation). */
function sessionEnded() {
  if (state.signingOut || state.view !== 'home') return;
  leaveSession(SESSION_ENDED_NOTICE);
}

/** Drops all signed-in state and returns to the login view with a notice. */
function leaveSession(notice) {
  stopLive();
  clearTimeout(state.sessionCheck);
  state.sessionCheck = null;
  state.session = null;
  state.signingOut = false;
  setCsrfToken('');
  clearToasts();
  showLogin({ notice });
}

// -------------------------------------------------------------------- boot

async function boot() {
  showLoading();
  try {
    const session = await fetchSession();
    showHome(session);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showLogin();
    } else {
      showFailure(error);
    }
  }
}

// A tab restored from the back/forward cache may hold a stale session.
window.addEventListener('pageshow', (e) => {
  if (!e.persisted) return;
  stopLive();
  state.view = null;
  state.session = null;
  boot();
});

boot();
