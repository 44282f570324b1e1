// Requests to act as someone (#/requests): the ones waiting for the
// viewer's answer (a user's consent, an approver's four eyes), the
// viewer's own requests with their state live, and the user's consent
// ahead of time ("support may act as me for the next 24 hours"). The
// impersonate dialog uses waitForAnswer when the target's mode needs an
// answer first.

import { ApiError } from '../api.js';
import {
  busyButton, emptyState, errorBlock, formatCountdown, h, icon, loadingBlock, personName, replace, setBusy, timeEl,
} from '../dom.js';

/** How long a consent grant may last, as the control offers it. */
const GRANT_HOURS = [
  { hours: 1, label: '1 hour' },
  { hours: 4, label: '4 hours' },
  { hours: 24, label: '24 hours' },
  { hours: 72, label: '3 days' },
  { hours: 168, label: '7 days' },
];

/** Mounts the requests page into root. */
export function mountRequests(ctx, root) {
  let stopped = false;
  const toAnswer = h('div', { id: 'requests-to-answer', class: 'stack' }, loadingBlock('Loading requests…'));
  const mine = h('div', { id: 'requests-mine', class: 'stack' });
  const grant = h('div', { id: 'consent-grant' });
  const canGrant = !ctx.impersonation && ctx.permissions.grant_consent && ctx.permissions.grant_consent.allowed;
  // Element.append writes a null as the text "null": sections this
  // person has no use for are left out.
  root.append(...[
    h('header', { class: 'page-header' },
      h('p', { class: 'card__eyebrow' }, 'Support access'),
      h('h1', { class: 'page-header__title' }, 'Requests'),
      h('p', { class: 'page-header__subtitle' }, 'Requests to act as someone that wait for an answer, and who may act as you.')),
    h('section', { class: 'card', 'aria-labelledby': 'requests-to-answer-title' },
      h('h2', { class: 'card__title', id: 'requests-to-answer-title' }, 'Waiting for your answer'),
      toAnswer),
    // Requests of one's own are for those who may impersonate.
    ctx.permissions.impersonate ? h('section', { class: 'card', 'aria-labelledby': 'requests-mine-title' },
      h('h2', { class: 'card__title', id: 'requests-mine-title' }, 'Your requests'),
      mine) : null,
    canGrant ? h('section', { class: 'card', 'aria-labelledby': 'consent-grant-title' },
      h('h2', { class: 'card__title', id: 'consent-grant-title' }, 'Access to your account'),
      grant) : null,
  ].filter(Boolean));

  const me = ctx.user.id;
  const requests = feedFor(ctx);
  const load = () => requests.refresh();
  // Drawn again only when what the server says changed, so a note being
  // typed survives reads that bring nothing new.
  let drawn = '';
  const draw = () => {
    if (stopped) return;
    if (requests.error) {
      drawn = '';
      replace(toAnswer, errorBlock(requests.error, load));
      return;
    }
    const items = requests.items;
    if (!items || JSON.stringify(items) === drawn) return;
    drawn = JSON.stringify(items);
    renderToAnswer(ctx, toAnswer, waitingFor(ctx, items), load);
    renderMine(ctx, mine, items.filter((r) => r.actor.id === me), load);
  };
  const offRequests = requests.on(draw);
  draw(); // what the console knows already, while it asks again
  const loadGrant = canGrant ? () => renderGrant(ctx, grant, () => !stopped) : () => {};
  load();
  loadGrant();
  const ticker = setInterval(() => tickCountdowns(root), 1000);
  const off = ctx.notifications.on((change) => {
    const note = change.added;
    if (note && note.type === 'impersonation.ended') loadGrant();
  });
  return () => {
    stopped = true;
    clearInterval(ticker);
    offRequests();
    off();
  };
}

/** The requests among items that wait for the viewer's answer: pending, and not their own. */
function waitingFor(ctx, items) {
  return items.filter((r) => r.actor.id !== ctx.user.id && r.status === 'pending');
}

/**
 * The requests the signed-in person sees (GET /impersonations/requests),
 * for the page and for the count on the navigation's Requests link. It is
 * read again on each request notification (a request created, answered,
 * withdrawn or expired), when a shown request's time runs out (an
 * approver is not told when another answers or the time runs out), and
 * when the tab comes back into view. One console (identity) has one; a
 * new console's replaces the last, and one nothing shows any more stops.
 */
let feed = null;

/** The feed of ctx's console, started if it is not yet. */
function feedFor(ctx) {
  if (feed && feed.ctx === ctx) return feed;
  if (feed) feed.stop();
  feed = createFeed(ctx);
  return feed;
}

function createFeed(ctx) {
  const listeners = new Set();
  let asked = 0; // the number of the last read asked for
  let held = 0; // the number of the read whose answer is held
  let timer = null;
  let stopped = false;
  const f = {
    ctx,
    /** The last answer's requests: null before the first. */
    items: null,
    /** Why the last read failed, or null. */
    error: null,
    /** The Requests link the count is drawn on, or null. */
    link: null,
    on(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    async refresh() {
      if (stopped) return;
      const n = ++asked;
      let items = null;
      let error = null;
      try {
        const page = await ctx.api.get('/impersonations/requests');
        items = page.items || [];
      } catch (err) {
        error = err;
      }
      // An answer older than the one held says less than it.
      if (stopped || n < held) return;
      held = n;
      if (items) f.items = items;
      f.error = error;
      schedule();
      drawWaiting(f);
      for (const fn of [...listeners]) fn(f);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      offNotes();
      document.removeEventListener('visibilitychange', onVisible);
      if (feed === f) feed = null;
    },
  };
  /** Reads again unless nothing shows the requests any more. */
  const again = () => {
    if (!listeners.size && !(f.link && f.link.isConnected)) f.stop();
    else f.refresh();
  };
  /** Reads again a second after the first pending request expires or approved one must start. */
  const schedule = () => {
    clearTimeout(timer);
    const ends = (f.items || []).map((r) => Date.parse(r.status === 'approved' ? r.start_by : r.expires_at)).filter((t) => !Number.isNaN(t));
    if (!ends.length) return;
    const wait = Math.min(Math.max(0, Math.min(...ends) - Date.now()) + 1000, 10 * 60 * 1000);
    timer = setTimeout(again, wait);
  };
  const onVisible = () => {
    if (document.visibilityState === 'visible') again();
  };
  const offNotes = ctx.notifications.on((change) => {
    const note = change && change.added;
    if (note && /^request\./.test(note.type || '')) again();
  });
  document.addEventListener('visibilitychange', onVisible);
  return f;
}

/**
 * Shows on link (the navigation's Requests link) how many requests wait
 * for the signed-in person's answer: a badge, hidden at 0, whose words
 * for screen readers make the link's name "Requests, 2 waiting for your
 * answer" (words inside the link, not an aria-label, so that the name
 * keeps the text on screen, as speech input needs). The navigation
 * calls it each time it is drawn; a null link (no Requests page for this
 * console) shows nothing.
 */
export function showWaiting(ctx, link) {
  if (!link) {
    if (feed && feed.ctx !== ctx) feed.stop();
    if (feed) feed.link = null;
    return;
  }
  const fresh = !feed || feed.ctx !== ctx;
  const f = feedFor(ctx);
  f.link = link;
  drawWaiting(f);
  if (fresh) f.refresh();
}

/** Draws the count of the requests waiting on the feed's link. */
function drawWaiting(f) {
  const link = f.link;
  const badge = link && link.querySelector('.nav__count');
  if (!badge) return;
  const n = f.items ? waitingFor(f.ctx, f.items).length : 0;
  badge.hidden = n === 0;
  badge.replaceChildren(
    h('span', { class: 'visually-hidden' }, ', '),
    n > 99 ? '99+' : String(n),
    h('span', { class: 'visually-hidden' }, ' waiting for your answer'));
  if (n) link.title = n === 1 ? '1 request waits for your answer' : `${n} requests wait for your answer`;
  else link.removeAttribute('title');
}

/** Updates every countdown under root: "in 4:59", then "now". */
function tickCountdowns(root) {
  for (const el of root.querySelectorAll('[data-until]')) {
    const left = Date.parse(el.dataset.until) - Date.now();
    el.textContent = left > 0 ? formatCountdown(left) : '0:00';
  }
}

/** A countdown to when, updated by tickCountdowns. */
function countdown(when, id) {
  const left = Date.parse(when) - Date.now();
  return h('span', { class: 'countdown', 'data-until': when, id, role: 'timer', 'aria-live': 'off' },
    left > 0 ? formatCountdown(left) : '0:00');
}

/** Words for who must answer r. */
function waitingWords(r) {
  if (r.mode === 'consent') return `Waiting for ${personName(r.subject)}'s consent`;
  const n = r.approvals_needed || 1;
  return `Waiting for approval: ${r.approvals.length} of ${n}`;
}

/** The facts of a request: why, how long, until when, approvals. */
function requestFacts(r, idPrefix) {
  return h('dl', { class: 'facts request-card__facts' },
    h('div', null, h('dt', null, 'Reason'), h('dd', null, r.reason, r.ticket ? ` (ticket ${r.ticket})` : '')),
    h('div', null, h('dt', null, 'For'), h('dd', null, `${r.minutes} minutes`)),
    r.status === 'approved'
      ? h('div', null, h('dt', null, 'Start within'), h('dd', null, countdown(r.start_by, `${idPrefix}-left`)))
      : h('div', null, h('dt', null, 'Expires in'), h('dd', null, countdown(r.expires_at, `${idPrefix}-left`))),
    r.mode === 'approval'
      ? h('div', null, h('dt', null, 'Approvals'), h('dd', null, `${r.approvals.length} of ${r.approvals_needed || 1}`,
        r.approvals.length ? ` (${r.approvals.map((v) => personName(v.by)).join(', ')})` : ''))
      : null);
}

/** The requests waiting for the viewer's answer, with approve and refuse. */
function renderToAnswer(ctx, box, items, reload) {
  if (!items.length) {
    replace(box, emptyState({ iconName: 'check', title: 'Nothing to answer',
      text: 'When someone asks to act as you, or needs your approval to act as someone, it shows here at once.' }));
    return;
  }
  replace(box, h('ul', { class: 'request-list' }, items.map((r) => {
    const id = `req-${r.id}`;
    const forMe = r.subject.id === ctx.user.id;
    const note = h('input', { id: `${id}-note`, class: 'input', type: 'text', maxlength: '500', autocomplete: 'off' });
    const error = h('div', { id: `${id}-error`, role: 'alert' });
    const approve = busyButton(forMe ? 'Allow' : 'Approve', { class: 'btn btn--primary', id: `${id}-approve` });
    const deny = busyButton('Refuse', { class: 'btn btn--secondary', id: `${id}-deny` });
    const answer = async (button, verb, pending) => {
      setBusy(approve, true);
      setBusy(deny, true);
      setBusy(button, true, pending);
      try {
        await ctx.api.post(`/impersonations/requests/${encodeURIComponent(r.id)}/${verb}`, { note: note.value.trim() });
        ctx.toast(verb === 'approve' ? 'Your approval is recorded.' : 'The request is refused.', { kind: 'success' });
        reload();
      } catch (err) {
        setBusy(approve, false);
        setBusy(deny, false);
        replace(error, errorBlock(err, null));
        if (err instanceof ApiError && err.status === 409) reload();
      }
    };
    approve.addEventListener('click', () => answer(approve, 'approve', forMe ? 'Allowing…' : 'Approving…'));
    deny.addEventListener('click', () => answer(deny, 'deny', 'Refusing…'));
    const who = `${personName(r.actor)} asks to act as ${forMe ? 'you' : personName(r.subject)}`;
    return h('li', { class: 'request-card', id, 'data-status': r.status, 'data-mode': r.mode },
      h('div', { class: 'request-card__head' },
        icon(forMe ? 'shield' : 'users'),
        h('h3', { class: 'request-card__title' }, who),
        h('span', { class: 'badge badge--warning' }, r.mode === 'consent' ? 'needs your consent' : 'needs approval')),
      requestFacts(r, id),
      forMe ? h('p', { class: 'muted' }, `While it runs, ${personName(r.actor)} sees the app as you do and acts with your permissions only. Everything is recorded, and you get a summary afterwards.`) : null,
      error,
      h('div', { class: 'field' }, h('label', { for: `${id}-note` }, 'Note ', h('span', { class: 'field__optional' }, '(optional, shown to them)')), note),
      h('div', { class: 'request-card__actions' }, deny, approve));
  })));
}

/** The viewer's own requests: waiting (withdraw) or approved (start). */
function renderMine(ctx, box, items, reload) {
  if (!items.length) {
    replace(box, emptyState({ iconName: 'inbox', title: 'No requests of yours',
      text: 'When a user needs consent or approval before you act as them, your request waits here.' }));
    return;
  }
  replace(box, h('ul', { class: 'request-list' }, items.map((r) => {
    const id = `mine-${r.id}`;
    const error = h('div', { id: `${id}-error`, role: 'alert' });
    const approved = r.status === 'approved';
    const action = approved
      ? busyButton(`Start acting as ${personName(r.subject)}`, { class: 'btn btn--primary', id: `${id}-start` })
      : busyButton('Withdraw request', { class: 'btn btn--secondary', id: `${id}-cancel` });
    action.addEventListener('click', async () => {
      setBusy(action, true, approved ? 'Starting…' : 'Withdrawing…');
      try {
        if (approved) {
          await startApproved(ctx, r.id);
        } else {
          await ctx.api.post(`/impersonations/requests/${encodeURIComponent(r.id)}/cancel`);
          reload();
        }
      } catch (err) {
        setBusy(action, false);
        replace(error, errorBlock(err, null));
        if (err instanceof ApiError && err.status === 409) reload();
      }
    });
    return h('li', { class: 'request-card', id, 'data-status': r.status, 'data-mode': r.mode },
      h('div', { class: 'request-card__head' },
        icon(approved ? 'check' : 'clock'),
        h('h3', { class: 'request-card__title' }, `To act as ${personName(r.subject)}`),
        h('span', { class: `badge ${approved ? 'badge--success' : 'badge--warning'}`, id: `${id}-status` },
          approved ? 'approved' : waitingWords(r))),
      requestFacts(r, id),
      error,
      h('div', { class: 'request-card__actions' }, action));
  })));
}

/**
 * Starts the session an approved request asked for, switching this tab to
 * it as a direct start does.
 */
export async function startApproved(ctx, id) {
  await Promise.all([...ctx.beforeSwitch].map((fn) => fn()));
  try {
    await ctx.switchIdentity(() => ctx.api.post(`/impersonations/${encodeURIComponent(id)}/start`));
  } catch (err) {
    for (const fn of ctx.switchFailed) fn();
    throw err;
  }
  await ctx.refreshSession();
}

/**
 * Shows, in box (the impersonate dialog's body), that request r waits for
 * its answer, live, with a countdown; starts the session as soon as it is
 * approved and says so when it is refused or expires. close ends the
 * dialog. It returns a function that stops waiting.
 */
export function waitForAnswer(ctx, r, box, close) {
  let done = false;
  const status = h('p', { class: 'request-wait__status', id: 'request-wait-status', role: 'status' }, waitingWords(r));
  const left = countdown(r.expires_at, 'request-wait-left');
  const total = Math.max(1, Date.parse(r.expires_at) - Date.parse(r.created_at));
  const bar = h('progress', { id: 'request-wait-bar', class: 'request-wait__bar', max: String(total), value: String(Math.max(0, Date.parse(r.expires_at) - Date.now())),
    'aria-label': 'Time left for an answer' });
  const error = h('div', { id: 'request-wait-error', role: 'alert' });
  const withdraw = busyButton('Withdraw request', { class: 'btn btn--secondary', id: 'request-withdraw' });
  const closeButton = h('button', { type: 'button', class: 'btn btn--ghost', id: 'request-wait-close', onclick: () => close(undefined) }, 'Close');
  const who = r.mode === 'consent'
    ? `${personName(r.subject)} is asked in their console and can allow or refuse it.`
    : `${r.approvals_needed > 1 ? `${r.approvals_needed} approvers` : 'An approver'} (a lead of ${personName(r.subject)}'s project, or an admin) must approve it.`;
  replace(box,
    h('div', { class: 'request-wait', id: 'request-wait', 'data-status': 'pending' },
      h('div', { class: 'request-wait__head' }, h('span', { class: 'spinner spinner--lg', 'aria-hidden': 'true' }), status),
      h('p', { class: 'dialog__lead' }, `${personName(r.subject)}'s sessions need ${r.mode === 'consent' ? 'their consent' : 'approval'} first. ${who} The session starts here as soon as it is allowed.`),
      h('p', { class: 'request-wait__time' }, 'Expires in ', left),
      bar,
      error,
      h('p', { class: 'muted' }, 'You can close this: the request keeps waiting on the Requests page.'),
      h('div', { class: 'dialog__actions' }, closeButton, withdraw)));

  const finish = (state, message, reason) => {
    done = true;
    clearInterval(timer);
    off();
    const view = box.querySelector('#request-wait');
    if (view) view.dataset.status = state;
    replace(status, message);
    const head = box.querySelector('.request-wait__head .spinner');
    if (head) head.replaceWith(icon(state === 'approved' ? 'check' : 'alert'));
    withdraw.remove();
    bar.remove();
    if (reason) error.replaceChildren(h('p', { class: 'error-block__reason' }, reason));
    closeButton.textContent = 'Close';
  };
  const check = async () => {
    if (done) return;
    let cur;
    try {
      cur = await ctx.api.get(`/impersonations/requests/${encodeURIComponent(r.id)}`);
    } catch (err) {
      replace(error, errorBlock(err, check));
      return;
    }
    if (done) return;
    switch (cur.status) {
      case 'pending':
        replace(status, waitingWords(cur));
        return;
      case 'approved':
        done = true;
        replace(status, 'Approved. Starting the session…');
        try {
          await startApproved(ctx, cur.id);
          close(cur);
        } catch (err) {
          finish('failed', 'The session could not start.', err.message);
        }
        return;
      case 'denied':
        finish('denied', `${personName(cur.outcome && cur.outcome.by) || 'They'} refused the request.`,
          cur.outcome && cur.outcome.note ? `Note: ${cur.outcome.note}` : '');
        return;
      case 'expired':
        finish('expired', 'The request expired unanswered. You can ask again.');
        return;
      default:
        finish(cur.status, `The request is ${cur.status}.`);
    }
  };
  withdraw.addEventListener('click', async () => {
    setBusy(withdraw, true, 'Withdrawing…');
    try {
      await ctx.api.post(`/impersonations/requests/${encodeURIComponent(r.id)}/cancel`);
      finish('cancelled', 'You withdrew the request.');
    } catch (err) {
      setBusy(withdraw, false);
      replace(error, errorBlock(err, null));
      check();
    }
  });
  const timer = setInterval(() => {
    tickCountdowns(box);
    bar.value = Math.max(0, Date.parse(r.expires_at) - Date.now());
    if (Date.parse(r.expires_at) <= Date.now()) check();
  }, 1000);
  // Answers arrive as notifications to the agent; the state is read again
  // from the server on each.
  const off = ctx.notifications.on((change) => {
    if (change.added && change.added.impersonation_id === r.id) check();
  });
  return () => {
    done = true;
    clearInterval(timer);
    off();
  };
}

/** The user's consent ahead of time: in force (withdraw) or not (grant). */
async function renderGrant(ctx, box, alive) {
  replace(box, loadingBlock('Loading…'));
  let g;
  try {
    g = (await ctx.api.get('/consent')).grant;
  } catch (err) {
    if (alive()) replace(box, errorBlock(err, () => renderGrant(ctx, box, alive)));
    return;
  }
  if (!alive()) return;
  const error = h('div', { id: 'consent-error', role: 'alert' });
  if (g) {
    const withdraw = busyButton('Withdraw access', { class: 'btn btn--danger', id: 'consent-withdraw' });
    withdraw.addEventListener('click', async () => {
      setBusy(withdraw, true, 'Withdrawing…');
      try {
        await ctx.api.delete('/consent');
        ctx.toast('Support must ask you again before acting as you. Any session under your consent has ended.', { kind: 'success' });
        renderGrant(ctx, box, alive);
      } catch (err) {
        setBusy(withdraw, false);
        replace(error, errorBlock(err, null));
      }
    });
    replace(box,
      h('p', { id: 'consent-state', class: 'callout callout--warning' }, icon('shield'),
        ' Support may act as you without asking until ', timeEl(g.expires_at), '.'),
      error,
      h('div', { class: 'request-card__actions' }, withdraw));
    return;
  }
  const hours = h('select', { id: 'consent-hours', class: 'input' },
    GRANT_HOURS.map((o) => h('option', { value: String(o.hours), selected: o.hours === 24 }, o.label)));
  const give = busyButton('Allow support', { class: 'btn btn--primary', id: 'consent-grant-button', type: 'submit' });
  const form = h('form', { class: 'form', novalidate: true },
    h('p', { id: 'consent-state' }, 'Support asks you before acting as you. If you are working with them on a problem, you can let them act as you without asking, for a while. You can take it back at any time, which ends their session.'),
    error,
    h('div', { class: 'field' }, h('label', { for: 'consent-hours' }, 'Allow for'), hours),
    h('div', { class: 'request-card__actions' }, give));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setBusy(give, true, 'Allowing…');
    try {
      await ctx.api.put('/consent', { hours: Number(hours.value) });
      ctx.toast('Support may act as you without asking for now.', { kind: 'success' });
      renderGrant(ctx, box, alive);
    } catch (err) {
      setBusy(give, false);
      replace(error, errorBlock(err, null));
    }
  });
  replace(box, form);
}
