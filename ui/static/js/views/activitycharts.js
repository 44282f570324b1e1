// The Activity panel's pictures: today's impersonation sessions on a time
// axis, and the event rate over the last two hours with the denials marked.
//
// The numbers are computed by pure functions (todaySessions, rateBuckets)
// and drawn as inline SVG, each picture with a text alternative: the
// session bars are buttons whose text says who, on whom, when and how many
// refusals; the rate chart has an accessible name and a visually hidden
// table of the same numbers.

import { emptyState, h, loadingBlock, replace } from '../dom.js';

/** The width of one bar of the rate chart, and the span it covers. */
export const BUCKET_MS = 5 * 60 * 1000;
export const RATE_SPAN_MS = 2 * 60 * 60 * 1000;
const HOUR = 60 * 60 * 1000;
const SVG = 'http://www.w3.org/2000/svg';

/** Whether an event is a refusal the rate chart marks. */
export function isDenial(e) {
  return e.type === 'action.denied' || e.type === 'impersonation.denied';
}

/** The offset of a time zone from UTC at a moment, in ms (0 for an unknown zone). */
export function zoneOffset(at, timeZone) {
  if (!timeZone) return -new Date(at).getTimezoneOffset() * 60000;
  try {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(at).map((p) => [p.type, p.value]));
    const asUTC = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
    return asUTC - Math.floor(at.getTime() / 1000) * 1000;
  } catch {
    return -new Date(at).getTimezoneOffset() * 60000;
  }
}

/** The midnight that starts the day of now in a time zone (the browser's when none). */
export function dayStartIn(now, timeZone) {
  const local = new Date(now.getTime() + zoneOffset(now, timeZone));
  const midnightAsUTC = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate());
  // The offset at midnight itself, which differs from now's on a DST day.
  const guess = new Date(midnightAsUTC - zoneOffset(now, timeZone));
  return new Date(midnightAsUTC - zoneOffset(guess, timeZone));
}

/**
 * Today's impersonation sessions from today's events: {id, actor, subject,
 * start, end (null while running), refusals, refusalTimes, carried (started
 * before the day)}, in order of start.
 */
export function todaySessions(events, dayStart) {
  const byId = new Map();
  for (const e of events) {
    if (!e.impersonation_id) continue;
    let s = byId.get(e.impersonation_id);
    if (!s) {
      s = { id: e.impersonation_id, actor: e.actor, subject: e.subject, start: null, end: null, refusals: 0, refusalTimes: [], first: null };
      byId.set(s.id, s);
    }
    const t = new Date(e.time);
    if (!s.first || t < s.first) s.first = t;
    if (e.type === 'impersonation.started') s.start = t;
    if (e.type === 'impersonation.ended') s.end = t;
    if (e.type === 'action.denied') {
      s.refusals += 1;
      s.refusalTimes.push(t);
    }
  }
  const out = [];
  for (const s of byId.values()) {
    const carried = !s.start;
    out.push({ ...s, start: s.start || dayStart, carried });
  }
  return out.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
}

/**
 * Events per 5 minutes over the two hours up to now, oldest first:
 * {start, end, total, denied}. The last bucket holds now.
 */
export function rateBuckets(events, now) {
  const lastStart = Math.floor(now.getTime() / BUCKET_MS) * BUCKET_MS;
  const n = RATE_SPAN_MS / BUCKET_MS;
  const first = lastStart - (n - 1) * BUCKET_MS;
  const buckets = Array.from({ length: n }, (_, i) => ({
    start: new Date(first + i * BUCKET_MS), end: new Date(first + (i + 1) * BUCKET_MS), total: 0, denied: 0,
  }));
  for (const e of events) {
    const i = Math.floor((new Date(e.time).getTime() - first) / BUCKET_MS);
    if (i < 0 || i >= n) continue;
    buckets[i].total += 1;
    if (isDenial(e)) buckets[i].denied += 1;
  }
  return buckets;
}

/** The part of today the timeline shows: whole hours from the first session (or an hour ago) to now. */
export function timelineAxis(sessions, dayStart, now) {
  const dayEnd = dayStart.getTime() + 24 * HOUR;
  const earliest = Math.min(now.getTime() - HOUR, ...sessions.map((s) => s.start.getTime()));
  const from = dayStart.getTime() + Math.floor((Math.max(earliest, dayStart.getTime()) - dayStart.getTime()) / HOUR) * HOUR;
  const to = dayStart.getTime() + Math.ceil((now.getTime() + 60000 - dayStart.getTime()) / HOUR) * HOUR;
  return { from, to: Math.min(Math.max(to, from + HOUR), dayEnd) };
}

/** A clock time in the facility's zone ("09:30"). */
export function clockIn(value, timeZone) {
  const opts = { hour: '2-digit', minute: '2-digit' };
  try {
    return new Date(value).toLocaleTimeString(undefined, timeZone ? { ...opts, timeZone } : opts);
  } catch {
    return new Date(value).toLocaleTimeString(undefined, opts);
  }
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The timeline of today's sessions, drawn into box. Each bar is a button;
 * choosing one calls onPick(id).
 */
export function drawTimeline(box, { sessions, dayStart, now, timeZone, picked, onPick }) {
  if (!sessions.length) {
    box.dataset.state = 'empty';
    replace(box, emptyState({ iconName: 'clock', title: 'No sessions today', text: 'Impersonation sessions started today appear here as bars on the day.' }));
    return;
  }
  box.dataset.state = 'ready';
  const axis = timelineAxis(sessions, dayStart, now);
  const x = (t) => Math.max(0, Math.min(1000, ((t - axis.from) / (axis.to - axis.from)) * 1000));
  const running = sessions.filter((s) => !s.end).length;
  const refusals = sessions.reduce((n, s) => n + s.refusals, 0);
  const rows = sessions.map((s) => {
    const end = s.end ? s.end.getTime() : now.getTime();
    const x0 = x(s.start.getTime());
    const width = Math.max(x(end) - x0, 8);
    const strip = svg('svg', { class: 'timeline__strip', viewBox: '0 0 1000 16', preserveAspectRatio: 'none', 'aria-hidden': 'true', focusable: 'false' },
      svg('rect', { class: 'timeline__track', x: 0, y: 6, width: 1000, height: 4 }),
      svg('rect', { class: `timeline__bar${s.end ? '' : ' timeline__bar--running'}`, x: x0.toFixed(3), y: 2, width: width.toFixed(3), height: 12, rx: 2 }),
      ...s.refusalTimes.map((t) => svg('rect', { class: 'timeline__refusal', x: Math.min(x(t.getTime()), 997).toFixed(3), y: 0, width: 3, height: 16 })));
    return h('li', { class: 'timeline__row' },
      h('button', {
        type: 'button', class: 'timeline__button', 'data-session-id': s.id, 'data-running': String(!s.end), 'data-refusals': String(s.refusals),
        'data-end': new Date(end).toISOString(), 'aria-pressed': String(picked === s.id), title: 'Show only this session’s events',
        onclick: () => onPick(s.id),
      },
      h('span', { class: 'timeline__label' },
        h('strong', null, s.actor ? s.actor.name : 'Someone'), ' as ', h('strong', null, s.subject ? s.subject.name : 'someone'),
        h('span', { class: 'timeline__when' }, ` · ${s.carried ? 'before midnight' : clockIn(s.start, timeZone)}–${s.end ? clockIn(s.end, timeZone) : 'now'}`),
        h('span', { class: `timeline__count${s.refusals ? ' timeline__count--refused' : ''}` }, plural(s.refusals, 'refusal'))),
      strip));
  });
  // A redraw keeps the keyboard where it was.
  const focused = box.contains(document.activeElement) ? document.activeElement.dataset.sessionId : '';
  replace(box,
    h('p', { class: 'chart__summary' }, `${plural(sessions.length, 'session')} today, ${running} running, ${plural(refusals, 'refusal')}.`),
    h('ol', { class: 'timeline', 'aria-label': 'Today’s impersonation sessions' }, rows),
    hourMarks(box, axis, timeZone));
  if (focused) {
    const again = [...box.querySelectorAll('[data-session-id]')].find((b) => b.dataset.sessionId === focused);
    if (again) again.focus();
  }
}

/**
 * The hour marks under the timeline: ticks on the bars' scale and the
 * hours spread evenly beneath them, as many as the box's width holds.
 */
function hourMarks(box, axis, timeZone) {
  const width = Math.max(box.clientWidth || 0, 200);
  const hours = Math.round((axis.to - axis.from) / HOUR);
  let step = 1;
  while (hours / step + 1 > Math.max(2, Math.floor(width / 72))) step += 1;
  while (hours % step) step += 1;
  const ticks = [];
  const labels = [];
  for (let i = 0; i <= hours; i += step) {
    ticks.push(svg('rect', { class: 'chart__tick-mark', x: Math.min((i / hours) * 1000, 998), y: 0, width: 2, height: 6 }));
    labels.push(h('span', null, clockIn(axis.from + i * HOUR, timeZone)));
  }
  return h('div', { class: 'timeline__axis', 'aria-hidden': 'true' },
    svg('svg', { class: 'timeline__ticks', viewBox: '0 0 1000 6', preserveAspectRatio: 'none', focusable: 'false' }, ...ticks),
    h('div', { class: 'timeline__hours' }, labels));
}

/** The event-rate chart, drawn into box at its width, with its table. */
export function drawRate(box, { buckets, timeZone }) {
  const total = buckets.reduce((n, b) => n + b.total, 0);
  const denied = buckets.reduce((n, b) => n + b.denied, 0);
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const width = Math.max(box.clientWidth || 0, 200);
  const height = 96;
  const plot = height - 20;
  const bw = width / buckets.length;
  const y = (n) => (n / max) * (plot - 4);
  const bars = buckets.flatMap((b, i) => [
    b.total ? svg('rect', { class: 'rate__bar', x: (i * bw + 1).toFixed(2), y: (plot - y(b.total)).toFixed(2), width: Math.max(bw - 2, 1).toFixed(2), height: y(b.total).toFixed(2) }) : null,
    b.denied ? svg('rect', { class: 'rate__bar rate__bar--denied', 'data-denied': b.denied, x: (i * bw + 1).toFixed(2), y: (plot - y(b.denied)).toFixed(2), width: Math.max(bw - 2, 1).toFixed(2), height: y(b.denied).toFixed(2) }) : null,
  ]).filter(Boolean);
  const labels = (width >= 420 ? [0, 6, 12, 18, 23] : [0, 12, 23]).map((i) => svg('text', {
    class: 'chart__label', x: i === 0 ? 0 : i === 23 ? width : (i * bw).toFixed(2), y: height - 4, 'text-anchor': i === 0 ? 'start' : i === 23 ? 'end' : 'middle',
  }, document.createTextNode(i === 23 ? 'now' : clockIn(buckets[i].start, timeZone))));
  const busiest = buckets.reduce((a, b) => (b.total > a.total ? b : a), buckets[0]);
  const name = `Events per 5 minutes over the last two hours: ${plural(total, 'event')}, ${plural(denied, 'denial')}${total ? `; the busiest 5 minutes, from ${clockIn(busiest.start, timeZone)}, had ${busiest.total}` : ''}.`;
  const chart = svg('svg', {
    class: 'rate__svg', role: 'img', 'aria-label': name, width, height, viewBox: `0 0 ${width} ${height}`, 'data-total': total, 'data-denied': denied,
  },
  svg('line', { class: 'chart__baseline', x1: 0, x2: width, y1: plot + 0.5, y2: plot + 0.5 }),
  svg('text', { class: 'chart__label', x: 2, y: 10 }, document.createTextNode(`${max} per 5 min`)),
  ...bars, ...labels);
  replace(box, chart,
    h('ul', { class: 'chart-legend' },
      h('li', null, h('span', { class: 'chart-legend__swatch chart-legend__swatch--events', 'aria-hidden': 'true' }), `Events (${total})`),
      h('li', null, h('span', { class: 'chart-legend__swatch chart-legend__swatch--denied', 'aria-hidden': 'true' }), `Denials (${denied}): refused actions and impersonations`)),
    // A table ignores a width of 1px: its box is the one hidden.
    h('div', { class: 'visually-hidden' }, h('table', null,
      h('caption', null, 'Events and denials per 5 minutes, last two hours'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'From'), h('th', { scope: 'col' }, 'Events'), h('th', { scope: 'col' }, 'Denials'))),
      h('tbody', null, buckets.map((b) => h('tr', null, h('th', { scope: 'row' }, clockIn(b.start, timeZone)), h('td', null, String(b.total)), h('td', null, String(b.denied))))))));
}

/** The loading state of a picture. */
export function drawLoading(box, message) {
  box.dataset.state = 'loading';
  replace(box, loadingBlock(message));
}
