// Standin single-page app: loads the session, then shows either the login
// view or the signed-in home view, and keeps the home view in step with the
// server through the live connection.
//
// Views are cloned from <template> elements in index.html into #app, so only
// the current view's elements exist in the document. All text coming from
// the server is inserted with textContent, never as HTML.

import { about, api, ApiError, fetchSession, getCsrfToken, login, logout, setCsrfToken } from './api.js';
import { LiveConnection, LiveState } from './live.js';
import {
  causeWords, errorBlock, formatCountdown, formatDateTime, formatTime, formatTimeSeconds, h, icon, initials, loadingBlock,
  personName, setBusy, setTimeZone, timeZoneName,
} from './dom.js';
import { mountDirectory, mountUserPage } from './views/directory.js';
import { mountBook, mountBookings, mountNotifications, mountProfile } from './views/facility.js';
import { mountActivity } from './views/activity.js';
import { followAlerts } from './views/alerts.js';
import { mountSessionSummary } from './views/sessions.js';
import { mountRequests, showWaiting } from './views/requests.js';
import { mountSettings } from './views/settings.js';
import { mountModerate } from './views/moderate.js';
import { mountSinks } from './views/sinks.js';

const SESSION_ENDED_NOTICE = 'Your session ended. Sign in again.';
const SIGNED_OUT_NOTICE = 'You signed out.';

const CONNECTION_LABELS = {
  [LiveState.CONNECTING]: 'Connecting…',
  [LiveState.LIVE]: 'Live',
  [LiveState.RECONNECTING]: 'Reconnecting…',
  [LiveState.OFFLINE]: 'Offline',
  [LiveState.LIMITED]: 'Too many tabs',
};

const CONNECTION_TITLES = {
  [LiveState.CONNECTING]: 'Connecting to live updates.',
  [LiveState.LIVE]: 'Live updates are on.',
  [LiveState.RECONNECTING]: 'The live connection dropped; reconnecting.',
  [LiveState.OFFLINE]: 'No live connection. Changes made elsewhere will not show until it is back.',
  [LiveState.LIMITED]:
    'No live updates in this tab: you have too many tabs or windows of the console open. Close some; this tab tries again in a minute, or when you come back to it.',
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
  /** identityKey() of the console on screen ('' before the first). */
  identity: '',
  /** What views receive: see startIdentity. */
  ctx: null,
  /** The page shown, and what to call when it goes away. */
  route: '',
  viewCleanup: null,
  /** Banner countdown timer. */
  countdown: null,
  /** {id, cause} of the last impersonation seen ending. */
  lastEnded: null,
  /** The request replacing the session, while one runs (switchIdentity). */
  switching: null,
  /** Settles once the facility's time zone is known (sayTimeZone). */
  zoneKnown: Promise.resolve(),
  /** The sessions running on the signed-in user's own account (watchSessionsOnMe). */
  onMe: null,
  /** Timer hiding the "Back online" note. */
  backOnline: null,
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

/** Moves keyboard focus to an element, if there is one. */
function focus(el) {
  if (el && typeof el.focus === 'function') el.focus();
}

// ------------------------------------------------------------------- toasts

/** At most this many toasts show at once; the others wait their turn. */
const TOASTS_SHOWN = 2;
/** Toasts waiting for room, oldest first: {show} closures. */
const toastQueue = [];

/** Shows the next waiting toast if there is room. */
function showQueuedToast() {
  const shown = toasts.querySelectorAll('.toast:not(.is-leaving)').length;
  if (shown < TOASTS_SHOWN && toastQueue.length) toastQueue.shift()();
}

/**
 * Shows a short message in the corner; when TOASTS_SHOWN are showing, it
 * waits until one goes, so toasts never pile up over the page.
 * @param {string} message
 * @param {{kind?: 'info'|'success'|'warning'|'error', timeout?: number, title?: string, type?: string,
 *   link?: {href: string, text: string}}} [options]
 */
function toast(message, options = {}) {
  toastQueue.push(() => showToast(message, options));
  showQueuedToast();
}

function showToast(message, { kind = 'info', timeout = 6000, title = '', type = '', link = null } = {}) {
  const item = document.createElement('div');
  item.className = `toast toast--${kind}`;
  if (type) item.dataset.type = type;
  if (kind === 'error') item.setAttribute('role', 'alert');

  const text = document.createElement('div');
  text.className = 'toast__message';
  if (title) text.append(h('strong', { class: 'toast__title' }, title));
  text.append(h('span', { class: 'toast__text' }, message));
  if (link) text.append(h('a', { class: 'toast__link', href: link.href, onclick: () => dismiss() }, link.text));

  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'btn btn--ghost toast__close';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';

  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    if (item.classList.contains('is-leaving')) return;
    item.classList.add('is-leaving');
    setTimeout(() => {
      item.remove();
      showQueuedToast();
    }, 220);
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
  toastQueue.length = 0;
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
      // The server says how long to wait; a proxy's 429 may not.
      return error.code === 'too_many_requests' ? error.message : 'Too many attempts. Try again in a few minutes.';
    default:
      return error.message;
  }
}

// --------------------------------------------------------------- home view

/**
 * The pages of the signed-in console. A page is shown when allowed(ctx)
 * says the effective user may use it; otherwise the user's first page is.
 * Pages with a nav label appear in the main navigation.
 */
const ROUTES = [
  { name: 'users', pattern: /^\/users$/, nav: 'Users', allowed: (c) => c.isStaff, mount: mountDirectory },
  { name: 'user', pattern: /^\/users\/([A-Za-z0-9_.:-]+)$/, navAs: 'users', allowed: (c) => c.isStaff, mount: mountUserPage },
  { name: 'activity', pattern: /^\/activity$/, nav: 'Activity', allowed: (c) => c.canReadActivity, mount: mountActivity },
  { name: 'book', pattern: /^\/book$/, nav: 'Book', allowed: () => true, mount: mountBook },
  { name: 'bookings', pattern: /^\/bookings$/, nav: 'My bookings', allowed: () => true, mount: mountBookings },
  { name: 'notifications', pattern: /^\/notifications$/, nav: 'Notifications', allowed: () => true, mount: mountNotifications },
  { name: 'session', pattern: /^\/sessions\/([A-Za-z0-9_.:-]+)$/, navAs: 'notifications', allowed: () => true, mount: mountSessionSummary },
  { name: 'moderate', pattern: /^\/moderate\/([A-Za-z0-9_.:-]+)$/, navAs: 'activity', allowed: (c) => c.isStaff && !c.impersonation, mount: mountModerate },
  { name: 'requests', pattern: /^\/requests$/, nav: 'Requests', allowed: (c) => !c.impersonation, mount: mountRequests },
  { name: 'profile', pattern: /^\/profile$/, nav: 'Profile', allowed: () => true, mount: mountProfile },
  { name: 'settings', pattern: /^\/settings$/, nav: 'Settings', allowed: (c) => c.permissions.settings, mount: mountSettings },
  { name: 'sinks', pattern: /^\/sinks$/, nav: 'Sinks', allowed: (c) => c.permissions.sinks, mount: mountSinks },
];

/** The permissions of a console whose answer has not come (or failed): none. */
const NO_PERMISSIONS = Object.freeze({
  directory: false, check_access: false, impersonate: false, suspend: false,
  activity: 'none', revoke: 'none', policies: false, edit_policies: false,
  settings: false, edit_settings: false, approve: 'none', grant_consent: null, sinks: false, edit_sinks: false,
});

/** Who the session is and acts as: a change of it is a new console. */
function identityKey(session) {
  const imp = session.impersonation;
  return `${session.actor ? session.actor.id : ''}/${session.user ? session.user.id : ''}/${imp ? imp.id : ''}`;
}

/** The first page of a console: the dashboard for staff, the facility app otherwise. */
function defaultPath(ctx) {
  return ctx.isStaff ? '/users' : '/book';
}

/** Where an agent returns when an impersonation ends: the user's page. */
function cameFrom(ctx, imp) {
  const id = imp && imp.subject && imp.subject.id;
  return ctx.isStaff && id ? `/users/${encodeURIComponent(id)}` : defaultPath(ctx);
}

/**
 * Shows (or refreshes) the signed-in view for a session. A new identity
 * (sign-in, impersonation started or ended, here or in another tab)
 * rebuilds the console for it; the same identity only updates the chrome.
 * @param {object} session GET /api/v1/session answer
 * @param {{focusHeading?: boolean}} [options]
 */
function showHome(session, { focusHeading = false } = {}) {
  const previous = state.session;
  state.session = session;
  const key = identityKey(session);
  if (state.view !== 'home') {
    const view = mount('home');
    view.querySelector('#logout').addEventListener('click', onLogoutClick);
    const exit = view.querySelector('#impersonation-exit');
    exit.addEventListener('click', () => exitImpersonation(exit));
    setupNavToggle(view);
    setupDisclosure(view.querySelector('#banner-more'), view.querySelector('#banner-full'));
    setupDisclosure(view.querySelector('#subject-banner-more'), view.querySelector('#subject-banner-full'));
    state.zoneKnown = sayTimeZone();
    state.identity = '';
  }
  renderChrome(session);
  if (key === state.identity && state.live && state.live.running) return;
  if (key === state.identity) {
    // Same person, but the live connection stopped (its old session was
    // replaced): start over with a fresh one.
    const ctx = startIdentity(session);
    ready(ctx).then(() => renderRoute());
    return;
  }

  const wasImpersonating = previous && previous.impersonation && previous.actor && session.actor &&
    previous.actor.id === session.actor.id ? previous.impersonation : null;
  const first = state.identity === '';
  state.identity = key;
  const ctx = startIdentity(session);

  if (wasImpersonating && !session.impersonation) {
    // Back as oneself, on the page of the user one came from (staff), with
    // what happened in words.
    sayImpersonationEnded(session, wasImpersonating, key);
    announce(`Impersonation ended. You are ${personName(session.user)} again.`);
    go(() => cameFrom(ctx, wasImpersonating), { focusHeading: true });
  } else if (session.impersonation && !first) {
    announce(`You are now acting as ${personName(session.user)}.`);
    go(() => defaultPath(ctx), { focusHeading: true });
  } else {
    ready(ctx).then(() => renderRoute({ focusHeading }));
  }
}

/**
 * Tells the agent, back as themself, that the impersonation ended and why.
 * The why comes from the exit's answer or the live event; when the page
 * learned it was itself again before either (a request of its own got
 * there first, and the old live connection was dropped with the event
 * still in it), the ended impersonation's record says.
 * @param {object} session the agent's own session
 * @param {object} imp the impersonation that ended
 * @param {string} key the identity the toast belongs to
 */
async function sayImpersonationEnded(session, imp, key) {
  const known = state.lastEnded && state.lastEnded.id === imp.id ? state.lastEnded : null;
  let cause = known ? known.cause : '';
  let words = known ? known.words : '';
  if (!cause) {
    try {
      const record = await api.get(`/impersonations/${encodeURIComponent(imp.id)}`);
      cause = record.cause || '';
      words = record.ended_words || '';
    } catch {
      // The toast says it ended, without why.
    }
    if (state.identity !== key) return; // another switch since: this toast is stale
  }
  // Said to the agent: their own exit is "you ended it"; anyone else's
  // end names who ended it.
  let why = '';
  if (cause === 'ended_by_actor') why = ': you ended it';
  else if (words || cause) why = `: ${words || causeWords(cause)}`;
  toast(`You are ${personName(session.user)} again. The session acting as ${personName(imp.subject)} ended${why}.`,
    { kind: cause && cause !== 'ended_by_actor' ? 'warning' : 'success', type: 'impersonation.ended', timeout: 10000 });
}

/**
 * Navigates, once the identity's facts are loaded, to path (or to what
 * path() answers then).
 */
function go(path, options) {
  const ctx = state.ctx;
  ready(ctx).then(() => {
    if (ctx !== state.ctx) return;
    if (typeof path === 'function') path = path();
    if (location.hash !== `#${path}`) history.replaceState(null, '', `#${path}`);
    renderRoute(options);
  });
}

function ready(ctx) {
  return ctx.ready.catch(() => {});
}

/**
 * Sets up everything that belongs to one identity: the context views
 * receive, a fresh live connection (its replay positions belong to the
 * identity), notifications and presence.
 */
function startIdentity(session) {
  stopLive();
  if (state.viewCleanup) {
    state.viewCleanup();
    state.viewCleanup = null;
  }
  const content = document.getElementById('content');
  if (content) content.replaceChildren(loadingBlock('Loading your console…'));
  const user = session.user || {};
  const imp = session.impersonation || null;
  const ctx = {
    session,
    user,
    actor: session.actor || user,
    impersonation: imp,
    // What the effective user may do, as the server decides it
    // (GET /api/v1/permissions): nothing until it answers.
    permissions: NO_PERMISSIONS,
    permissionsKnown: false,
    permissionsError: null,
    isStaff: false,
    canReadActivity: false,
    profile: null,
    live: null,
    api,
    toast,
    navigate: (path) => { location.hash = `#${path}`; },
    refreshSession,
    /** Loads the profile again and draws the page again. */
    reloadPage: () => loadProfile(ctx).then(() => { if (ctx === state.ctx) renderRoute(); }),
    switchIdentity,
    csrf: getCsrfToken,
    /** Called, and awaited, before this tab switches identity itself. */
    beforeSwitch: new Set(),
    /** Called when such a switch was refused. */
    switchFailed: new Set(),
    notifications: createNotifications(user),
    presence: createPresence(),
  };
  state.ctx = ctx;
  startLive(ctx);
  followModeration(ctx, imp);
  ctx.notifications.start(ctx);
  watchSessionsOnMe(ctx);
  ctx.ready = Promise.all([
    loadProfile(ctx),
    loadPermissions(ctx),
    // Pages draw their times once the zone to draw them in is known.
    state.zoneKnown,
  ]).finally(() => {
    if (ctx === state.ctx) renderNav();
  });
  renderNav();
  return ctx;
}

/**
 * Asks the server what the identity may do, trying again twice on a
 * failure; when it still fails, ctx.permissionsError says why and the
 * page offers to try again rather than guessing.
 */
async function loadPermissions(ctx) {
  let error = null;
  for (const wait of [0, 500, 1500]) {
    if (wait) await new Promise((resolve) => { setTimeout(resolve, wait); });
    if (ctx !== state.ctx) return;
    try {
      const permissions = await api.get('/permissions');
      ctx.permissions = permissions;
      ctx.permissionsKnown = true;
      ctx.permissionsError = null;
      ctx.isStaff = permissions.directory;
      ctx.canReadActivity = permissions.activity !== 'none';
      if (ctx.isStaff && ctx === state.ctx) ctx.presence.start(ctx);
      // New alerts are told on every page, to those who may see them.
      if (ctx.canReadActivity && ctx === state.ctx) followAlerts(ctx);
      return;
    } catch (err) {
      error = err;
    }
  }
  ctx.permissionsError = error;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const at = raw.indexOf('?');
  const path = at >= 0 ? raw.slice(0, at) : raw;
  return { path: path || '/', query: new URLSearchParams(at >= 0 ? raw.slice(at + 1) : '') };
}

function matchRoute(path) {
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

/** Renders the page the address names, or the first allowed one. */
function renderRoute({ focusHeading = false } = {}) {
  const ctx = state.ctx;
  if (state.view !== 'home' || !ctx) return;
  if (ctx.permissionsError) {
    showPermissionsError(ctx);
    return;
  }
  let { path, query } = parseHash();
  let found = matchRoute(path);
  if (!found || !found.route.allowed(ctx)) {
    path = defaultPath(ctx);
    query = new URLSearchParams();
    history.replaceState(null, '', `#${path}`);
    found = matchRoute(path);
  }
  if (state.viewCleanup) {
    state.viewCleanup();
    state.viewCleanup = null;
  }
  const content = document.getElementById('content');
  content.replaceChildren();
  content.dataset.page = found.route.name;
  state.route = found.route.name;
  renderNav();
  const cleanup = found.route.mount(ctx, content, { params: found.params, query });
  state.viewCleanup = typeof cleanup === 'function' ? cleanup : null;
  if (focusHeading) {
    // A page whose first task is to type (the directory's search) takes
    // the keyboard there; any other page at its heading.
    const first = content.querySelector('[data-autofocus]');
    const heading = content.querySelector('h1');
    if (first) {
      focus(first);
    } else if (heading) {
      heading.setAttribute('tabindex', '-1');
      focus(heading);
    }
  }
  window.scrollTo(0, 0);
}

/**
 * Says the console could not learn what this person may do, and offers
 * to ask again; the address stays as it was, so the page asked for opens
 * once the answer comes.
 */
function showPermissionsError(ctx) {
  if (state.viewCleanup) {
    state.viewCleanup();
    state.viewCleanup = null;
  }
  const content = document.getElementById('content');
  content.dataset.page = 'error';
  state.route = '';
  renderNav();
  const reason = ctx.permissionsError && ctx.permissionsError.message;
  content.replaceChildren(
    h('header', { class: 'page-header' }, h('h1', { class: 'page-header__title' }, 'Your console could not load')),
    errorBlock({
      message: 'The console could not find out what you may do, so it shows nothing it might not allow.',
      reason: reason ? `The server said: ${reason}` : '',
    }, async (event) => {
      event.currentTarget.disabled = true;
      content.replaceChildren(loadingBlock('Trying again…'));
      ctx.permissionsError = null;
      await loadPermissions(ctx);
      if (ctx === state.ctx) renderRoute({ focusHeading: true });
    }));
}

window.addEventListener('hashchange', () => {
  if (state.view === 'home' && state.ctx) ready(state.ctx).then(() => renderRoute({ focusHeading: true }));
});

const NAV_ICONS = {
  users: 'users', activity: 'activity', book: 'microscope', bookings: 'calendar', notifications: 'bell', requests: 'shield', profile: 'user',
  settings: 'sliders', sinks: 'send',
};

function renderNav() {
  const nav = document.getElementById('main-nav');
  const ctx = state.ctx;
  if (!nav || !ctx) return;
  const current = ROUTES.find((r) => r.name === state.route);
  const active = current ? current.navAs || current.name : '';
  // Until the server says what this person may do, no page is offered:
  // a link drawn now could be one they may not use, or be swapped away.
  const shown = ctx.permissionsKnown ? ROUTES.filter((r) => r.nav && r.allowed(ctx)) : [];
  // The links are rebuilt only when the set of pages changes, so a link
  // being clicked or focused is never swapped for another element.
  const signature = shown.map((r) => r.name).join(' ');
  if (nav.dataset.signature !== signature) {
    nav.dataset.signature = signature;
    nav.replaceChildren(...shown.map((route) => h('a', { class: 'nav__link', href: `#/${route.name}`, id: `nav-${route.name}` },
      iconFor(NAV_ICONS[route.name]),
      h('span', { class: 'nav__label' }, route.nav),
      route.name === 'notifications' ? h('span', { class: 'nav__count', id: 'unread-count', hidden: true }) : null,
      route.name === 'requests' ? h('span', { class: 'nav__count', id: 'requests-count', hidden: true }) : null)));
  }
  for (const link of nav.querySelectorAll('.nav__link')) {
    if (link.id === `nav-${active}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const unread = ctx.notifications.unread();
  // The menu button carries the count too, for when the navigation is folded.
  for (const count of [nav.querySelector('#unread-count'), document.getElementById('nav-toggle-count')]) {
    if (!count) continue;
    count.hidden = unread === 0;
    count.replaceChildren(String(unread), h('span', { class: 'visually-hidden' }, ' unread'));
  }
  // The Requests link counts the requests waiting for this person's answer.
  showWaiting(ctx, nav.querySelector('#nav-requests'));
}

function iconFor(name) {
  return icon(name, 'icon nav__icon');
}

/**
 * Runs a request that replaces the session (start or end impersonation);
 * session refreshes wait for it, so none goes out with the old token.
 */
function switchIdentity(request) {
  const pending = Promise.resolve().then(request);
  state.switching = pending;
  const done = () => {
    if (state.switching === pending) state.switching = null;
  };
  pending.then(done, done);
  return pending;
}

/** Says something to screen readers without showing it. */
function announce(message) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.textContent = '';
  requestAnimationFrame(() => { el.textContent = message; });
}

/** Ends the impersonation and returns to the actor's own console, no sign-in. */
async function exitImpersonation(button) {
  setBusy(button, true, 'Exiting…');
  try {
    const ended = await switchIdentity(() => api.delete('/impersonations/current'));
    if (ended && ended.id) state.lastEnded = { id: ended.id, cause: ended.cause, words: ended.ended_words || '' };
    if (ended && ended.csrf_token) setCsrfToken(ended.csrf_token);
    await refreshSession();
  } catch (error) {
    setBusy(button, false);
    if (error instanceof ApiError && (error.status === 409 || error.status === 404)) {
      // Already over (another tab, a manager, the clock): catch up.
      await refreshSession();
      return;
    }
    toast(error instanceof ApiError ? error.message : 'Could not exit the impersonation. Try again.', { kind: 'error' });
  }
}

/** The top bar and the banner: who is signed in, and as whom they act. */
function renderChrome(session) {
  const user = session.user || {};
  const actor = session.actor || user;
  const imp = session.impersonation || null;
  const name = personName(user);

  document.title = imp ? `Acting as ${name} · Standin` : `Standin · ${name}`;
  document.body.classList.toggle('is-impersonating', Boolean(imp));

  setText(document.getElementById('whoami'), name);
  const role = user.role ? user.role[0].toUpperCase() + user.role.slice(1) : '';
  setText(document.getElementById('whoami-role'), imp ? `${role || 'User'} · via ${personName(actor)}` : role);
  for (const el of document.querySelectorAll('#home .user-chip [data-slot="initials"]')) {
    setText(el, initials(user.name, user.email));
  }

  const banner = document.getElementById('impersonation-banner');
  if (imp) {
    const subject = personName(imp.subject) || name;
    const actorName = personName(imp.actor) || personName(actor);
    const who = `Acting as ${subject} — signed in as ${actorName}`;
    setText(document.getElementById('banner-who'), who);
    const parts = [];
    if (imp.reason) parts.push(`Reason: ${imp.reason}`);
    if (imp.ticket) parts.push(`Ticket ${imp.ticket}`);
    const until = formatTime(imp.expires_at);
    if (until) parts.push(`ends at ${until}`);
    setText(document.getElementById('banner-reason'), parts.join(' · '));
    // One line on screen; the whole of it on hover and behind Details.
    document.getElementById('banner-line').title = [who, ...parts].join('\n');
    document.getElementById('banner-full').replaceChildren(h('dl', { class: 'banner__facts' },
      h('div', null, h('dt', null, 'Acting as'), h('dd', null, subject)),
      h('div', null, h('dt', null, 'Signed in as'), h('dd', null, actorName)),
      imp.reason ? h('div', null, h('dt', null, 'Reason'), h('dd', { id: 'banner-full-reason' }, imp.reason)) : null,
      imp.ticket ? h('div', null, h('dt', null, 'Ticket'), h('dd', null, imp.ticket)) : null,
      h('div', null, h('dt', null, 'Ends'), h('dd', null, formatDateTime(imp.expires_at)))));
    renderModeration(imp);
    setBusy(document.getElementById('impersonation-exit'), false);
    banner.hidden = false;
    startCountdown(imp);
  } else {
    banner.hidden = true;
    stopCountdown();
  }
}

/**
 * A moderated session's line in the agent's banner: paused while no
 * moderator watches (every request is refused meanwhile), or who
 * moderates it.
 */
function renderModeration(imp) {
  const line = document.getElementById('banner-moderation');
  if (!line) return;
  const m = imp.moderated ? imp.moderation : null;
  line.hidden = !m;
  document.getElementById('impersonation-banner').dataset.moderation = m ? (m.paused ? 'paused' : 'running') : '';
  if (!m) return;
  if (m.paused) {
    const ends = m.ends_at ? ` If none does, it ends at ${formatTimeSeconds(m.ends_at)}.` : '';
    line.replaceChildren(icon('pause', 'icon icon--sm'),
      h('strong', null, ' Paused: '), `no moderator is watching, so your requests are refused. The session resumes as soon as one opens it.${ends}`);
  } else {
    line.replaceChildren(icon('eye', 'icon icon--sm'),
      ` Moderated by ${(m.moderators || []).map(personName).join(', ')}: they see what you do as you do it.`);
  }
}

/** Loads the effective user's profile into ctx; a refusal is kept for the pages to show. */
function loadProfile(ctx) {
  return api.get('/profile').then((profile) => {
    ctx.profile = profile;
    ctx.profileError = null;
  }).catch((error) => { ctx.profileError = error; });
}

/**
 * Follows the agent's own moderated session: each pause and resumption
 * refreshes the banner (and the pages' data once it runs again).
 */
function followModeration(ctx, imp) {
  if (!imp || !imp.moderated) return;
  ctx.live.subscribe(`impersonation:${imp.id}`, (ev) => {
    if (ev.type === 'impersonation.paused') refreshSession();
    if (ev.type !== 'impersonation.resumed') return;
    // Running again: what the pause refused is loaded again.
    refreshSession();
    loadProfile(ctx).then(() => { if (ctx === state.ctx) renderRoute(); });
  });
}

/** A button that shows and hides panel, saying which with aria-expanded. */
function setupDisclosure(button, panel) {
  if (!button || !panel) return;
  const set = (open) => {
    button.setAttribute('aria-expanded', String(open));
    panel.hidden = !open;
  };
  button.addEventListener('click', () => set(button.getAttribute('aria-expanded') !== 'true'));
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      set(false);
      button.focus();
    }
  });
}

/**
 * On narrow screens the navigation folds into a menu button: it opens
 * the list, and choosing a page (or Escape, or a click elsewhere) closes it.
 */
function setupNavToggle(view) {
  const button = view.querySelector('#nav-toggle');
  const nav = view.querySelector('#main-nav');
  if (!button || !nav) return;
  const set = (open) => {
    button.setAttribute('aria-expanded', String(open));
    nav.classList.toggle('is-open', open);
  };
  button.addEventListener('click', () => set(button.getAttribute('aria-expanded') !== 'true'));
  nav.addEventListener('click', (e) => {
    if (e.target.closest('a')) set(false);
  });
  nav.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && button.getAttribute('aria-expanded') === 'true') {
      set(false);
      button.focus();
    }
  });
  document.addEventListener('pointerdown', (e) => {
    if (button.isConnected && button.getAttribute('aria-expanded') === 'true' && !nav.contains(e.target) && !button.contains(e.target)) set(false);
  });
}

/**
 * Learns the facility's time zone (GET /api/v1/about) and says, in the
 * footer, which zone every time on the console is in; without one the
 * browser's zone is used, and the footer says so.
 */
async function sayTimeZone() {
  let zone = '';
  try {
    const facts = await about();
    zone = facts && facts.time_zone;
  } catch {
    // The browser's zone, said as such.
  }
  const facility = setTimeZone(zone);
  const note = document.getElementById('time-zone-note');
  setText(note, facility ? `Times in ${timeZoneName()} (the facility's time zone)` : `Times in ${timeZoneName()} (this browser's time zone)`);
  if (note) note.dataset.zone = timeZoneName();
}

/** Ticks the banner's countdown; at zero, asks the server for the new state. */
function startCountdown(imp) {
  stopCountdown();
  const clock = document.getElementById('banner-countdown');
  const expires = new Date(imp.expires_at).getTime();
  let asked = 0;
  const tick = () => {
    const left = expires - Date.now();
    if (Number.isNaN(left)) {
      setText(clock, '');
      return;
    }
    setText(clock, left > 0 ? `${formatCountdown(left)} left` : 'Ending…');
    clock.classList.toggle('is-urgent', left < 60000);
    if (left <= 0 && Date.now() - asked > 5000) {
      // The server ends it and pushes the change; ask too, in case the
      // push is delayed.
      asked = Date.now();
      refreshSession();
    }
  };
  tick();
  state.countdown = setInterval(tick, 1000);
}

function stopCountdown() {
  clearInterval(state.countdown);
  state.countdown = null;
}

function renderConnection(connState) {
  const was = state.connection;
  state.connection = connState;
  const pill = document.getElementById('conn-status');
  if (!pill) return;
  pill.dataset.state = connState;
  pill.title = CONNECTION_TITLES[connState] || '';
  setText(slot(pill, 'label'), CONNECTION_LABELS[connState] || connState);
  renderConnectionBanner(connState, was);
}

/** How long "Back online" stays after the connection returns. */
const BACK_ONLINE_MS = 4000;

/**
 * Says in words, above the page, that the server is out of reach and
 * nothing is lost, and then that it is back.
 */
function renderConnectionBanner(connState, was) {
  const banner = document.getElementById('conn-banner');
  if (!banner) return;
  const down = connState === LiveState.RECONNECTING || connState === LiveState.OFFLINE;
  const showingBack = banner.dataset.state === 'back' && !banner.hidden;
  if (connState === LiveState.LIVE && showingBack) return; // its timer hides it
  clearTimeout(state.backOnline);
  if (down) {
    banner.dataset.state = 'down';
    setText(document.getElementById('conn-banner-text'), 'Reconnecting… your work is safe. Changes made elsewhere show once the server answers again.');
    banner.hidden = false;
  } else if (connState === LiveState.LIVE && (was === LiveState.RECONNECTING || was === LiveState.OFFLINE)) {
    banner.dataset.state = 'back';
    setText(document.getElementById('conn-banner-text'), 'Back online.');
    banner.hidden = false;
    state.backOnline = setTimeout(() => { banner.hidden = true; }, BACK_ONLINE_MS);
  } else {
    banner.hidden = true;
  }
}

/**
 * Once the server answers again, errors it caused while away are stale:
 * a region with a "Try again" loads again, other error messages go, and
 * so do error toasts.
 */
function clearStaleErrors() {
  const content = document.getElementById('content');
  if (!content) return;
  for (const block of content.querySelectorAll('.error-block')) {
    const retry = block.querySelector('button');
    if (retry) retry.click();
    else block.remove();
  }
  for (const item of toasts.querySelectorAll('.toast--error')) item.remove();
  showQueuedToast();
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

// ------------------------------------------------------------ notifications

/**
 * The effective user's notifications: the newest page, the unread count
 * (read up to a seq remembered per user in this browser) and the live
 * stream, which raises a toast for each new one.
 */
function createNotifications(user) {
  const storageKey = `standin.notifications.read.${user.id}`;
  const listeners = new Set();
  const store = {
    items: [],
    nextCursor: '',
    loaded: false,
    error: null,
    readSeq: Number(localStorage.getItem(storageKey) || 0),
    unread() {
      return store.items.filter((n) => n.seq > store.readSeq).length;
    },
    /** Marks everything shown as read. */
    markRead() {
      const top = store.items.reduce((m, n) => Math.max(m, n.seq || 0), store.readSeq);
      store.readSeq = top;
      try {
        localStorage.setItem(storageKey, String(top));
      } catch {
        // Private mode: the count resets on reload, nothing worse.
      }
      renderNav();
    },
    on(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    emit(change) {
      for (const fn of [...listeners]) fn(change);
      renderNav();
    },
    async start(ctx) {
      try {
        const page = await api.get('/notifications', { query: { limit: 20 } });
        store.items = page.items || [];
        store.nextCursor = page.next_cursor || '';
        store.error = null;
      } catch (error) {
        store.error = error;
      }
      store.loaded = true;
      if (ctx !== state.ctx) return;
      const baseline = store.items.reduce((m, n) => Math.max(m, n.seq || 0), 0);
      ctx.live.subscribe('notifications', (note) => {
        if (!note || store.items.some((n) => n.id === note.id)) return;
        store.items.unshift(note);
        store.emit({ added: note });
        // The inbox itself shows it as it comes: no toast over the list
        // being read.
        if (/^#\/notifications(?:[/?]|$)/.test(location.hash)) return;
        // Nor over the requests page, which shows a request's news itself.
        if (/^request\./.test(note.type || '') && /^#\/requests(?:[/?]|$)/.test(location.hash)) return;
        toast(note.body || note.title, {
          title: note.title,
          kind: note.type === 'impersonation.started' ? 'warning' : 'info',
          type: note.type,
          timeout: 15000,
          link: noteLink(note),
        });
      }, { afterSeq: baseline });
      store.emit({ loaded: true });
    },
    async more() {
      if (!store.nextCursor) return;
      const page = await api.get('/notifications', { query: { limit: 20, cursor: store.nextCursor } });
      store.items.push(...(page.items || []));
      store.nextCursor = page.next_cursor || '';
      store.emit({ more: true });
    },
  };
  return store;
}

/** Where a notification's toast leads: a session's summary, or the requests. */
function noteLink(note) {
  if (note.type === 'impersonation.ended' && note.impersonation_id) {
    return { href: `#/sessions/${encodeURIComponent(note.impersonation_id)}`, text: 'See what was done in your name' };
  }
  if (note.type === 'moderation.needed' && note.impersonation_id) {
    return { href: `#/moderate/${encodeURIComponent(note.impersonation_id)}`, text: 'Moderate the session' };
  }
  if (/^request\.(pending|approved)$/.test(note.type || '')) {
    return { href: '#/requests', text: 'Open requests' };
  }
  return null;
}

// ------------------------------------------------- sessions on my account

/**
 * Keeps the banner that tells the signed-in user a support session runs
 * on their account: loaded from GET /impersonations?active=true, shown at
 * once when the started notification arrives, gone when the ended one
 * does, and asked again after the live connection comes back. Not in an
 * agent's console while impersonating: that console has its own banner.
 */
function watchSessionsOnMe(ctx) {
  const watch = { items: [], timer: null, asked: 0 };
  clearSubjectBanner();
  state.onMe = null;
  if (ctx.impersonation) return;
  state.onMe = watch;
  watch.load = async () => {
    watch.asked = Date.now();
    try {
      const page = await api.get('/impersonations', { query: { active: 'true' } });
      if (ctx !== state.ctx) return;
      // Staff see others' sessions in this list too: the banner is
      // about the person's own account only.
      watch.items = (page.items || []).filter((i) => i.subject && i.subject.id === ctx.user.id);
    } catch {
      return; // what shows stays; the next reconnect asks again
    }
    renderSubjectBanner(ctx, watch);
  };
  ctx.notifications.on((change) => {
    const note = change && change.added;
    if (!note || ctx !== state.ctx || !note.impersonation_id) return;
    if (note.type === 'impersonation.started' && !watch.items.some((i) => i.id === note.impersonation_id)) {
      watch.items.push({ id: note.impersonation_id, actor: { name: note.actor_name }, reason: note.reason, expires_at: note.until });
    } else if (note.type === 'impersonation.ended') {
      watch.items = watch.items.filter((i) => i.id !== note.impersonation_id);
    }
    renderSubjectBanner(ctx, watch);
    watch.load();
  });
  watch.load();
}

function clearSubjectBanner() {
  const watch = state.onMe;
  if (watch) clearInterval(watch.timer);
  const banner = document.getElementById('subject-banner');
  if (banner) banner.hidden = true;
  document.body.classList.remove('is-watched');
}

/** Draws the first running session on the user's account, or hides the banner. */
function renderSubjectBanner(ctx, watch) {
  const banner = document.getElementById('subject-banner');
  if (!banner) return;
  clearInterval(watch.timer);
  const imp = watch.items[0];
  banner.hidden = !imp;
  document.body.classList.toggle('is-watched', Boolean(imp));
  if (!imp) return;
  banner.dataset.impersonationId = imp.id;
  const note = ctx.notifications.items.find((n) => n.impersonation_id === imp.id && n.actor_email);
  const name = personName(imp.actor) || 'Someone from support';
  const who = note ? `${name} (${note.actor_email})` : name;
  const words = [`${who} is acting as you`];
  if (imp.reason) words.push(`Reason: ${imp.reason}`);
  if (imp.ticket) words.push(`Ticket ${imp.ticket}`);
  if (imp.expires_at) words.push(`until ${formatTime(imp.expires_at)}`);
  if (watch.items.length > 1) words.push(`and ${watch.items.length - 1} more`);
  const text = document.getElementById('subject-banner-text');
  setText(text, words.join(' · '));
  text.parentElement.title = words.join('\n');
  document.getElementById('subject-banner-full').replaceChildren(h('dl', { class: 'banner__facts' },
    h('div', null, h('dt', null, 'Who'), h('dd', null, who)),
    imp.reason ? h('div', null, h('dt', null, 'Why'), h('dd', { id: 'subject-banner-reason' }, imp.reason)) : null,
    imp.ticket ? h('div', null, h('dt', null, 'Ticket'), h('dd', null, imp.ticket)) : null,
    imp.expires_at ? h('div', null, h('dt', null, 'Until'), h('dd', null, formatDateTime(imp.expires_at))) : null,
    h('div', null, h('dt', null, 'What it means'), h('dd', null,
      'They see the app as you do and act with your permissions only; everything is recorded, and you get a summary when it ends.'))));
  const clock = document.getElementById('subject-banner-countdown');
  const expires = new Date(imp.expires_at).getTime();
  const tick = () => {
    const left = expires - Date.now();
    setText(clock, Number.isNaN(left) ? '' : left > 0 ? `${formatCountdown(left)} left` : 'Ending…');
    // Past its end the server ends it and says so; ask too, in case.
    if (left <= 0 && Date.now() - watch.asked > 5000) watch.load();
  };
  tick();
  watch.timer = setInterval(tick, 1000);
}

// ----------------------------------------------------------------- presence

/** Who is looking at which user, and who holds whom, for support staff. */
function createPresence() {
  const listeners = new Set();
  const store = {
    state: { viewers: [], holds: [] },
    on(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    start(ctx) {
      ctx.live.subscribe('presence', (ev) => {
        store.state = { viewers: ev.viewers || [], holds: ev.holds || [], change: ev.change || null };
        for (const fn of [...listeners]) fn(store.state);
      });
    },
    /** Other people viewing user id (not the signed-in person). */
    viewersOf(userId, selfId) {
      return store.state.viewers.filter((v) => v.user && v.user.id === userId && v.viewer && v.viewer.id !== selfId);
    },
    holdOf(userId) {
      return store.state.holds.find((hold) => hold.user && hold.user.id === userId) || null;
    },
  };
  return store;
}

// ------------------------------------------------------------- live updates

function startLive(ctx) {
  if (state.live) return;
  const live = new LiveConnection({
    onState: (connState) => {
      if (live !== state.live) return;
      const was = state.connection;
      renderConnection(connState);
      if (connState === LiveState.RECONNECTING || connState === LiveState.OFFLINE) {
        // The socket may be down because the session ended while the tab
        // slept; ask the API rather than retrying blindly forever.
        checkSessionSoon();
      } else if (connState === LiveState.LIVE && (was === LiveState.RECONNECTING || was === LiveState.OFFLINE)) {
        // Back after a gap: what changed meanwhile (an impersonation that
        // ran out while the server restarted) was pushed to no one.
        refreshSession();
        if (state.onMe && state.onMe.load) state.onMe.load();
        clearStaleErrors();
      }
    },
    // The server says the socket's session ended. A session replaced by a
    // new one (impersonation started or ended) looks the same to an old
    // socket, so the API decides: signed out only if it says so.
    onSessionEnded: () => {
      if (live === state.live) refreshSession();
    },
    // Impersonation started or ended in this or another tab: show it.
    onSessionChanged: () => {
      if (live === state.live) refreshSession();
    },
    onError: (message) => console.warn('live: server refused a request', message),
  });
  live.subscribe('session', onSessionEvent);
  state.live = live;
  ctx.live = live;
  renderConnection(LiveState.CONNECTING);
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
  if (event.type === 'impersonation.ended' && event.impersonation) {
    state.lastEnded = { id: event.impersonation.id, cause: event.cause, words: event.ended_words || '' };
  }
  // The session switched identity (here or in another tab): reload it so
  // this tab shows the same state as every other.
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
      // While this tab switches identity, the old session token is being
      // replaced: a request carrying it would only be refused.
      while (state.switching) await state.switching.catch(() => {});
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
  stopCountdown();
  clearSubjectBanner();
  state.onMe = null;
  if (state.viewCleanup) {
    state.viewCleanup();
    state.viewCleanup = null;
  }
  state.ctx = null;
  state.identity = '';
  document.body.classList.remove('is-impersonating');
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
  state.identity = '';
  boot();
});

boot();
