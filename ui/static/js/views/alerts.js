// Alerts on suspicious sessions (GET /api/v1/alerts, docs/AUDIT.md): the
// Activity panel's card, open alerts first and acknowledged ones folded
// away; the dialog that acknowledges one with a note; and the toast that
// tells of a new alert on whichever page the person has open.

import { ApiError } from '../api.js';
import {
  busyButton, debounce, emptyState, errorBlock, formatDateTime, h, icon, loadingBlock, openDialog, personName, replace, setBusy, timeEl,
} from '../dom.js';
import { alertRuleLabel } from './eventwords.js';

/** The path acknowledging alert id. Its colons stay as they are: the server reads the path undecoded. */
function acknowledgePath(id) {
  return `/alerts/${encodeURIComponent(id).replaceAll('%3A', ':')}/acknowledge`;
}

/** The alert's id from its events' object ("alert:<id>"). */
function alertIdOf(e) {
  return (e.object || '').replace(/^alert:/, '');
}

// ------------------------------------------------------------------ toasts

/**
 * Per identity (context), the following of its alerts: {promise, ok},
 * ok true once it follows them, false when it may not or could not.
 */
const following = new WeakMap();

/** Alerts arriving within this many ms of each other make one toast when they are many. */
const TOAST_BATCH_MS = 400;
/** More alerts than this at once (a replay after a long gap) are told as a count. */
const TOASTS_ONE_BY_ONE = 2;

/**
 * Tells of each new alert with a warning toast, on every page, for as
 * long as the identity lasts. It follows the activity topic from its
 * head, only for someone who may see alerts: GET /alerts answering
 * (known: the caller saw it answer). Calling it again is harmless; it
 * resolves whether the alerts are followed.
 */
export function followAlerts(ctx, { known = false } = {}) {
  const was = following.get(ctx);
  if (was && was.ok !== false) return was.promise;
  const run = { ok: undefined };
  run.promise = startFollowing(ctx, known).then((ok) => {
    run.ok = ok;
    return ok;
  });
  following.set(ctx, run);
  return run.promise;
}

/**
 * Whether this identity follows its alerts (once its start is decided):
 * the activity topic is then live already, and a page following it too
 * gives no resume point of its own, which would skip events on their way.
 */
export function followingAlerts(ctx) {
  const run = following.get(ctx);
  return run ? run.promise : Promise.resolve(false);
}

async function startFollowing(ctx, known) {
  if (!ctx.live) return false;
  try {
    if (!known) await ctx.api.get('/alerts');
    const head = await ctx.api.get('/activity', { query: { limit: 1 } });
    const top = head.items && head.items[0] ? head.items[0].seq : 0;
    let batch = [];
    const tell = debounce(() => {
      const raised = batch;
      batch = [];
      const link = { href: '#/activity', text: 'See the alerts' };
      if (raised.length > TOASTS_ONE_BY_ONE) {
        ctx.toast(`Alert: ${raised.length} new alerts on suspicious sessions.`, { kind: 'warning', title: 'Alerts', type: 'alert.raised', timeout: 15000, link });
        return;
      }
      for (const e of raised) {
        ctx.toast(`Alert: ${e.reason || alertRuleLabel(e.outcome)}`, { kind: 'warning', title: alertRuleLabel(e.outcome), type: 'alert.raised', timeout: 15000, link });
      }
    }, TOAST_BATCH_MS);
    ctx.live.subscribe('activity', (e) => {
      if (!e || e.type !== 'alert.raised') return;
      batch.push(e);
      tell();
    }, { afterSeq: top });
    return true;
  } catch {
    // Not someone who may see alerts (403), or the server did not
    // answer: the Activity panel tries again when its card loads.
    return false;
  }
}

// -------------------------------------------------------------------- card

/** How often, at most, a card waiting for an alert its event announced asks again. */
const CATCH_UP_TRIES = 5;
const CATCH_UP_MS = 1000;

/**
 * The Alerts card of the Activity panel. It stays hidden for those who
 * may see no alerts (GET /alerts answers 403). onShowSession(id) filters
 * the panel's feed to a session. Returns {el, load, onEvent, stop}:
 * onEvent takes each live event of the activity topic.
 */
export function alertsCard(ctx, { onShowSession }) {
  let stopped = false;
  let items = [];
  let ackedOpen = false;
  const title = h('h2', { class: 'card__title alerts__title', id: 'alerts-title', tabindex: '-1' }, 'Alerts');
  const count = h('span', { class: 'badge badge--warning badge--text alerts__count', id: 'alerts-count', hidden: true });
  const box = h('div', { id: 'alerts-list', class: 'alerts__body' }, loadingBlock('Loading alerts…'));
  const el = h('section', { class: 'card alerts', id: 'alerts', 'aria-labelledby': 'alerts-title', hidden: true },
    h('div', { class: 'alerts__head' }, title, count), box);

  // An alert's event can arrive a moment before the alert lists as
  // raised or acknowledged: the ids announced are asked for again.
  const awaited = new Map();
  let tries = 0;
  let catchUp = 0;

  const load = async () => {
    clearTimeout(catchUp);
    try {
      const page = await ctx.api.get('/alerts');
      if (stopped) return;
      items = page.items || [];
      el.hidden = false;
      render();
      followAlerts(ctx, { known: true });
      for (const [id, kind] of awaited) {
        const a = items.find((x) => x.id === id);
        if (a && (kind === 'raised' || a.acknowledged_at)) awaited.delete(id);
      }
      if (awaited.size && tries < CATCH_UP_TRIES) {
        tries += 1;
        catchUp = setTimeout(load, CATCH_UP_MS);
      } else {
        awaited.clear();
      }
    } catch (error) {
      if (stopped) return;
      if (error.status === 403) {
        el.hidden = true;
        return;
      }
      el.hidden = false;
      replace(box, errorBlock(error, load));
    }
  };
  const loadSoon = debounce(load, 300);

  const onEvent = (e) => {
    if (!e || (e.type !== 'alert.raised' && e.type !== 'alert.acknowledged')) return;
    awaited.set(alertIdOf(e), e.type === 'alert.raised' ? 'raised' : 'acknowledged');
    tries = 0;
    loadSoon();
  };

  let n = 0;
  const item = (a) => {
    const key = `alert-${(n += 1)}`;
    const acked = Boolean(a.acknowledged_at);
    const show = a.impersonation_id ? h('button', {
      type: 'button', class: 'btn btn--ghost btn--sm', 'data-act': 'show', 'aria-describedby': `${key}-words`,
      onclick: () => onShowSession(a.impersonation_id),
    }, 'Show events') : null;
    const ack = acked ? null : h('button', {
      type: 'button', class: 'btn btn--secondary btn--sm', 'data-act': 'ack', 'aria-describedby': `${key}-words`,
      onclick: () => acknowledge(a),
    }, 'Acknowledge…');
    return h('li', { class: `alert-item${acked ? ' alert-item--acked' : ''}`, 'data-alert-id': a.id, 'data-rule': a.rule, 'data-state': acked ? 'acknowledged' : 'open' },
      h('p', { class: 'alert-item__head' },
        h('span', { class: `badge badge--text alert-item__rule${acked ? '' : ' badge--warning'}` }, icon(acked ? 'check' : 'alert', 'icon icon--sm'), alertRuleLabel(a.rule)),
        timeEl(a.raised_at, formatDateTime(a.raised_at), 'alert-item__time')),
      h('p', { class: 'alert-item__words', id: `${key}-words` }, a.words),
      h('p', { class: 'alert-item__who' }, `${personName(a.actor)} as ${personName(a.subject)}`),
      acked ? h('p', { class: 'alert-item__ack' },
        `Acknowledged by ${personName(a.acknowledged_by) || 'someone'}, `, timeEl(a.acknowledged_at),
        a.acknowledgment_note ? h('span', { class: 'alert-item__note' }, `: “${a.acknowledgment_note}”`) : ', without a note.') : null,
      show || ack ? h('div', { class: 'alert-item__actions' }, ack, show) : null);
  };

  const render = () => {
    // The keyboard stays on the same control of the same alert, or comes
    // to the card's title when that alert moved.
    const active = document.activeElement;
    const was = active && box.contains(active) ? {
      id: active.closest('[data-alert-id]')?.dataset.alertId,
      act: active.dataset.act || (active.tagName === 'SUMMARY' ? 'summary' : ''),
    } : null;
    n = 0;
    const open = items.filter((a) => !a.acknowledged_at);
    const acked = items.filter((a) => a.acknowledged_at);
    count.hidden = open.length === 0;
    count.textContent = `${open.length} open`;
    if (!items.length) {
      replace(box, emptyState({ iconName: 'shield', title: 'No alerts',
        text: 'Sessions that look unusual show up here: started outside the facility’s hours, on a staff account, with many refusals, or running long.' }));
    } else {
      const folded = acked.length ? h('details', { class: 'alerts__acked', id: 'alerts-acked', open: ackedOpen || null },
        h('summary', { class: 'alerts__acked-summary' }, `Acknowledged (${acked.length})`),
        h('ul', { class: 'alerts__list' }, acked.map(item))) : null;
      if (folded) folded.addEventListener('toggle', () => { ackedOpen = folded.open; });
      replace(box,
        open.length ? h('ul', { class: 'alerts__list', id: 'alerts-open' }, open.map(item)) : h('p', { class: 'muted alerts__none', id: 'alerts-none-open' }, 'No open alerts.'),
        folded);
    }
    if (!was || (active && active.isConnected)) return;
    let again = null;
    if (was.act === 'summary') again = box.querySelector('.alerts__acked-summary');
    else if (was.id) {
      const li = [...box.querySelectorAll('[data-alert-id]')].find((x) => x.dataset.alertId === was.id);
      again = li && li.querySelector(`[data-act="${was.act}"]`);
    }
    (again || title).focus();
  };

  const acknowledge = async (a) => {
    const done = await openDialog({
      title: 'Acknowledge this alert',
      className: 'dialog--alert',
      build: (close) => {
        const note = h('input', {
          id: 'alert-note', class: 'input', type: 'text', maxlength: '500', autocomplete: 'off', autofocus: true,
          'aria-describedby': 'alert-note-hint', placeholder: 'e.g. Talked to Sam: Ben asked for it',
        });
        const error = h('div', { id: 'alert-ack-error', role: 'alert' });
        const cancel = h('button', { type: 'button', class: 'btn btn--secondary', id: 'alert-ack-cancel', onclick: () => close(undefined) }, 'Cancel');
        const submit = busyButton('Acknowledge', { type: 'submit', class: 'btn btn--primary', id: 'alert-ack-submit' });
        const form = h('form', { class: 'form dialog__body', novalidate: true, id: 'alert-ack-form' },
          h('p', { class: 'dialog__lead' }, h('strong', null, `${alertRuleLabel(a.rule)}: `), a.words),
          error,
          h('div', { class: 'field' },
            h('label', { for: 'alert-note' }, 'Note ', h('span', { class: 'field__optional' }, '(optional)')),
            note,
            h('p', { class: 'field__hint', id: 'alert-note-hint' }, 'What you found or did. It is kept in the activity log with your name; the alert is then acknowledged for everyone.')),
          h('div', { class: 'dialog__actions' }, cancel, submit));
        form.addEventListener('submit', async (e) => {
          e.preventDefault();
          if (submit.disabled) return;
          error.replaceChildren();
          setBusy(submit, true, 'Acknowledging…');
          try {
            close(await ctx.api.post(acknowledgePath(a.id), { note: note.value.trim() }));
          } catch (err) {
            setBusy(submit, false);
            if (err instanceof ApiError && err.status === 409) {
              await load();
              const now = items.find((x) => x.id === a.id);
              const who = now && now.acknowledged_by ? personName(now.acknowledged_by) : 'Someone';
              const said = now && now.acknowledgment_note ? `: “${now.acknowledgment_note}”` : '';
              replace(error, h('div', { class: 'callout callout--info' }, h('p', null, `${who} acknowledged this alert first${said}.`)));
              note.disabled = true;
              submit.hidden = true;
              cancel.textContent = 'Close';
              cancel.focus();
              return;
            }
            replace(error, errorBlock(err instanceof ApiError ? err : { message: 'Could not acknowledge the alert. Try again.' }, null));
          }
        });
        return form;
      },
    });
    if (stopped) return;
    if (!done) {
      // The button that opened the dialog may have been drawn again
      // meanwhile: the keyboard goes to the alert's new one.
      if (document.activeElement === document.body || !document.activeElement) {
        const li = [...box.querySelectorAll('[data-alert-id]')].find((x) => x.dataset.alertId === a.id);
        ((li && (li.querySelector('[data-act="ack"]') || li.querySelector('[data-act="show"]'))) || title).focus();
      }
      return;
    }
    items = items.map((x) => (x.id === done.id ? done : x));
    ackedOpen = true;
    render();
    ctx.toast('The alert is acknowledged.', { kind: 'success' });
    const moved = [...box.querySelectorAll('#alerts-acked [data-alert-id]')].find((x) => x.dataset.alertId === done.id);
    const next = box.querySelector('#alerts-open [data-act="ack"]');
    (next || (moved && moved.querySelector('[data-act="show"]')) || box.querySelector('.alerts__acked-summary') || title).focus();
  };

  return {
    el,
    load,
    onEvent,
    stop() {
      stopped = true;
      clearTimeout(catchUp);
      loadSoon.cancel();
    },
  };
}
