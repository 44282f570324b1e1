// The support dashboard: the user directory, a user's page and the User
// Action Menu (Impersonate, Check access, View activity).

import { ApiError } from '../api.js';
import {
  busyButton, debounce, emptyState, errorBlock, fieldError, formatDate, formatDateTime, formatTime, h, icon, initials,
  loadingBlock, openDialog, personName, randomId, relativeTime, replace, roleBadge, setBusy, statusBadge, timeEl, zonedDate,
} from '../dom.js';
import { eventSummary, eventTypeLabel } from './activity.js';
import { Names } from './eventwords.js';
import { personalCard } from './personal.js';
import { waitForAnswer } from './requests.js';

// ------------------------------------------------------------- directory

/** The dashboard: search the directory, act on a user from their row. */
export function mountDirectory(ctx, root) {
  const searchId = 'user-search';
  const input = h('input', {
    id: searchId, class: 'input input--search', type: 'search', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'Name or email', 'aria-controls': 'user-results', 'data-autofocus': 'true',
  });
  const results = h('div', { id: 'user-results', class: 'directory__results', 'aria-live': 'polite', 'aria-busy': 'false' });
  const count = h('p', { class: 'directory__count', id: 'user-count' });

  root.append(
    h('header', { class: 'page-header' },
      h('p', { class: 'card__eyebrow' }, 'Support dashboard'),
      h('h1', { class: 'page-header__title' }, 'Users'),
      h('p', { class: 'page-header__subtitle' },
        'Find the person who asked for help, see what they see, and check why something is refused.')),
    h('section', { class: 'card directory', 'aria-labelledby': 'directory-title' },
      h('div', { class: 'directory__toolbar' },
        h('h2', { id: 'directory-title', class: 'visually-hidden' }, 'Directory'),
        h('div', { class: 'field field--search' },
          h('label', { for: searchId, class: 'visually-hidden' }, 'Search users'),
          h('span', { class: 'input-icon', 'aria-hidden': 'true' }, icon('search')),
          input),
        count),
      results),
  );

  let controller = null;
  let items = [];
  let cursor = '';
  let query = '';

  let shown = null;
  const render = () => {
    results.dataset.query = query;
    // The same people as on screen (a search refined by one more letter):
    // the rows stay, with any open menu and the focus in them.
    const signature = `${items.map((u) => u.id).join(',')}|${cursor}`;
    if (signature === shown && items.length > 0) return;
    shown = signature;
    if (items.length === 0) {
      replace(results, emptyState({
        iconName: 'search',
        title: query ? `No one matches “${query}”` : 'The directory is empty',
        text: query ? 'Try part of a name or an email address.' : 'Accounts appear here once they exist.',
      }));
      count.textContent = '';
      return;
    }
    count.textContent = `${items.length}${cursor ? '+' : ''} ${items.length === 1 ? 'user' : 'users'}`;
    const table = h('table', { class: 'table directory__table' },
      h('caption', { class: 'visually-hidden' }, query ? `Users matching ${query}` : 'All users'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col', class: 'hide-sm' }, 'Email'),
        h('th', { scope: 'col', class: 'hide-sm' }, 'Role'),
        h('th', { scope: 'col', class: 'hide-sm' }, 'Status'),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', null, items.map((u) => userRow(ctx, u))));
    const more = cursor
      ? h('div', { class: 'list-more' }, busyButton('Load more', { class: 'btn btn--secondary', onclick: (e) => load(true, e.currentTarget) }))
      : null;
    replace(results, table, more);
  };

  const load = async (append = false, button = null) => {
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    if (!append) {
      results.setAttribute('aria-busy', 'true');
      if (items.length === 0) {
        shown = null;
        replace(results, loadingBlock('Loading users…'));
      }
    }
    if (button) setBusy(button, true, 'Loading…');
    try {
      const page = await ctx.api.get('/users', { query: { q: query, cursor: append ? cursor : '', limit: 25 }, signal });
      items = append ? items.concat(page.items || []) : page.items || [];
      cursor = page.next_cursor || '';
      render();
    } catch (error) {
      if (signal.aborted) return;
      shown = null;
      replace(results, errorBlock(error, () => load()));
    } finally {
      if (!signal.aborted) results.setAttribute('aria-busy', 'false');
    }
  };

  const search = debounce(() => {
    query = input.value.trim();
    load();
  }, 250);
  input.addEventListener('input', search);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      search.cancel();
      query = input.value.trim();
      load();
    }
  });

  // Presence: rows say who else is looking, and who is being impersonated.
  const offPresence = ctx.presence.on(() => {
    for (const row of results.querySelectorAll('tr[data-user-id]')) renderRowPresence(ctx, row);
  });

  load();
  input.focus();
  return () => {
    search.cancel();
    if (controller) controller.abort();
    offPresence();
  };
}

function userRow(ctx, u) {
  const row = h('tr', { 'data-user-id': u.id, class: 'directory__row' },
    h('td', null,
      h('div', { class: 'person' },
        h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(u.name, u.email)),
        h('div', { class: 'person__text' },
          h('a', { class: 'person__name', href: `#/users/${encodeURIComponent(u.id)}` }, u.name || u.email),
          h('span', { class: 'person__sub show-sm' }, u.email),
          h('span', { class: 'person__badges show-sm' }, roleBadge(u.role), ' ', statusBadge(u.status)),
          h('span', { class: 'presence-note', 'data-slot': 'presence' })))),
    h('td', { class: 'hide-sm mono-sm' }, u.email),
    h('td', { class: 'hide-sm' }, roleBadge(u.role)),
    h('td', { class: 'hide-sm' }, statusBadge(u.status)),
    h('td', { class: 'table__actions' }, actionMenu(ctx, u)));
  renderRowPresence(ctx, row);
  return row;
}

function renderRowPresence(ctx, row) {
  const id = row.dataset.userId;
  const note = row.querySelector('[data-slot="presence"]');
  if (!note) return;
  const hold = ctx.presence.holdOf(id);
  const viewers = ctx.presence.viewersOf(id, ctx.actor.id);
  const parts = [];
  if (hold) parts.push(`${personName(hold.actor)} is acting as this user`);
  if (viewers.length) parts.push(`viewed by ${viewers.map((v) => personName(v.viewer)).join(', ')}`);
  note.textContent = parts.join(' · ');
  note.hidden = parts.length === 0;
}

// ------------------------------------------------------------ action menu

/**
 * The User Action Menu: a button that opens a menu of actions on u, or
 * null when the viewer may do none of them.
 * Arrow keys move between items, Escape closes and returns focus.
 */
export function actionMenu(ctx, u, { label = 'Actions', primary = false } = {}) {
  const menuId = `menu-${randomId()}`;
  const button = h('button', {
    type: 'button', class: `btn ${primary ? 'btn--primary' : 'btn--secondary'} btn--sm action-menu__button`,
    'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': menuId,
    'aria-label': `${label} for ${u.name || u.email}`, 'data-action': 'user-actions',
  }, h('span', null, label), icon('chevron', 'icon icon--sm'));

  const items = [];
  if (ctx.permissions.impersonate) {
    items.push({
      id: 'impersonate', text: 'Impersonate…', hint: 'See the app as this user',
      decide: () => impersonateDecision(ctx, u), run: () => impersonateDialog(ctx, u),
    });
  }
  if (ctx.permissions.check_access) {
    items.push({ id: 'check-access', text: 'Check access…', hint: 'Why a booking is allowed or refused', run: () => checkAccessDialog(ctx, u) });
  }
  if (ctx.canReadActivity) {
    items.push({ id: 'view-activity', text: 'View activity', hint: 'Everything done to or as this user', run: () => ctx.navigate(`/activity?subject=${encodeURIComponent(u.id)}&subject_name=${encodeURIComponent(u.name || '')}`) });
  }
  if (!items.length) return null; // nothing this person may do to u
  const menu = h('ul', { id: menuId, class: 'action-menu__list', role: 'menu', 'aria-label': `Actions for ${u.name || u.email}`, hidden: true },
    items.map((item) => h('li', { role: 'none' },
      h('button', { type: 'button', role: 'menuitem', tabindex: '-1', class: 'action-menu__item', 'data-menu-item': item.id },
        h('span', { class: 'action-menu__text' }, item.text),
        h('span', { class: 'action-menu__hint' }, item.hint)))));

  const wrap = h('div', { class: 'action-menu' }, button, menu);
  const entries = () => [...menu.querySelectorAll('[role="menuitem"]')];

  const close = (refocus) => {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', onOutside, true);
    if (refocus) button.focus();
  };
  const open = (index = 0) => {
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    document.addEventListener('pointerdown', onOutside, true);
    const list = entries();
    list[(index + list.length) % list.length].focus();
    for (const item of items) {
      if (item.decide) decideItem(menu.querySelector(`[data-menu-item="${item.id}"]`), item);
    }
  };
  function onOutside(e) {
    if (!wrap.contains(e.target)) close(false);
  }

  button.addEventListener('click', () => (menu.hidden ? open(0) : close(true)));
  button.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') { e.preventDefault(); open(0); }
    if (e.key === 'ArrowUp') { e.preventDefault(); open(-1); }
  });
  menu.addEventListener('keydown', (e) => {
    const list = entries();
    const at = list.indexOf(document.activeElement);
    if (e.key === 'ArrowDown') { e.preventDefault(); list[(at + 1) % list.length].focus(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); list[(at - 1 + list.length) % list.length].focus(); }
    else if (e.key === 'Home') { e.preventDefault(); list[0].focus(); }
    else if (e.key === 'End') { e.preventDefault(); list[list.length - 1].focus(); }
    else if (e.key === 'Escape') { e.preventDefault(); close(true); }
    else if (e.key === 'Tab') close(false);
  });
  menu.addEventListener('click', async (e) => {
    const target = e.target.closest('[data-menu-item]');
    if (!target || target.getAttribute('aria-disabled') === 'true') return; // its hint says why
    const item = items.find((i) => i.id === target.dataset.menuItem);
    // Chosen while the server is still asked: its answer decides.
    if (item && item.pending && !item.decision) {
      await item.pending.catch(() => {});
      if (!item.decision || !item.decision.allowed) return;
    }
    close(true);
    if (item) item.run();
  });
  return wrap;
}

/**
 * Marks a menu entry as the server decides it (choosing it before the
 * answer waits for the answer); refused, it stays focusable, cannot be
 * chosen (aria-disabled) and says why in its hint.
 */
async function decideItem(el, item) {
  if (!el) return;
  const hint = el.querySelector('.action-menu__hint');
  if (!item.decision) {
    hint.textContent = 'Checking…';
    if (!item.pending) item.pending = item.decide();
    try {
      item.decision = await item.pending;
    } catch (err) {
      item.pending = null;
      hint.textContent = `Could not check: ${err.message}`;
      return;
    }
  }
  const { allowed, reason } = item.decision;
  if (allowed) {
    el.removeAttribute('aria-disabled');
    hint.textContent = item.hint;
  } else {
    el.setAttribute('aria-disabled', 'true');
    hint.textContent = reason || 'Not allowed.';
  }
}

/**
 * Whether the viewer may impersonate u now, and why not, as the server
 * decides it (GET /users/{id} answers impersonate); the user page has it.
 */
async function impersonateDecision(ctx, u) {
  if (u.impersonate) return u.impersonate;
  const detail = await ctx.api.get(`/users/${encodeURIComponent(u.id)}`);
  return detail.impersonate || { allowed: true };
}

// ------------------------------------------------------- impersonate dialog

const DURATIONS = [
  { minutes: 15, label: '15 minutes' },
  { minutes: 30, label: '30 minutes (default)' },
  { minutes: 60, label: '1 hour' },
  { minutes: 120, label: '2 hours' },
  { minutes: 240, label: '4 hours' },
];

/** The longest reason the server takes, in characters. */
const REASON_MAX = 500;

/** The reason's length as the server counts it: characters, not UTF-16 units. */
function reasonLength(input) {
  return [...input.value].length;
}

/**
 * Asks for a reason, ticket and duration, then starts impersonating u; when
 * u's mode needs an answer first, waits for it in the dialog (see
 * waitForAnswer).
 */
export function impersonateDialog(ctx, u) {
  const name = u.name || u.email;
  let stopWaiting = null;
  return openDialog({
    title: `Impersonate ${name}`,
    className: 'dialog--impersonate',
    build: (close) => {
      const reason = h('textarea', { id: 'imp-reason', class: 'input', rows: '3', required: true, maxlength: String(REASON_MAX), autofocus: true,
        placeholder: 'e.g. Ben cannot book the confocal (ticket from the help desk)' });
      const ticket = h('input', { id: 'imp-ticket', class: 'input', type: 'text', maxlength: '100', autocomplete: 'off', placeholder: 'e.g. SUP-1234' });
      const minutes = h('select', { id: 'imp-minutes', class: 'input' },
        DURATIONS.map((d) => h('option', { value: String(d.minutes), selected: d.minutes === 30 }, d.label)));
      const error = h('div', { id: 'imp-error', class: 'callout callout--danger', role: 'alert' });
      const count = h('p', { class: 'field__count', id: 'imp-reason-count' }, `0 / ${REASON_MAX}`);
      // Said to screen readers once typing pauses, not at every key.
      const countSaid = h('p', { class: 'visually-hidden', id: 'imp-reason-count-said', 'aria-live': 'polite' });
      const submit = busyButton('Start impersonation', { type: 'submit', class: 'btn btn--primary', id: 'imp-submit' });

      const form = h('form', { class: 'form dialog__body', novalidate: true },
        h('p', { class: 'dialog__lead' },
          `You will see the app exactly as ${name} does, with ${name}'s permissions only. Everything you do is audited as done by you on their behalf, and ${name} is told.`),
        error,
        h('div', { class: 'field' },
          h('label', { for: 'imp-reason' }, 'Reason ', h('span', { class: 'field__required' }, '(required)')),
          reason,
          h('div', { class: 'field__hint-row' },
            h('p', { class: 'field__hint', id: 'imp-reason-hint' }, `One paragraph, shown to ${name} and in the activity log. Enter starts.`),
            count),
          countSaid),
        h('div', { class: 'field-row' },
          h('div', { class: 'field' }, h('label', { for: 'imp-ticket' }, 'Ticket ', h('span', { class: 'field__optional' }, '(optional)')), ticket),
          h('div', { class: 'field' }, h('label', { for: 'imp-minutes' }, 'Duration'), minutes)),
        h('p', { class: 'callout callout--warning dialog__warning' },
          'Avoid destructive actions while impersonating. Exit as soon as you are done.'),
        h('div', { class: 'dialog__actions' },
          h('button', { type: 'button', class: 'btn btn--secondary', onclick: () => close(undefined) }, 'Cancel'),
          submit));
      reason.setAttribute('aria-describedby', 'imp-reason-hint imp-reason-count');
      const sayCount = debounce(() => {
        countSaid.textContent = `${REASON_MAX - reasonLength(reason)} characters left.`;
      }, 800);
      reason.addEventListener('input', () => {
        const n = reasonLength(reason);
        count.textContent = `${n} / ${REASON_MAX}`;
        count.classList.toggle('is-near', n > REASON_MAX - 50);
        sayCount();
      });

      reason.addEventListener('input', () => {
        if (reason.value.trim()) fieldError(reason, '');
      });
      // The reason is one paragraph (the server refuses line breaks, and
      // the banner shows it on one line): Enter starts, and line breaks
      // pasted in become spaces.
      reason.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.isComposing) {
          e.preventDefault();
          form.requestSubmit();
        }
      });
      reason.addEventListener('input', () => {
        if (!/[\r\n\t]/.test(reason.value)) return;
        const at = reason.selectionStart;
        reason.value = reason.value.replace(/[\r\n\t]/g, ' ');
        reason.setSelectionRange(at, at);
      });
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        error.textContent = '';
        const why = reason.value.trim();
        if (!why) {
          fieldError(reason, 'Give a reason: it is shown to the user and kept in the activity log.');
          reason.focus();
          return;
        }
        setBusy(submit, true, 'Starting…');
        // Pages that say whom they show stop saying it: once the session
        // is Ben's, it may no longer speak for the agent.
        await Promise.all([...ctx.beforeSwitch].map((fn) => fn()));
        try {
          const started = await ctx.switchIdentity(() => ctx.api.post('/impersonations', {
            user_id: u.id, reason: why, ticket: ticket.value.trim() || undefined, minutes: Number(minutes.value),
          }));
          if (started && started.request) {
            // The user's mode needs an answer first: nothing switched yet.
            for (const fn of ctx.switchFailed) fn();
            stopWaiting = waitForAnswer(ctx, started.request, form, close);
            return;
          }
          close(started);
          // The cookie now holds the new session; show it here at once
          // (other tabs hear of it over their live connection).
          await ctx.refreshSession();
        } catch (err) {
          setBusy(submit, false);
          for (const fn of ctx.switchFailed) fn();
          showRefusal(error, err);
          if (err instanceof ApiError && err.status === 409 && /^You are already impersonating/.test(err.message)) {
            offerEndElsewhere(ctx, error);
          }
        }
      });
      return form;
    },
  }).then((result) => {
    if (stopWaiting) stopWaiting();
    return result;
  });
}

/**
 * Offers, in box, to end the impersonation the agent holds in another of
 * their sessions (a tab left behind, a browser that crashed).
 */
function offerEndElsewhere(ctx, box) {
  const end = busyButton('End that session', { class: 'btn btn--secondary btn--sm', id: 'end-elsewhere' });
  end.addEventListener('click', async () => {
    setBusy(end, true, 'Ending…');
    try {
      const ended = await ctx.api.delete('/impersonations/current');
      box.replaceChildren(h('p', { class: 'error-block__title', role: 'status' },
        `Your session as ${personName(ended.subject) || 'that user'} has ended. You can start again.`));
    } catch (err) {
      setBusy(end, false);
      showRefusal(box, err);
    }
  });
  const body = box.querySelector('.error-block__body') || box;
  body.append(
    h('p', { class: 'error-block__reason' }, 'It may still be open in another browser or on another computer. You can end it from here.'),
    h('p', null, end));
}

/** Puts a refusal in words into box: the message, then why. */
function showRefusal(box, err) {
  box.replaceChildren();
  const message = err instanceof ApiError ? err.message : 'Could not start the impersonation. Try again.';
  box.append(h('div', { class: 'error-block__body' },
    h('p', { class: 'error-block__title' }, message),
    err && err.reason && err.reason !== message ? h('p', { class: 'error-block__reason' }, err.reason) : null));
}

// ------------------------------------------------------- check access dialog

/** Explains, without impersonating, whether u may book a resource in a project. */
export function checkAccessDialog(ctx, u) {
  const name = u.name || u.email;
  return openDialog({
    title: `Check access for ${name}`,
    className: 'dialog--access',
    build: () => {
      const resource = h('select', { id: 'access-resource', class: 'input', disabled: true }, h('option', null, 'Loading…'));
      const project = h('select', { id: 'access-project', class: 'input', disabled: true }, h('option', null, 'Loading…'));
      const date = h('input', { id: 'access-date', class: 'input', type: 'date' });
      const from = h('input', { id: 'access-start', class: 'input', type: 'time', step: '900' });
      const to = h('input', { id: 'access-end', class: 'input', type: 'time', step: '900' });
      const result = h('div', { id: 'access-result', class: 'access-result', 'aria-live': 'polite' });
      const submit = busyButton('Check', { type: 'submit', class: 'btn btn--primary', id: 'access-submit', disabled: true });

      const form = h('form', { class: 'form dialog__body', novalidate: true },
        h('p', { class: 'dialog__lead' }, `What would ${name} be told when booking? No impersonation, nothing is changed.`),
        h('div', { class: 'field-row' },
          h('div', { class: 'field' }, h('label', { for: 'access-resource' }, 'Resource'), resource),
          h('div', { class: 'field' }, h('label', { for: 'access-project' }, 'Project'), project)),
        h('fieldset', { class: 'fieldset' },
          h('legend', null, 'When ', h('span', { class: 'field__optional' }, '(optional: checks hours and limits too)')),
          h('div', { class: 'field-row field-row--3' },
            h('div', { class: 'field' }, h('label', { for: 'access-date' }, 'Date'), date),
            h('div', { class: 'field' }, h('label', { for: 'access-start' }, 'From'), from),
            h('div', { class: 'field' }, h('label', { for: 'access-end' }, 'To'), to))),
        result,
        h('div', { class: 'dialog__actions' }, submit));

      Promise.all([ctx.api.get('/resources'), ctx.api.get('/projects'), ctx.api.get(`/users/${encodeURIComponent(u.id)}`)])
        .then(([resources, projects, detail]) => {
          replace(resource, (resources.items || []).map((r) => h('option', { value: r.id }, r.name)));
          const mine = new Set((detail.projects || []).map((p) => p.project_id));
          const list = [...(projects.items || [])].sort((a, b) => Number(mine.has(b.id)) - Number(mine.has(a.id)));
          replace(project, list.map((p) => h('option', { value: p.id }, `${p.code} · ${p.name}${mine.has(p.id) ? '' : ' (not a member)'}`)));
          resource.disabled = false;
          project.disabled = false;
          submit.disabled = false;
          resource.focus();
        })
        .catch((err) => replace(result, errorBlock(err)));

      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const query = { resource: resource.value, project: project.value, action: 'create' };
        if (date.value && from.value && to.value) {
          query.start = zonedDate(date.value, from.value).toISOString();
          query.end = zonedDate(date.value, to.value).toISOString();
        } else if (date.value || from.value || to.value) {
          replace(result, h('p', { class: 'callout callout--warning' }, 'Give the date, the start and the end, or none of them.'));
          return;
        }
        setBusy(submit, true, 'Checking…');
        try {
          const answer = await ctx.api.get(`/users/${encodeURIComponent(u.id)}/access`, { query });
          const allowed = Boolean(answer.allowed);
          replace(result, h('div', { class: `decision decision--${allowed ? 'allowed' : 'denied'}`, 'data-allowed': String(allowed) },
            h('span', { class: 'decision__icon' }, icon(allowed ? 'check' : 'x')),
            h('div', null,
              h('p', { class: 'decision__title' }, allowed
                ? `${name} may book ${answer.resource ? answer.resource.name : 'it'} in ${answer.project ? answer.project.code : 'this project'}.`
                : `${name} may not book ${answer.resource ? answer.resource.name : 'it'} in ${answer.project ? answer.project.code : 'this project'}.`),
              answer.reason ? h('p', { class: 'decision__reason' }, answer.reason) : null)));
        } catch (err) {
          replace(result, errorBlock(err));
        } finally {
          setBusy(submit, false);
        }
      });
      return form;
    },
  });
}

// ---------------------------------------------------------------- user page

/** One user's page: what blocks them (from the overview), their projects, trainings and recent activity. */
export function mountUserPage(ctx, root, { params }) {
  const id = params[0];
  const viewId = `u-${randomId()}`.slice(0, 64);
  let stopped = false;
  let overview = null;

  replace(root, loadingBlock('Loading the user…'));

  // Presence: this page says whom it shows while it is open.
  let left = false;
  const sayViewing = () => (left ? null : ctx.api.put('/presence', { view_id: viewId, user_id: id }).catch(() => {}));
  const leave = () => {
    if (left) return Promise.resolve();
    left = true;
    return fetch(`/api/v1/presence/${viewId}`, {
      method: 'DELETE', credentials: 'same-origin', keepalive: true, headers: { 'X-CSRF-Token': ctx.csrf() },
    }).catch(() => {});
  };
  const resume = () => {
    left = false;
    sayViewing();
  };
  ctx.beforeSwitch.add(leave);
  ctx.switchFailed.add(resume);
  sayViewing();
  const renew = setInterval(sayViewing, 20000);
  window.addEventListener('pagehide', leave);

  const presenceBox = h('div', { class: 'presence-bar', id: 'user-presence', 'aria-live': 'polite' });
  const renderPresence = () => {
    const viewers = ctx.presence.viewersOf(id, ctx.actor.id);
    const hold = ctx.presence.holdOf(id);
    const parts = [];
    if (hold) {
      const mayModerate = hold.moderated && hold.actor && hold.actor.id !== ctx.actor.id
        && ctx.permissions.moderate && ctx.permissions.moderate !== 'none';
      const moderation = !hold.moderated ? ''
        : (hold.moderators && hold.moderators.length
          ? ` (moderated by ${hold.moderators.map(personName).join(', ')})`
          : ' (paused: waiting for a moderator)');
      parts.push(h('span', { class: 'presence-bar__item presence-bar__item--hold' }, icon('alert', 'icon icon--sm'),
        `${personName(hold.actor)} is acting as this user${hold.expires_at ? ` until ${formatDateTime(hold.expires_at)}` : ''}${moderation}`,
        mayModerate ? h('a', { class: 'presence-bar__link', href: `#/moderate/${encodeURIComponent(hold.impersonation_id)}`, id: 'user-moderate' }, 'Moderate') : null));
    }
    if (viewers.length) {
      parts.push(h('span', { class: 'presence-bar__item' }, icon('eye', 'icon icon--sm'),
        `Also viewing: ${[...new Set(viewers.map((v) => personName(v.viewer)))].join(', ')}`));
    }
    replace(presenceBox, parts);
    presenceBox.hidden = parts.length === 0;
  };
  const offPresence = ctx.presence.on(renderPresence);

  const load = async () => {
    try {
      overview = await ctx.api.get(`/users/${encodeURIComponent(id)}/overview`);
    } catch (error) {
      if (stopped) return;
      replace(root,
        h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/users' }, 'Users')),
        h('h1', { class: 'page-header__title' }, 'User'),
        error instanceof ApiError && error.status === 404
          ? emptyState({ iconName: 'user', title: 'No such user', text: 'The account may have been removed, or the link is wrong.', actions: [h('a', { class: 'btn btn--secondary', href: '#/users' }, 'Back to users')] })
          : h('div', { id: 'user-load-error' }, errorBlock(error, load)));
      return;
    }
    if (stopped) return;
    render();
  };

  const render = () => {
    const u = overview.user;
    document.title = `${u.name} · Standin`;
    const activity = h('div', { id: 'user-activity' }, loadingBlock('Loading activity…'));
    replace(root,
      h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/users' }, 'Users'), h('span', { 'aria-current': 'page' }, u.name)),
      h('header', { class: 'profile-head card' },
        h('span', { class: 'avatar avatar--lg', 'aria-hidden': 'true' }, initials(u.name, u.email)),
        h('div', { class: 'profile-head__text' },
          h('h1', { class: 'page-header__title', id: 'user-name' }, u.name),
          h('p', { class: 'profile-head__email' }, u.email),
          h('div', { class: 'cluster' }, roleBadge(u.role), statusBadge(u.status))),
        h('div', { class: 'profile-head__actions' }, actionMenu(ctx, u, { label: 'User actions', primary: true }))),
      presenceBox,
      blocksSection(overview),
      h('div', { class: 'grid-2' }, projectsCard(u), trainingsCard(u)),
      personalCard(ctx, u),
      // The log itself is for those who may read it; the refusals and
      // sessions above are for every agent.
      ctx.canReadActivity ? h('section', { class: 'card', 'aria-labelledby': 'recent-title' },
        h('div', { class: 'card__header card__header--tight' },
          h('h2', { class: 'card__title', id: 'recent-title' }, 'Recent activity'),
          h('a', { class: 'btn btn--ghost btn--sm', href: `#/activity?subject=${encodeURIComponent(u.id)}&subject_name=${encodeURIComponent(u.name)}` }, 'All activity')),
        activity) : null,
    );
    renderPresence();
    if (ctx.canReadActivity) loadRecent(ctx, u, activity, overviewNames(overview));
  };

  load();
  return () => {
    stopped = true;
    clearInterval(renew);
    window.removeEventListener('pagehide', leave);
    ctx.beforeSwitch.delete(leave);
    ctx.switchFailed.delete(resume);
    offPresence();
    leave();
  };
}

function projectsCard(u) {
  return h('section', { class: 'card', 'aria-labelledby': 'projects-title' },
    h('h2', { class: 'card__title', id: 'projects-title' }, 'Projects'),
    (u.projects || []).length
      ? h('ul', { class: 'list' }, u.projects.map((p) => h('li', { class: 'list__item' },
        h('span', null, h('strong', null, p.code), ` · ${p.name}`),
        h('span', { class: `badge ${p.role === 'lead' ? 'badge--primary' : ''}` }, p.role))))
      : emptyState({ iconName: 'users', title: 'No projects', text: 'Bookings are made in a project, so this user cannot book anything yet.' }));
}

function trainingsCard(u) {
  return h('section', { class: 'card', 'aria-labelledby': 'trainings-title' },
    h('h2', { class: 'card__title', id: 'trainings-title' }, 'Trainings'),
    (u.trainings || []).length
      ? h('ul', { class: 'list', id: 'user-trainings' }, u.trainings.map((t) => h('li', { class: 'list__item' },
        h('span', null, h('strong', null, t.name || t.training_id),
          h('span', { class: 'list__sub' }, `Completed ${formatDate(t.completed_at)}`,
            t.expires_at ? ` · expires ${formatDate(t.expires_at)}` : ' · does not expire')),
        h('span', { class: `badge ${t.valid ? 'badge--success' : 'badge--danger'}` }, t.valid ? 'valid' : 'expired'))))
      : emptyState({ iconName: 'shield', title: 'No trainings', text: 'Resources that require a training will be refused.' }));
}

// ------------------------------------------------------ what blocks the user

/** The names an overview knows (the user, their projects' instruments), for its events' sentences. */
function overviewNames(o) {
  const names = new Names();
  names.addUsers([o.user]);
  const access = o.access || [];
  names.addResources(access.map((a) => ({ id: a.resource_id, name: a.resource_name })));
  names.addProjects(access.map((a) => ({ id: a.project_id, code: a.project_code })));
  return names;
}

/** The first word of a name, for sentences about the user. */
function firstName(u) {
  return String(u.name || u.email || '').trim().split(/\s+/)[0] || 'this user';
}

/**
 * "What blocks {name}": the refused instruments, the trainings in the way,
 * the recent refusals, the support sessions and the coming bookings, all
 * from one overview.
 */
function blocksSection(o) {
  const name = firstName(o.user);
  const names = overviewNames(o);
  const part = (key, title, body) => h('div', { class: 'blocks__part', id: `blocks-${key}` },
    h('h3', { class: 'blocks__title', id: `blocks-${key}-title` }, title), body);
  return h('section', { class: 'card blocks', id: 'user-blocks', 'aria-labelledby': 'blocks-heading' },
    h('h2', { class: 'card__title', id: 'blocks-heading' }, `What blocks ${name}`),
    h('div', { class: 'blocks__grid' },
      part('access', 'Instruments', accessPart(o, name)),
      part('trainings', 'Trainings', trainingsPart(o, name)),
      part('refusals', 'Recent refusals', refusalsPart(o, name, names)),
      part('sessions', 'Support sessions', sessionsPart(o, name, names)),
      part('bookings', 'Coming bookings', bookingsPart(o, name))));
}

function accessPart(o, name) {
  const access = o.access || [];
  if (!access.length) {
    return emptyState({ iconName: 'microscope', title: 'No instruments', text: `${name} is in no project that may book an instrument.` });
  }
  const refused = access.filter((a) => !a.bookable);
  const bookable = [...new Set(access.filter((a) => a.bookable).map((a) => a.resource_name))];
  const canBook = bookable.length
    ? h('p', { class: 'blocks__summary', 'data-slot': 'bookable' }, icon('check', 'icon icon--sm'), `Can book: ${bookable.join(', ')}`)
    : null;
  if (!refused.length) {
    return [emptyState({ iconName: 'check', title: `Nothing blocks ${name}`, text: 'Every instrument of their projects may be booked.' }), canBook];
  }
  return [
    h('ul', { class: 'blocks__list' }, refused.map((a) => h('li', { class: 'blocks__item', 'data-resource-id': a.resource_id },
      h('span', { class: 'blocks__item-head' },
        h('strong', null, a.resource_name),
        a.project_code ? h('span', { class: 'blocks__muted' }, ` in ${a.project_code}`) : null,
        h('span', { class: 'badge badge--danger' }, 'refused')),
      h('span', { class: 'blocks__reason' }, a.reason || 'Not allowed.')))),
    canBook,
  ];
}

const TRAINING_WORDS = { missing: 'missing', expired: 'expired', expiring: 'expiring' };

function trainingsPart(o, name) {
  const trouble = (o.trainings || []).filter((t) => TRAINING_WORDS[t.state]);
  if (!trouble.length) {
    return emptyState({ iconName: 'shield', title: 'No training in the way', text: `${name} holds every training their instruments need.` });
  }
  return h('ul', { class: 'blocks__list' }, trouble.map((t) => h('li', { class: 'blocks__item', 'data-training-id': t.training_id, 'data-state': t.state },
    h('span', { class: 'blocks__item-head' },
      h('strong', null, t.name || t.training_id),
      h('span', { class: `badge ${t.state === 'expiring' ? 'badge--warning' : 'badge--danger'}` }, TRAINING_WORDS[t.state])),
    trainingWhen(t),
    (t.needed_for || []).length ? h('span', { class: 'blocks__needed' }, `Needed for ${t.needed_for.join(', ')}`) : null)));
}

function trainingWhen(t) {
  if (t.state === 'missing' || !t.expires_at) return null;
  const verb = t.state === 'expired' ? 'Expired on ' : 'Expires on ';
  return h('span', { class: 'blocks__muted' }, verb, timeEl(t.expires_at, formatDate(t.expires_at)));
}

function eventList(events, names, extra) {
  return h('ol', { class: 'blocks__list' }, events.map((e) => h('li', { class: 'blocks__item', 'data-event-id': e.id, 'data-type': e.type },
    h('span', { class: 'blocks__text' }, eventSummary(e, names)),
    h('span', { class: 'blocks__item-foot' }, timeEl(e.time, formatDateTime(e.time), 'blocks__muted'), extra ? extra(e) : null))));
}

function refusalsPart(o, name, names) {
  const refusals = o.refusals || [];
  if (!refusals.length) {
    return emptyState({ iconName: 'activity', title: 'No refusals recorded', text: `Nothing has been refused to ${name} recently.` });
  }
  return eventList(refusals, names);
}

function sessionsPart(o, name, names) {
  const sessions = o.sessions || [];
  const running = new Set((o.running || []).map((i) => i.id));
  if (!sessions.length) {
    return emptyState({ iconName: 'eye', title: 'No support sessions', text: `No one from support has acted as ${name}.` });
  }
  return eventList(sessions, names, (e) => (running.has(e.impersonation_id)
    ? h('span', { class: 'badge badge--warning', 'data-running': 'true' }, 'running now')
    : null));
}

function bookingsPart(o, name) {
  const bookings = o.bookings || [];
  if (!bookings.length) {
    return emptyState({ iconName: 'calendar', title: 'No coming bookings', text: `${name} has nothing booked ahead.` });
  }
  return h('div', { class: 'blocks__table', id: 'user-bookings' }, bookingTable(bookings));
}

/** A table of bookings (shared with the facility app). */
export function bookingTable(items, { actions } = {}) {
  return h('table', { class: 'table' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Resource'),
      h('th', { scope: 'col' }, 'When'),
      h('th', { scope: 'col', class: 'hide-sm' }, 'Project'),
      h('th', { scope: 'col' }, 'Status'),
      actions ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
    h('tbody', null, items.map((b) => h('tr', { 'data-booking-id': b.id },
      h('td', null, b.resource_name || b.resource_id,
        b.impersonation_id ? h('span', { class: 'badge badge--warning badge--inline badge--text', title: 'Made by support while impersonating' }, 'by support') : null),
      h('td', null, timeEl(b.start), ' – ', timeEl(b.end, formatTime(b.end))),
      h('td', { class: 'hide-sm' }, b.project_code || b.project_id),
      h('td', null, h('span', { class: `badge ${b.status === 'confirmed' ? 'badge--success' : ''}` }, b.status)),
      actions ? h('td', { class: 'table__actions' }, actions(b)) : null))));
}

/** The last events about the user, for those who may read activity. */
async function loadRecent(ctx, u, box, names) {
  try {
    const page = await ctx.api.get('/activity', { query: { subject: u.id, limit: 8 } });
    const items = page.items || [];
    if (!items.length) {
      replace(box, emptyState({ iconName: 'activity', title: 'Nothing yet', text: `Nothing has been done by or as ${u.name}.` }));
      return;
    }
    replace(box, h('ol', { class: 'mini-feed' }, items.map((e) => h('li', { class: 'mini-feed__item', 'data-type': e.type },
      h('span', { class: `type-chip type-chip--${e.type.split('.')[0]}${e.outcome === 'denied' || e.type.endsWith('denied') ? ' type-chip--denied' : ''}` }, eventTypeLabel(e.type)),
      h('span', { class: 'mini-feed__text' }, eventSummary(e, names)),
      timeEl(e.time, relativeTime(e.time), 'mini-feed__time')))));
  } catch (error) {
    replace(box, error.status === 403
      ? emptyState({ iconName: 'activity', title: 'Not in your scope', text: error.reason || error.message })
      : errorBlock(error, () => loadRecent(ctx, u, box, names)));
  }
}
