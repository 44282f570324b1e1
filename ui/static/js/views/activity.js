// The Activity panel, for managers, admins and owners: the live feed,
// filters, history, events grouped by impersonation session, export,
// chain verification, active sessions with force-end, and presence.

import { about, download } from '../api.js';
import {
  busyButton, causeWords, debounce, emptyState, errorBlock, formatCountdown, formatDateTime, formatTimeSeconds, h, icon,
  loadingBlock, openDialog, personName, relativeTime, replace, setBusy, timeEl,
} from '../dom.js';
import {
  dayStartIn, drawLoading, drawRate, drawTimeline, RATE_SPAN_MS, rateBuckets, todaySessions,
} from './activitycharts.js';
import { alertsCard, followingAlerts } from './alerts.js';
import { collapseViews, eventDetails, eventSentence, Names } from './eventwords.js';

const TYPES = [
  ['impersonation.started', 'Impersonation started'],
  ['impersonation.ended', 'Impersonation ended'],
  ['impersonation.denied', 'Impersonation refused'],
  ['impersonation.paused', 'Session paused'],
  ['impersonation.resumed', 'Session resumed'],
  ['action.allowed', 'Action allowed'],
  ['action.denied', 'Action denied'],
  ['booking.created', 'Booking created'],
  ['booking.cancelled', 'Booking cancelled'],
  ['auth.login', 'Sign-in'],
  ['auth.logout', 'Sign-out'],
  ['policy.changed', 'Policy changed'],
  ['user.suspended', 'User suspended'],
  ['user.renamed', 'Name changed'],
  ['request.created', 'Request to impersonate'],
  ['request.approved', 'Request approved'],
  ['request.denied', 'Request refused'],
  ['request.expired', 'Request expired'],
  ['request.cancelled', 'Request withdrawn'],
  ['consent.granted', 'Consent given'],
  ['consent.withdrawn', 'Consent withdrawn'],
  ['field.revealed', 'Personal data revealed'],
  ['settings.changed', 'Settings changed'],
  ['audit.refused', 'Oversized request refused'],
  ['alert.raised', 'Alert raised'],
  ['alert.acknowledged', 'Alert acknowledged'],
  ['sink.created', 'Audit sink added'],
  ['sink.changed', 'Audit sink changed'],
  ['sink.removed', 'Audit sink removed'],
  ['sink.tested', 'Audit sink tested'],
];
const TYPE_LABELS = Object.fromEntries(TYPES);

/** How a moderated session in force stands: paused, or who moderates it. */
function moderationLine(s) {
  const m = s.moderation || { paused: true, moderators: [] };
  return h('p', { class: 'session__meta', 'data-moderation': m.paused ? 'paused' : 'running' },
    icon(m.paused ? 'pause' : 'eye', 'icon icon--sm'),
    m.paused ? 'Paused: waiting for a moderator' : `Moderated by ${(m.moderators || []).map(personName).join(', ')}`);
}

/** A short label for an event type. */
export function eventTypeLabel(type) {
  return TYPE_LABELS[type] || type;
}

/**
 * One sentence saying what an event records, with real names when names
 * (a Names directory) knows them.
 */
export function eventSummary(e, names) {
  return eventSentence(e, names);
}

function chipClass(e) {
  // An acknowledged alert is settled: it reads apart from a raised one.
  const family = e.type === 'alert.acknowledged' ? 'alert-settled' : (e.type || '').split('.')[0];
  const bad = e.outcome === 'denied' || (e.type || '').endsWith('denied') || (e.type === 'sink.tested' && e.outcome === 'failed');
  return `type-chip type-chip--${family}${bad ? ' type-chip--denied' : ''}`;
}

/** Whether an event passes the filters (the server applies the same ones to history). */
function matches(f, e) {
  if (f.type && e.type !== f.type) return false;
  if (f.actor && (!e.actor || e.actor.id !== f.actor)) return false;
  if (f.subject && (!e.subject || e.subject.id !== f.subject)) return false;
  if (f.impersonation && e.impersonation_id !== f.impersonation) return false;
  if (f.project && e.project !== f.project) return false;
  const t = new Date(e.time).getTime();
  if (f.since && t < new Date(f.since).getTime()) return false;
  if (f.until && t > new Date(f.until).getTime()) return false;
  return true;
}

/** A datetime-local value ("2026-11-26T09:30") from the address, or ''. */
function localTime(v) {
  return v && /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(v) && !Number.isNaN(new Date(v).getTime()) ? v : '';
}

function filterQuery(f) {
  const q = {};
  for (const key of ['type', 'actor', 'subject', 'impersonation', 'project']) if (f[key]) q[key] = f[key];
  if (f.since) q.since = new Date(f.since).toISOString();
  if (f.until) q.until = new Date(f.until).toISOString();
  return q;
}

// ------------------------------------------------------------------ panel

export function mountActivity(ctx, root, { query }) {
  let stopped = false;
  const filters = {
    type: query.get('type') || '',
    actor: query.get('actor') || '',
    subject: query.get('subject') || '',
    impersonation: query.get('impersonation') || '',
    project: query.get('project') || '',
    since: localTime(query.get('since')),
    until: localTime(query.get('until')),
  };
  const knownNames = new Map();
  const names = new Names();
  if (filters.subject && query.get('subject_name')) knownNames.set(filters.subject, query.get('subject_name'));

  /** Events shown, newest first; history and live are merged by seq, never doubled. */
  let events = [];
  let cursor = '';
  let paused = false;
  let pending = [];
  let mode = 'timeline';

  // --- header: verification and export
  const verify = h('span', { id: 'chain-status', class: 'chain', role: 'status' }, icon('shield', 'icon icon--sm'), h('span', null, 'Checking the chain…'));
  // Exports are fetched rather than linked: a download link cannot tell a
  // transfer the server broke off (a failed export) from a finished one.
  const exportCsv = h('button', { type: 'button', class: 'btn btn--secondary btn--sm', id: 'export-csv', 'aria-label': 'Export as CSV' },
    icon('download', 'icon icon--sm'), 'CSV');
  const exportJsonl = h('button', { type: 'button', class: 'btn btn--secondary btn--sm', id: 'export-jsonl', 'aria-label': 'Export as JSONL (JSON Lines)' },
    icon('download', 'icon icon--sm'), 'JSONL');
  const exportStatus = h('span', { class: 'export__status', id: 'export-status', role: 'status' });
  const runExport = async (format) => {
    for (const b of [exportCsv, exportJsonl]) b.disabled = true;
    exportStatus.dataset.state = 'running';
    replace(exportStatus, 'Exporting…');
    let shown = 0;
    try {
      const { blob, bytes, filename } = await download('/activity/export', { format, ...filterQuery(filters) }, {
        onProgress(n) {
          if (n - shown < 256 * 1024) return;
          shown = n;
          replace(exportStatus, `Exporting… ${formatBytes(n)}`);
        },
      });
      const url = URL.createObjectURL(blob);
      const link = h('a', { href: url, download: filename, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      exportStatus.dataset.state = 'done';
      replace(exportStatus, icon('check', 'icon icon--sm'), `Exported ${formatBytes(bytes)} as ${filename}`);
    } catch (error) {
      exportStatus.dataset.state = 'error';
      replace(exportStatus, icon('alert', 'icon icon--sm'), `The export failed: ${error.message}`);
    } finally {
      for (const b of [exportCsv, exportJsonl]) b.disabled = false;
    }
  };
  exportCsv.addEventListener('click', () => runExport('csv'));
  exportJsonl.addEventListener('click', () => runExport('jsonl'));
  // The address keeps the filters: a reload, a bookmark or a link sent to
  // a colleague opens the same view.
  const keepInAddress = () => {
    const q = new URLSearchParams();
    for (const key of ['type', 'actor', 'subject', 'impersonation', 'project', 'since', 'until']) if (filters[key]) q.set(key, filters[key]);
    if (filters.subject && knownNames.has(filters.subject)) q.set('subject_name', knownNames.get(filters.subject));
    const query = q.toString();
    const hash = query ? `#/activity?${query}` : '#/activity';
    if (location.hash !== hash) history.replaceState(null, '', hash);
  };

  // --- filters
  const typeSel = h('select', { id: 'f-type', class: 'input input--sm' }, h('option', { value: '' }, 'All types'),
    TYPES.map(([v, label]) => h('option', { value: v }, label)));
  const actorSel = h('select', { id: 'f-actor', class: 'input input--sm' }, h('option', { value: '' }, 'Anyone'));
  const subjectSel = h('select', { id: 'f-subject', class: 'input input--sm' }, h('option', { value: '' }, 'Anyone'));
  const projectSel = h('select', { id: 'f-project', class: 'input input--sm' }, h('option', { value: '' }, 'All projects'));
  const sessionIn = h('input', { id: 'f-session', class: 'input input--sm', type: 'text', placeholder: 'Session id', autocomplete: 'off', spellcheck: 'false' });
  const sinceIn = h('input', { id: 'f-since', class: 'input input--sm', type: 'datetime-local' });
  const untilIn = h('input', { id: 'f-until', class: 'input input--sm', type: 'datetime-local' });
  const clear = h('button', { type: 'button', class: 'btn btn--ghost btn--sm', id: 'f-clear' }, 'Clear filters');
  const filterForm = h('form', { class: 'filters', id: 'activity-filters', 'aria-label': 'Filter activity' },
    field('f-type', 'Type', typeSel), field('f-actor', 'Actor', actorSel), field('f-subject', 'Subject', subjectSel),
    field('f-project', 'Project', projectSel), field('f-session', 'Session', sessionIn),
    field('f-since', 'From', sinceIn), field('f-until', 'To', untilIn),
    h('div', { class: 'filters__actions' }, clear));

  // --- feed
  const pauseBtn = h('button', { type: 'button', class: 'btn btn--secondary btn--sm', id: 'feed-pause', 'aria-pressed': 'false' },
    icon('pause', 'icon icon--sm'), h('span', { 'data-slot': 'label' }, 'Pause'));
  const modeTimeline = h('button', { type: 'button', class: 'segmented__item', 'aria-pressed': 'true', 'data-mode': 'timeline' }, 'Timeline');
  const modeSessions = h('button', { type: 'button', class: 'segmented__item', 'aria-pressed': 'false', 'data-mode': 'sessions', id: 'mode-sessions' }, 'By session');
  const newBtn = h('button', { type: 'button', class: 'new-events', id: 'new-events', hidden: true }, icon('arrowUp', 'icon icon--sm'), h('span', { 'data-slot': 'label' }, ''));
  const feedState = h('span', { class: 'feed__state', id: 'feed-state', 'aria-live': 'polite' });
  const list = h('ol', { class: 'feed', id: 'activity-feed', 'aria-label': 'Activity, newest first' });
  const listBox = h('div', { class: 'feed__scroll', id: 'feed-scroll', tabindex: '0', 'aria-label': 'Activity feed' }, list);
  const moreBox = h('div', { class: 'list-more' });
  const statusBox = h('div', { class: 'feed__status' });

  // --- today at a glance: the sessions' timeline and the event rate
  const timelineBox = h('div', { class: 'chart chart--timeline', id: 'sessions-timeline', 'data-state': 'loading' });
  const rateBox = h('div', { class: 'chart chart--rate', id: 'event-rate', 'data-state': 'loading' });
  const glance = h('section', { class: 'card glance', 'aria-labelledby': 'glance-title' },
    h('h2', { class: 'card__title', id: 'glance-title' }, 'Today at a glance'),
    h('div', { class: 'glance__grid' },
      h('div', { class: 'glance__part' }, h('h3', { class: 'glance__title', id: 'timeline-title' }, 'Impersonation sessions today'), timelineBox),
      h('div', { class: 'glance__part' }, h('h3', { class: 'glance__title', id: 'rate-title' }, 'Events per 5 minutes, last 2 hours'), rateBox)));
  const today = glanceAtToday(ctx, { timelineBox, rateBox, onPick: (id) => showSession(id), picked: () => filters.impersonation });

  // --- alerts, sessions and presence
  const alerts = alertsCard(ctx, {
    onShowSession: (id) => {
      showSession(id);
      listBox.focus();
    },
  });
  const sessionsBox = h('div', { id: 'active-sessions' }, loadingBlock('Loading sessions…'));
  const presenceBox = h('div', { id: 'presence-list' });

  const scope = ctx.permissions.activity === 'all' ? 'All activity in the facility.' : 'Activity of the projects you lead and their members.';
  root.append(
    h('header', { class: 'page-header page-header--row' },
      h('div', null,
        h('p', { class: 'card__eyebrow' }, 'Audit'),
        h('h1', { class: 'page-header__title' }, 'Activity'),
        h('p', { class: 'page-header__subtitle' }, scope)),
      h('div', { class: 'cluster' }, verify,
        h('span', { class: 'export' }, h('span', { class: 'export__label' }, 'Export'), exportCsv, exportJsonl, exportStatus))),
    h('div', { class: 'activity-layout' },
      h('div', { class: 'activity-main' },
        glance,
        h('section', { class: 'card card--flush', 'aria-labelledby': 'feed-title' },
          h('div', { class: 'feed__toolbar' },
            h('h2', { class: 'card__title', id: 'feed-title' }, 'Live feed'),
            feedState,
            h('span', { class: 'topbar__spacer' }),
            h('div', { class: 'segmented', role: 'group', 'aria-label': 'Show' }, modeTimeline, modeSessions),
            pauseBtn),
          h('details', { class: 'filters-wrap', open: filtersActive(filters) ? true : null },
            h('summary', { class: 'filters-wrap__summary' }, 'Filters', h('span', { class: 'filters-wrap__count', id: 'filter-count' })),
            filterForm),
          h('div', { class: 'feed__body' }, newBtn, statusBox, listBox, moreBox))),
      h('aside', { class: 'activity-side' },
        alerts.el,
        h('section', { class: 'card', 'aria-labelledby': 'sessions-title' },
          h('h2', { class: 'card__title', id: 'sessions-title' }, 'Active sessions'), sessionsBox),
        h('section', { class: 'card', 'aria-labelledby': 'presence-title' },
          h('h2', { class: 'card__title', id: 'presence-title' }, 'Who is viewing whom'), presenceBox))));

  // ---------------------------------------------------------- rendering

  const filterCount = () => {
    const n = Object.values(filters).filter(Boolean).length;
    replace(root.querySelector('#filter-count'), n ? ` (${n})` : '');
  };

  const showSession = (id) => { filters.impersonation = id; sessionIn.value = id; reload(); };

  const eventMeta = (e) => h('p', { class: 'feed__meta' },
    timeEl(e.time, formatTimeSeconds(e.time)),
    e.project ? h('span', null, ` · ${names.project(e.project)}`) : null,
    e.impersonation_id ? [' · ', h('button', {
      type: 'button', class: 'link-button', title: 'Show only this session',
      onclick: () => showSession(e.impersonation_id),
    }, `session ${e.impersonation_id.slice(-6)}`)] : null,
    ' · ', h('span', { class: 'feed__seq' }, `#${e.seq}`));

  /** Details and rows of views the reader opened, by seq: they stay open as the feed redraws. */
  const opened = new Set();
  const keepOpen = (el, key) => {
    el.addEventListener('toggle', () => {
      if (el.open) opened.add(key);
      else opened.delete(key);
    });
    return el;
  };

  /** The raw facts behind the sentence, folded away. */
  const eventFacts = (e) => keepOpen(h('details', { class: 'feed__details', open: opened.has(`facts ${e.seq}`) || null },
    h('summary', { class: 'feed__details-summary' }, 'Details'),
    h('dl', { class: 'feed__facts' }, eventDetails(e, names).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]))), `facts ${e.seq}`);

  const eventItem = (e, fresh) => h('li', {
    class: `feed__item${fresh ? ' feed__item--new' : ''}`, 'data-seq': String(e.seq), 'data-type': e.type,
  },
  h('span', { class: chipClass(e) }, eventTypeLabel(e.type)),
  h('div', { class: 'feed__main' },
    h('p', { class: 'feed__text' }, eventSummary(e, names)),
    eventMeta(e),
    eventFacts(e)));

  /** Repeated views as one row ("viewed resources ×3") that expands to each. */
  const viewsItem = (events, fresh) => {
    const newest = events[0];
    const oldest = events[events.length - 1];
    // Keyed by the oldest view: a newer one extends the row, not the key.
    const key = `views ${oldest.seq}`;
    const inner = keepOpen(h('details', { class: 'feed__repeats', open: opened.has(key) || null },
      h('summary', { class: 'feed__repeats-summary' }, `Show the ${events.length} views`),
      h('ol', { class: 'feed feed--nested feed--repeats' }, events.map((e) => eventItem(e, false)))), key);
    return h('li', {
      class: `feed__item feed__item--views${fresh ? ' feed__item--new' : ''}`, 'data-seq': String(newest.seq), 'data-type': newest.type,
      'data-count': String(events.length),
    },
    h('span', { class: chipClass(newest) }, eventTypeLabel(newest.type)),
    h('div', { class: 'feed__main' },
      h('p', { class: 'feed__text' }, eventSummary(newest, names), h('span', { class: 'feed__times' }, ` ×${events.length}`)),
      h('p', { class: 'feed__meta' }, timeEl(oldest.time, formatTimeSeconds(oldest.time)), ' – ', timeEl(newest.time, formatTimeSeconds(newest.time))),
      inner));
  };

  /** The rows of a list of events, newest first, repeated views collapsed. */
  const feedRows = (list, fresh = new Set()) => collapseViews(list).map((row) => (row.events.length > 1
    ? viewsItem(row.events, fresh.has(row.events[0].seq))
    : eventItem(row.events[0], fresh.has(row.events[0].seq))));

  const render = (fresh) => {
    filterCount();
    if (!events.length) {
      list.replaceChildren();
      replace(statusBox, emptyState({ iconName: 'activity', title: filtersActive(filters) ? 'Nothing matches these filters' : 'No activity yet',
        text: 'New events appear here as they happen.' }));
      return;
    }
    statusBox.replaceChildren();
    keepFocusIn(list, listBox, () => {
      if (mode === 'timeline') list.replaceChildren(...feedRows(events, fresh));
      else list.replaceChildren(...groupBySession(events).map((g) => groupItem(g)));
    });
  };

  const groupItem = (g) => {
    if (!g.id) {
      return h('li', { class: 'feed-group feed-group--none' },
        h('details', { open: true },
          h('summary', { class: 'feed-group__head' }, h('strong', null, 'Outside impersonation'), h('span', { class: 'muted' }, ` · ${g.events.length} events`)),
          h('ol', { class: 'feed feed--nested' }, feedRows(g.events))));
    }
    const start = g.events.find((e) => e.type === 'impersonation.started');
    const end = g.events.find((e) => e.type === 'impersonation.ended');
    const any = g.events[0];
    return h('li', { class: 'feed-group', 'data-session': g.id },
      h('details', { open: true },
        h('summary', { class: 'feed-group__head' },
          h('strong', null, `${personName(any.actor)} as ${personName(any.subject)}`),
          h('span', { class: 'muted' }, ` · ${g.events.length} events`),
          start ? h('span', { class: 'muted' }, ` · started ${formatDateTime(start.time)}`) : null,
          end ? h('span', { class: 'badge badge--inline badge--text' }, `ended: ${causeWords(end.outcome)}`) : h('span', { class: 'badge badge--warning badge--inline badge--text' }, 'in progress')),
        h('ol', { class: 'feed feed--nested' }, feedRows(g.events))));
  };

  const renderMore = () => {
    replace(moreBox, cursor ? busyButton('Load older events', { class: 'btn btn--secondary', id: 'load-older', onclick: (e) => loadOlder(e.currentTarget) }) : null);
  };

  const scrolledAway = () => listBox.scrollTop > 8;

  const updateNew = () => {
    const n = pending.length;
    newBtn.hidden = n === 0;
    replace(newBtn.querySelector('[data-slot="label"]'), `${n} new ${n === 1 ? 'event' : 'events'}`);
    feedState.textContent = paused ? `Paused${n ? ` · ${n} waiting` : ''}` : '';
  };

  /** Shows the queued live events at the top. */
  const flush = () => {
    if (!pending.length) return;
    const batch = pending;
    pending = [];
    events = batch.concat(events);
    // A redraw rather than a prepend: a new view may extend a row of
    // repeated ones.
    render(new Set(batch.map((e) => e.seq)));
    updateNew();
  };

  // ------------------------------------------------------------- data

  let generation = 0;
  const reload = async () => {
    const gen = ++generation;
    keepInAddress();
    today.redraw();
    filterCount();
    events = [];
    pending = [];
    cursor = '';
    updateNew();
    list.replaceChildren();
    replace(statusBox, loadingBlock('Loading activity…'));
    moreBox.replaceChildren();
    try {
      const page = await ctx.api.get('/activity', { query: { ...filterQuery(filters), limit: 50 } });
      if (stopped || gen !== generation) return;
      const fresh = page.items || [];
      // Live events that arrived while the page loaded stay on top.
      const known = new Set(fresh.map((e) => e.seq));
      events = events.filter((e) => !known.has(e.seq)).concat(fresh);
      events.sort((a, b) => b.seq - a.seq);
      cursor = page.next_cursor || '';
      render();
      renderMore();
    } catch (error) {
      if (stopped || gen !== generation) return;
      list.replaceChildren();
      replace(statusBox, error.status === 403
        ? emptyState({ iconName: 'shield', title: 'You cannot read the activity log', text: error.reason || error.message })
        : errorBlock(error, reload));
    }
  };

  const loadOlder = async (button) => {
    setBusy(button, true, 'Loading…');
    try {
      const page = await ctx.api.get('/activity', { query: { ...filterQuery(filters), limit: 50, cursor } });
      const older = (page.items || []).filter((e) => !events.some((x) => x.seq === e.seq));
      events = events.concat(older);
      cursor = page.next_cursor || '';
      render();
      renderMore();
    } catch (error) {
      setBusy(button, false);
      ctx.toast(error.message, { kind: 'error' });
    }
  };

  /** A live event: shown at once, or queued while paused or scrolled. */
  const onLive = (e) => {
    if (!e || !e.seq) return;
    today.add([e]);
    alerts.onEvent(e);
    if (['impersonation.started', 'impersonation.ended', 'impersonation.paused', 'impersonation.resumed'].includes(e.type)) loadSessions();
    if (!matches(filters, e) || events.some((x) => x.seq === e.seq) || pending.some((x) => x.seq === e.seq)) return;
    pending.unshift(e);
    if (!paused && !scrolledAway()) flush();
    else updateNew();
  };

  // ---------------------------------------------------- active sessions

  let sessions = [];
  const renderSessions = () => {
    if (!sessions.length) {
      replace(sessionsBox, emptyState({ iconName: 'users', title: 'No one is impersonating', text: 'Sessions in your scope appear here while they run.' }));
      return;
    }
    replace(sessionsBox, h('ul', { class: 'sessions' }, sessions.map((s) => h('li', { class: 'session', 'data-session-id': s.id },
      h('div', { class: 'session__who' },
        h('strong', null, personName(s.actor)), h('span', { class: 'muted' }, ' as '), h('strong', null, personName(s.subject))),
      h('p', { class: 'session__reason' }, s.reason, s.ticket ? ` · ${s.ticket}` : ''),
      h('p', { class: 'session__meta' },
        icon('clock', 'icon icon--sm'),
        h('span', { class: 'session__left', 'data-expires': s.expires_at }, remaining(s.expires_at)),
        h('span', { class: 'muted' }, ` · since ${formatDateTime(s.started_at)}`)),
      s.moderated ? moderationLine(s) : null,
      h('div', { class: 'session__actions' },
        s.moderated && s.actor && s.actor.id !== ctx.actor.id && ctx.permissions.moderate && ctx.permissions.moderate !== 'none'
          ? h('a', { class: 'btn btn--primary btn--sm', href: `#/moderate/${encodeURIComponent(s.id)}`, 'data-moderate': s.id }, 'Moderate')
          : null,
        s.actor && s.actor.id === ctx.actor.id
          ? h('span', { class: 'muted' }, 'Your session')
          : h('button', { type: 'button', class: 'btn btn--danger btn--sm', 'data-revoke': s.id, onclick: () => confirmRevoke(s) }, 'End session'),
        h('button', {
          type: 'button', class: 'btn btn--ghost btn--sm',
          onclick: () => { filters.impersonation = s.id; sessionIn.value = s.id; reload(); },
        }, 'Show events'))))));
  };
  const loadSessions = async () => {
    try {
      const page = await ctx.api.get('/impersonations', { query: { active: 'true' } });
      if (stopped) return;
      sessions = page.items || [];
      renderSessions();
    } catch (error) {
      if (!stopped) replace(sessionsBox, errorBlock(error, loadSessions));
    }
  };
  const tick = setInterval(() => {
    for (const el of sessionsBox.querySelectorAll('[data-expires]')) el.textContent = remaining(el.dataset.expires);
    if (sessions.some((s) => new Date(s.expires_at).getTime() < Date.now() - 5000)) {
      sessions = sessions.filter((s) => new Date(s.expires_at).getTime() >= Date.now() - 5000);
      renderSessions();
    }
  }, 1000);

  const confirmRevoke = (s) => openDialog({
    title: 'End this session?',
    build: (close) => {
      const error = h('div', { class: 'callout callout--danger', role: 'alert' });
      const yes = busyButton('End session', { class: 'btn btn--danger', id: 'revoke-confirm' });
      yes.addEventListener('click', async () => {
        setBusy(yes, true, 'Ending…');
        try {
          await ctx.api.post(`/impersonations/${encodeURIComponent(s.id)}/revoke`, {});
          close(true);
          ctx.toast(`${personName(s.actor)}'s session as ${personName(s.subject)} was ended.`, { kind: 'success' });
          loadSessions();
        } catch (err) {
          setBusy(yes, false);
          error.replaceChildren(h('p', null, err.message, err.reason ? ` ${err.reason}` : ''));
        }
      });
      return h('div', { class: 'dialog__body' },
        h('p', null, `${personName(s.actor)} is acting as ${personName(s.subject)} (${s.reason}). Ending it returns ${personName(s.actor)} to their own account at once.`),
        error,
        h('div', { class: 'dialog__actions' },
          h('button', { type: 'button', class: 'btn btn--secondary', autofocus: true, onclick: () => close(false) }, 'Keep it running'), yes));
    },
  });

  // ------------------------------------------------------------ presence

  const renderPresence = (st) => {
    const viewers = (st && st.viewers) || [];
    const holds = (st && st.holds) || [];
    if (!viewers.length && !holds.length) {
      replace(presenceBox, emptyState({ iconName: 'eye', title: 'Nobody right now', text: 'Support staff looking at a user’s page show up here.' }));
      return;
    }
    replace(presenceBox, h('ul', { class: 'presence' },
      holds.map((hd) => h('li', { class: 'presence__item presence__item--hold' },
        icon('alert', 'icon icon--sm'),
        h('span', null, h('strong', null, personName(hd.actor)), ' is acting as ', h('strong', null, personName(hd.user))))),
      viewers.map((v) => h('li', { class: 'presence__item' },
        icon('eye', 'icon icon--sm'),
        h('span', null, h('strong', null, personName(v.viewer)), ' is viewing ', h('strong', null, personName(v.user)),
          h('span', { class: 'muted' }, ` · ${relativeTime(v.since)}`))))));
  };
  const offPresence = ctx.presence.on(renderPresence);
  renderPresence(ctx.presence.state);

  // ---------------------------------------------------------- wiring

  const readFilters = () => {
    filters.type = typeSel.value;
    filters.actor = actorSel.value;
    filters.subject = subjectSel.value;
    filters.project = projectSel.value;
    filters.impersonation = sessionIn.value.trim();
    filters.since = sinceIn.value;
    filters.until = untilIn.value;
    reload();
  };
  for (const el of [typeSel, actorSel, subjectSel, projectSel, sinceIn, untilIn]) el.addEventListener('change', readFilters);
  sessionIn.addEventListener('change', readFilters);
  filterForm.addEventListener('submit', (e) => { e.preventDefault(); readFilters(); });
  clear.addEventListener('click', () => {
    for (const el of [typeSel, actorSel, subjectSel, projectSel, sessionIn, sinceIn, untilIn]) el.value = '';
    readFilters();
  });

  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.setAttribute('aria-pressed', String(paused));
    replace(pauseBtn, icon(paused ? 'play' : 'pause', 'icon icon--sm'), h('span', { 'data-slot': 'label' }, paused ? 'Resume' : 'Pause'));
    if (!paused && !scrolledAway()) flush();
    updateNew();
  });
  newBtn.addEventListener('click', () => {
    listBox.scrollTop = 0;
    flush();
    listBox.focus();
  });
  listBox.addEventListener('scroll', () => {
    if (!paused && !scrolledAway()) flush();
  }, { passive: true });
  for (const b of [modeTimeline, modeSessions]) {
    b.addEventListener('click', () => {
      mode = b.dataset.mode;
      modeTimeline.setAttribute('aria-pressed', String(mode === 'timeline'));
      modeSessions.setAttribute('aria-pressed', String(mode === 'sessions'));
      flush();
      render();
    });
  }

  // Names: the people, resources and projects the events name by id.
  const loadNames = async () => {
    const [users, resources, projects] = await Promise.all([
      loadDirectory(ctx).catch(() => []),
      ctx.api.get('/resources').then((r) => r.items || []).catch(() => []),
      ctx.api.get('/projects').then((r) => r.items || []).catch(() => []),
    ]);
    if (stopped) return;
    names.addUsers(users);
    names.addResources(resources);
    names.addProjects(projects);
    for (const u of users) knownNames.set(u.id, u.name);
    const people = [...knownNames.entries()].sort((a, b) => a[1].localeCompare(b[1]));
    for (const sel of [actorSel, subjectSel]) {
      sel.append(...people.map(([id, name]) => h('option', { value: id }, name)));
    }
    for (const p of projects) projectSel.append(h('option', { value: p.id }, `${p.code} · ${p.name}`));
    actorSel.value = filters.actor;
    subjectSel.value = filters.subject;
    projectSel.value = filters.project;
    if (events.length) render();
  };
  loadNames();
  typeSel.value = filters.type;
  sessionIn.value = filters.impersonation;
  sinceIn.value = filters.since;
  untilIn.value = filters.until;

  // Chain verification (admins and owners: it walks the whole log).
  // On a large log the server answers with how far it has got (202,
  // state "running"), and the panel asks again for the same run.
  let verifyTimer = 0;
  const runVerify = async (run) => {
    clearTimeout(verifyTimer);
    if (!run) {
      replace(verify, icon('shield', 'icon icon--sm'), h('span', null, 'Checking the chain…'));
      verify.dataset.state = 'checking';
    }
    try {
      const v = await ctx.api.get('/activity/verify', run ? { query: { run } } : undefined);
      if (stopped) return;
      if (v.state === 'running') {
        showVerifyProgress(verify, v);
        verifyTimer = setTimeout(() => runVerify(v.run), 1500);
        return;
      }
      verify.removeAttribute('aria-busy');
      const words = chainWords(v);
      verify.dataset.state = words.state;
      verify.dataset.code = v.code || '';
      replace(verify, icon(words.state === 'ok' ? 'check' : 'alert', 'icon icon--sm'),
        h('span', { class: 'chain__text' }, h('strong', null, words.title), words.detail ? h('span', { class: 'chain__detail' }, words.detail) : null));
    } catch (error) {
      if (stopped) return;
      verify.removeAttribute('aria-busy');
      delete verify.dataset.code;
      if (error.status === 403) {
        // Said once, with what this person does see; nothing to press.
        verify.dataset.state = 'na';
        replace(verify, icon('shield', 'icon icon--sm'),
          h('span', { class: 'chain__text' }, h('strong', null, 'Chain verification: admins and owners'),
            h('span', { class: 'chain__detail' }, 'You see the events of your projects.')));
        return;
      }
      verify.dataset.state = 'error';
      replace(verify, icon('alert', 'icon icon--sm'), h('span', { title: error.reason || error.message }, 'Could not verify'));
    }
    verify.append(h('button', { type: 'button', class: 'link-button chain__again', onclick: () => runVerify(), 'aria-label': 'Verify the chain again' }, 'Verify'));
  };

  // The live stream starts from the head of the log, then history loads:
  // events are deduplicated by seq, so nothing is missed or doubled.
  // When the alerts' toasts follow the topic already, it is live from
  // before this page and needs no resume point.
  let offLive = () => {};
  const follow = (options) => {
    if (!stopped) offLive = ctx.live.subscribe('activity', onLive, options);
  };
  followingAlerts(ctx).then(async (live) => {
    if (live) return follow();
    const head = await ctx.api.get('/activity', { query: { limit: 1 } });
    return follow({ afterSeq: head.items && head.items[0] ? head.items[0].seq : 0 });
  }).catch(() => follow()).finally(() => {
    if (!stopped) reload();
  });
  loadSessions();
  alerts.load();
  runVerify();
  today.load();

  return () => {
    stopped = true;
    clearTimeout(verifyTimer);
    today.stop();
    alerts.stop();
    clearInterval(tick);
    offLive();
    offPresence();
  };
}

/** How far a verification of the whole log has got, with a bar. */
function showVerifyProgress(box, v) {
  const head = Math.max(Number(v.head) || 0, 1);
  const checked = Math.min(Number(v.checked) || 0, head);
  const pct = Math.floor((100 * checked) / head);
  box.dataset.state = 'checking';
  box.setAttribute('aria-busy', 'true');
  replace(box, icon('shield', 'icon icon--sm'),
    h('span', { class: 'chain__text' }, h('strong', null, 'Checking the chain…'),
      h('span', { class: 'chain__detail', id: 'chain-progress-text' }, `${checked.toLocaleString()} of ${head.toLocaleString()} events (${pct}%)`)),
    h('progress', { class: 'chain__progress', max: String(head), value: String(checked), 'aria-labelledby': 'chain-progress-text' }));
}

/**
 * Redraws a list and puts the keyboard back where it was: on the same
 * control of the same event, or on the list's box when that is gone.
 */
function keepFocusIn(list, box, redraw) {
  const el = document.activeElement;
  const item = el && el !== list && list.contains(el) ? el.closest('[data-seq]') : null;
  redraw();
  if (!item || el.isConnected) return;
  const again = list.querySelector(`[data-seq="${CSS.escape(item.dataset.seq)}"]`);
  const same = again && [...again.querySelectorAll(el.tagName)].find((x) => x.className === el.className);
  (same || box).focus();
}

/** The most people the panel reads from the directory (pages of 200). */
const DIRECTORY_PAGES = 10;

/** The people the viewer may see, paged: GET /api/v1/users. */
async function loadDirectory(ctx) {
  const people = [];
  let cursor = '';
  for (let i = 0; i < DIRECTORY_PAGES; i++) {
    const page = await ctx.api.get('/users', { query: cursor ? { limit: 200, cursor } : { limit: 200 } });
    people.push(...(page.items || []));
    cursor = page.next_cursor || '';
    if (!cursor) break;
  }
  return people;
}

/** The most pages of today's events the pictures read (of 200 each). */
const TODAY_PAGES = 50;

/**
 * Today's events, drawn as the sessions' timeline and the event rate and
 * kept up to date: load() reads today from the log, add() takes live
 * events, and a clock redraws running sessions as they grow.
 */
function glanceAtToday(ctx, { timelineBox, rateBox, onPick, picked }) {
  const seen = new Map();
  let timeZone = '';
  let dayStart = dayStartIn(new Date(), timeZone);
  let loaded = false;
  let stopped = false;
  // Kept: today's events, and the two hours the rate chart shows when
  // they reach back before midnight.
  const horizon = () => new Date(Math.min(dayStart.getTime(), Date.now() - RATE_SPAN_MS));
  const draw = () => {
    if (stopped || !loaded) return;
    const now = new Date();
    if (now.getTime() >= dayStart.getTime() + 24 * 3600000) {
      dayStart = dayStartIn(now, timeZone);
      const from = horizon();
      for (const [seq, e] of seen) if (new Date(e.time) < from) seen.delete(seq);
    }
    const list = [...seen.values()];
    const todays = list.filter((e) => new Date(e.time) >= dayStart);
    drawTimeline(timelineBox, { sessions: todaySessions(todays, dayStart), dayStart, now, timeZone, picked: picked(), onPick });
    drawRate(rateBox, { buckets: rateBuckets(list, now), timeZone });
    rateBox.dataset.state = 'ready';
  };
  const soon = debounce(draw, 150);
  const clock = setInterval(draw, 15000);
  const resized = typeof ResizeObserver === 'function' ? new ResizeObserver(soon) : null;
  if (resized) resized.observe(rateBox);
  const add = (list) => {
    const from = horizon();
    for (const e of list) if (e && e.seq && new Date(e.time) >= from) seen.set(e.seq, e);
    soon();
  };
  const load = async () => {
    drawLoading(timelineBox, 'Loading today’s sessions…');
    drawLoading(rateBox, 'Loading the event rate…');
    try {
      const facts = await about().catch(() => ({}));
      timeZone = validZone(facts && facts.time_zone);
      dayStart = dayStartIn(new Date(), timeZone);
      await readSince(ctx, horizon(), add, () => stopped);
      loaded = true;
      draw();
    } catch (error) {
      if (stopped) return;
      for (const box of [timelineBox, rateBox]) {
        box.dataset.state = 'error';
        replace(box, error.status === 403
          ? emptyState({ iconName: 'shield', title: 'Not in your scope', text: error.reason || error.message })
          : errorBlock(error, load));
      }
    }
  };
  return {
    load, add,
    redraw: soon,
    stop() {
      stopped = true;
      clearInterval(clock);
      soon.cancel();
      if (resized) resized.disconnect();
    },
  };
}

/** Reads the log from since to now, page by page, handing each page to add. */
async function readSince(ctx, since, add, stopped) {
  let cursor = '';
  for (let i = 0; i < TODAY_PAGES && !stopped(); i++) {
    const query = { since: since.toISOString(), limit: 200 };
    if (cursor) query.cursor = cursor;
    const page = await ctx.api.get('/activity', { query });
    add(page.items || []);
    cursor = page.next_cursor || '';
    if (!cursor) return;
  }
}

/** The zone when the browser knows it, else '' (the browser's own). */
function validZone(zone) {
  if (!zone || zone === 'Local') return '';
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone });
    return zone;
  } catch {
    return '';
  }
}

/** A size in bytes for people. */
function formatBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

const CHAIN_TITLES = {
  truncated: 'Events were removed',
  rewritten: 'The history was rewritten',
  added: 'Events were added outside Standin',
  altered: 'An event was altered',
  missing: 'An event is missing',
  damaged: 'An event is damaged',
  anchor: 'The signed record of the log is damaged',
};

/**
 * What the chain's state means, in words a manager understands: a title,
 * a sentence of detail, and the state (ok, warn or broken) the badge shows.
 */
export function chainWords(v) {
  const n = (x) => Number(x || 0).toLocaleString();
  if (!v.ok) {
    const title = CHAIN_TITLES[v.code] || 'The log cannot be trusted';
    return { state: 'broken', title: v.broken_at ? `${title} (from event #${n(v.broken_at)})` : title, detail: v.problem || '' };
  }
  if (v.anchor_error) {
    return { state: 'warn', title: `Intact · ${n(v.checked)} events`, detail: `But the newest events are not signed yet: ${v.anchor_error}` };
  }
  const bg = v.background || {};
  const signed = v.anchor ? `, signed up to event #${n(v.anchor.seq)}` : '';
  const detail = bg.state === 'running' ? 'A full check started with the server is still running.' : '';
  return { state: 'ok', title: `Chain verified · ${n(v.checked)} events${signed}`, detail };
}

function field(id, label, control) {
  return h('div', { class: 'field field--compact' }, h('label', { for: id }, label), control);
}

function filtersActive(f) {
  return Object.values(f).some(Boolean);
}

function remaining(expiresAt) {
  const left = new Date(expiresAt).getTime() - Date.now();
  if (Number.isNaN(left)) return '';
  return left > 0 ? `${formatCountdown(left)} left` : 'ending…';
}

/** Groups events by impersonation session, newest group first. */
function groupBySession(events) {
  const groups = new Map();
  for (const e of events) {
    const id = e.impersonation_id || '';
    if (!groups.has(id)) groups.set(id, { id, events: [], top: e.seq });
    groups.get(id).events.push(e);
  }
  return [...groups.values()].sort((a, b) => {
    if (!a.id !== !b.id) return a.id ? -1 : 1;
    return b.top - a.top;
  });
}
