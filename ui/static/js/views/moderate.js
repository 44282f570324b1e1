// The moderator's view of a moderated session (#/moderate/{id}): the
// session runs only while a moderator watches it live. While this page is
// open and its live connection is up, it says so to the server every few
// seconds; it shows what happens in the session as it happens, and lets
// the moderator end it. Closing the page, or losing the connection,
// pauses the session.

import { ApiError } from '../api.js';
import { LiveState } from '../live.js';
import {
  busyButton, causeWords, emptyState, errorBlock, formatTimeSeconds, h, icon, loadingBlock, personName, randomId, replace,
  setBusy, timeEl,
} from '../dom.js';
import { Names, eventSentence } from './eventwords.js';

/** How often the page renews its watch: well within the server's 15 s. */
const RENEW_MS = 5000;

/** Mounts the moderator's view of session params[0] into root. */
export function mountModerate(ctx, root, { params }) {
  const id = params[0];
  const viewId = `m-${randomId()}`.slice(0, 64);
  let stopped = false;
  let watching = false;
  let session = null;
  let refusal = null;
  const seen = new Set();

  const status = h('div', { id: 'moderation-status', class: 'moderation-status', role: 'status', 'aria-live': 'polite' },
    loadingBlock('Opening the session…'));
  const facts = h('div', { id: 'moderation-facts' });
  const actions = h('div', { class: 'moderation-actions', id: 'moderation-actions' });
  const feed = h('ol', { class: 'session-items', id: 'moderation-feed', 'aria-label': 'What happens in the session' });
  const feedEmpty = h('p', { class: 'muted session-items__empty', id: 'moderation-feed-empty' },
    icon('clock', 'icon icon--sm'), ' Nothing has happened in the session yet. What the agent does shows here as it happens.');
  root.append(
    h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' },
      h('a', { href: '#/activity' }, 'Activity'), h('span', { 'aria-current': 'page' }, 'Moderating a session')),
    h('header', { class: 'page-header' },
      h('p', { class: 'card__eyebrow' }, 'Moderated session'),
      h('h1', { class: 'page-header__title', id: 'moderation-title' }, 'Moderating a session'),
      h('p', { class: 'page-header__subtitle' },
        'The session runs only while a moderator has this page open. Leave it, and the session pauses.')),
    h('section', { class: 'card', 'aria-labelledby': 'moderation-status-title' },
      h('h2', { class: 'card__title', id: 'moderation-status-title' }, 'Status'),
      status, facts, actions),
    h('section', { class: 'card', 'aria-labelledby': 'moderation-feed-title' },
      h('h2', { class: 'card__title', id: 'moderation-feed-title' }, 'What happens in the session'),
      feedEmpty, feed));

  const live = () => ctx.live && ctx.live.state === LiveState.LIVE;

  /** Renews the watch while the page is open and live; learns how the session stands. */
  const renew = async () => {
    if (stopped || refusal) return;
    if (!live()) {
      render();
      return;
    }
    try {
      session = await ctx.api.put(`/impersonations/${encodeURIComponent(id)}/moderator`, { view_id: viewId });
      watching = true;
    } catch (err) {
      if (stopped) return;
      watching = false;
      if (err instanceof ApiError && err.status === 409) {
        // Ended (or not moderated): show how it stands.
        try {
          session = await ctx.api.get(`/impersonations/${encodeURIComponent(id)}`);
        } catch { /* the refusal below says enough */ }
        refusal = session && session.ended_at ? null : err;
      } else if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
        refusal = err;
      } else {
        replace(status, errorBlock(err, renew));
        return;
      }
    }
    render();
  };

  const leave = () => {
    if (!watching) return Promise.resolve();
    watching = false;
    return fetch(`/api/v1/impersonations/${encodeURIComponent(id)}/moderator/${viewId}`, {
      method: 'DELETE', credentials: 'same-origin', keepalive: true, headers: { 'X-CSRF-Token': ctx.csrf() },
    }).catch(() => {});
  };

  const render = () => {
    if (stopped) return;
    if (refusal) {
      replace(status, emptyState({
        iconName: 'shield',
        title: refusal.status === 404 ? 'No such session' : 'You cannot moderate this session',
        text: refusal.status === 404 ? 'There is no session with this link that you may see.' : refusal.message,
        actions: [h('a', { class: 'btn btn--secondary', href: '#/activity' }, 'Back to activity')],
      }));
      replace(facts);
      replace(actions);
      return;
    }
    if (!session) return;
    const agent = personName(session.actor);
    const user = personName(session.subject);
    document.getElementById('moderation-title').textContent = `Moderating ${agent} acting as ${user}`;
    const others = ((session.moderation && session.moderation.moderators) || []).filter((m) => m.id !== ctx.actor.id);
    if (session.ended_at) {
      replace(status, h('p', { class: 'moderation-status__line moderation-status__line--ended', id: 'moderation-state', 'data-state': 'ended' },
        icon('check', 'icon icon--sm'), ` The session has ended: ${session.ended_words || causeWords(session.cause) || 'it is over'}.`));
      replace(actions, h('a', { class: 'btn btn--secondary', href: '#/activity' }, 'Back to activity'));
    } else if (watching && live()) {
      replace(status, h('p', { class: 'moderation-status__line moderation-status__line--running', id: 'moderation-state', 'data-state': 'running' },
        h('span', { class: 'badge badge--success' }, 'Running'),
        ' You are moderating: the session runs while this page stays open.'));
      renderActions();
    } else {
      replace(status, h('p', { class: 'moderation-status__line moderation-status__line--paused', id: 'moderation-state', 'data-state': 'paused' },
        h('span', { class: 'badge badge--warning' }, icon('pause', 'icon icon--sm'), ' Paused'),
        ' The live connection is down: the session is paused until this page is live again.'));
      renderActions();
    }
    replace(facts, h('dl', { class: 'facts' },
      h('div', null, h('dt', null, 'Agent'), h('dd', { id: 'moderation-agent' }, agent)),
      h('div', null, h('dt', null, 'Acting as'), h('dd', { id: 'moderation-user' }, user)),
      h('div', null, h('dt', null, 'Reason'), h('dd', null, session.reason || '—', session.ticket ? ` (ticket ${session.ticket})` : '')),
      h('div', null, h('dt', null, 'Started'), h('dd', null, timeEl(session.started_at))),
      session.ended_at ? null : h('div', null, h('dt', null, 'Ends'), h('dd', null, timeEl(session.expires_at))),
      others.length ? h('div', null, h('dt', null, 'Also moderating'), h('dd', null, others.map(personName).join(', '))) : null));
  };

  let ending = false;
  const renderActions = () => {
    if (ending || actions.querySelector('#moderation-end')) return;
    const stop = h('a', { class: 'btn btn--secondary', href: '#/activity', id: 'moderation-leave' }, 'Stop moderating');
    const canEnd = ctx.permissions.revoke && ctx.permissions.revoke !== 'none';
    const end = canEnd ? busyButton('End the session', { class: 'btn btn--danger', id: 'moderation-end' }) : null;
    if (end) {
      end.addEventListener('click', async () => {
        ending = true;
        setBusy(end, true, 'Ending…');
        try {
          session = await ctx.api.post(`/impersonations/${encodeURIComponent(id)}/revoke`);
          ctx.toast(`${personName(session.actor)} no longer acts as ${personName(session.subject)}.`, { kind: 'success', title: 'Session ended' });
        } catch (err) {
          ctx.toast(err.message, { kind: 'error', title: 'Could not end the session' });
        } finally {
          ending = false;
          setBusy(end, false);
          render();
        }
      });
    }
    replace(actions, end, stop);
  };

  /** One event of the session, newest first. */
  const onEvent = (e) => {
    if (stopped || !e || !e.type || seen.has(e.seq)) return;
    seen.add(e.seq);
    feedEmpty.hidden = true;
    feed.prepend(h('li', { class: 'session-items__item', 'data-type': e.type },
      timeEl(e.time, formatTimeSeconds(e.time), 'session-items__time'),
      h('span', { class: 'session-items__text' }, eventSentence(e, new Names()))));
    if (e.type === 'impersonation.ended') {
      session = { ...(session || {}), ended_at: e.time, cause: e.outcome, ended_words: '' };
      watching = false;
      render();
    }
  };

  const offFeed = ctx.live.subscribe(`impersonation:${id}`, onEvent, { afterSeq: 0 });
  ctx.beforeSwitch.add(leave);
  window.addEventListener('pagehide', leave);
  renew();
  const timer = setInterval(renew, RENEW_MS);
  // The connection's state is checked every second: the watch is renewed
  // the moment it is live again, and the status says at once when not.
  let wasLive = live();
  const connTimer = setInterval(() => {
    if (live() === wasLive) return;
    wasLive = live();
    renew();
  }, 1000);
  return () => {
    stopped = true;
    clearInterval(timer);
    clearInterval(connTimer);
    offFeed();
    ctx.beforeSwitch.delete(leave);
    window.removeEventListener('pagehide', leave);
    leave();
  };
}
