// The summary of one support session, for the person it was about: who
// acted in their name, why, when, how it ended, and every change and
// refusal made in their name, in plain words. Reached from the "session
// ended" notification (#/sessions/{id}).

import { ApiError } from '../api.js';
import {
  causeWords, emptyState, errorBlock, formatDateTime, formatSlot, h, icon, loadingBlock, personName, replace, timeEl,
} from '../dom.js';
import { fieldWords } from './eventwords.js';

/** What a refused action was, in words that follow "Tried to". */
const TRIED = {
  'booking.create': 'book',
  'booking.cancel': 'cancel a booking',
  'booking.delete': 'cancel a booking',
  'booking.list': 'list bookings',
  'profile.update': 'change your name',
  'profile.rename': 'change your name',
  'password.change': 'change your password',
};

/** Mounts the summary of session params[0] into root. */
export function mountSessionSummary(ctx, root, { params }) {
  const id = params[0];
  let stopped = false;
  const box = h('div', { id: 'session-summary', class: 'stack', 'aria-live': 'polite' }, loadingBlock('Loading the session…'));
  root.append(
    h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' },
      h('a', { href: '#/notifications' }, 'Notifications'), h('span', { 'aria-current': 'page' }, 'Support session')),
    h('header', { class: 'page-header' },
      h('p', { class: 'card__eyebrow' }, 'Support session'),
      h('h1', { class: 'page-header__title' }, 'What was done in your name')),
    box);

  const load = async () => {
    replace(box, loadingBlock('Loading the session…'));
    try {
      const [summary, names] = await Promise.all([
        ctx.api.get(`/impersonations/${encodeURIComponent(id)}/summary`),
        facilityNames(ctx),
      ]);
      if (!stopped) render(summary, names);
    } catch (err) {
      if (stopped) return;
      replace(box, err instanceof ApiError && err.status === 404
        ? h('section', { class: 'card' }, emptyState({
          iconName: 'inbox', title: 'No such session',
          text: 'There is no support session with this link on your account.',
          actions: [h('a', { class: 'btn btn--secondary', href: '#/notifications' }, 'Back to notifications')],
        }))
        : errorBlock(err, load));
    }
  };

  const render = (summary, names) => {
    const imp = summary.impersonation || {};
    const changes = summary.changes || [];
    const refusals = summary.refusals || [];
    replace(box,
      h('section', { class: 'card', 'aria-labelledby': 'session-facts-title' },
        h('h2', { class: 'card__title', id: 'session-facts-title' }, 'The session'),
        sessionFacts(ctx, imp),
        summary.words ? h('p', { class: 'session-summary__words', id: 'session-words' }, summary.words) : null),
      itemSection('session-changes', 'Changes made in your name', changes,
        'Nothing was changed in your name.', (item) => changeWords(item)),
      itemSection('session-refusals', 'Refused in your name', refusals,
        'Nothing was refused in your name.', (item) => refusalWords(item, names)));
  };

  load();
  return () => { stopped = true; };
}

/** Who, why, when and how it ended. */
function sessionFacts(ctx, imp) {
  const note = ctx.notifications.items.find((n) => n.impersonation_id === imp.id && n.actor_email);
  const actor = personName(imp.actor) || 'Someone from support';
  const ended = imp.ended_at
    ? (imp.ended_words || causeWords(imp.cause) || 'It ended.')
    : 'It is still running.';
  return h('dl', { class: 'facts session-summary__facts' },
    h('div', null, h('dt', null, 'Who'), h('dd', { id: 'session-who' }, note ? `${actor} (${note.actor_email})` : actor)),
    h('div', null, h('dt', null, 'Why'), h('dd', { id: 'session-why' }, imp.reason || '—', imp.ticket ? ` (ticket ${imp.ticket})` : '')),
    h('div', null, h('dt', null, 'When'), h('dd', null,
      timeEl(imp.started_at), imp.ended_at ? [' to ', timeEl(imp.ended_at)] : ' until now')),
    h('div', null, h('dt', null, 'How it ended'), h('dd', { id: 'session-ended' }, ended)));
}

/** A titled list of items, or its empty state. */
function itemSection(id, title, items, empty, words) {
  return h('section', { class: 'card', 'aria-labelledby': `${id}-title` },
    h('h2', { class: 'card__title', id: `${id}-title` }, title, h('span', { class: 'badge badge--inline' }, String(items.length))),
    items.length
      ? h('ol', { class: 'session-items', id }, items.map((item) => h('li', { class: 'session-items__item', 'data-type': item.type },
        timeEl(item.time, formatDateTime(item.time), 'session-items__time'),
        h('span', { class: 'session-items__text' }, words(item)))))
      : h('p', { class: 'muted session-items__empty', id }, icon('check', 'icon icon--sm'), ' ', empty));
}

/** A change in words: "Booked Flow Cytometer for Mon 7 Dec 09:00–10:00". */
export function changeWords(item) {
  if (item.type === 'booking.created') {
    const booked = parseBookingReason(item.reason);
    if (booked) return `Booked ${booked.name} for ${formatSlot(booked.start, booked.end)}`;
    return `Booked ${item.reason || 'a resource'}`;
  }
  if (item.type === 'booking.cancelled') return `Cancelled a booking${item.reason ? `: ${item.reason}` : ''}`;
  if (item.type === 'field.revealed') {
    return `Looked at your ${fieldWords(item.object)}${item.reason ? ` — reason: ${item.reason}` : ''}`;
  }
  if (item.type === 'profile.renamed' || item.action === 'profile.rename') {
    return `Changed your name${item.reason ? ` to ${item.reason}` : ''}`;
  }
  const what = item.type.replaceAll('.', ' ').replaceAll('_', ' ');
  return item.reason ? `${what}: ${item.reason}` : what;
}

/**
 * A refusal in words: "Tried to book Confocal LSM 900 for Mon 09:00–10:00
 * — refused: …", or, refused before a resource was looked at, "Tried to
 * book in NEURO — refused: …".
 */
export function refusalWords(item, names) {
  const why = item.reason ? ` — refused: ${item.reason}` : ' — refused';
  const slot = parseSlotObject(item.object);
  if (item.action === 'booking.create' && slot) {
    return `Tried to book ${names.resources.get(slot.resource) || 'a resource'} for ${formatSlot(slot.start, slot.end)}${why}`;
  }
  const tried = TRIED[item.action] || (item.action || 'do something').replaceAll('.', ' ').replaceAll('_', ' ');
  const where = item.project ? ` in ${names.projects.get(item.project) || 'a project'}` : '';
  return `Tried to ${tried}${where}${why}`;
}

/** "<resource>, <start> to <end>" (a booking.created reason) taken apart. */
function parseBookingReason(reason) {
  const m = /^(.*), (\S+) to (\S+)$/.exec(reason || '');
  return m ? { name: m[1], start: m[2], end: m[3] } : null;
}

/** "resource:<id> <start>/<end>" (a refused booking's object) taken apart. */
function parseSlotObject(object) {
  const m = /^resource:(\S+) (\S+)\/(\S+)$/.exec(object || '');
  return m ? { resource: m[1], start: m[2], end: m[3] } : null;
}

/**
 * Resource names and project codes by id, to name what a refusal tried
 * to book and where; a list the user may not read stays empty.
 */
async function facilityNames(ctx) {
  const named = async (path, name) => {
    try {
      const page = await ctx.api.get(path);
      return new Map((page.items || []).map((x) => [x.id, name(x)]));
    } catch {
      return new Map();
    }
  };
  const [resources, projects] = await Promise.all([named('/resources', (r) => r.name), named('/projects', (p) => p.code)]);
  return { resources, projects };
}
