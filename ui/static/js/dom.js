// Small DOM and formatting helpers shared by the views.
//
// Elements are built with h(); text is always set as text, never parsed as
// HTML, so nothing the server sends can inject markup.

/**
 * Builds an element.
 *   h('button', {type: 'button', class: 'btn', onclick: fn}, 'Save')
 * Attributes: class, dataset (object), on<event> (listener), hidden,
 * disabled, checked, value, selected (properties); everything else becomes an
 * attribute (null/false skip it, true sets it empty). Children: nodes,
 * strings, numbers, arrays of these; null/false/undefined are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key === 'hidden' || key === 'disabled' || key === 'checked' || key === 'selected' || key === 'value') el[key] = value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(String(child));
  }
}

/** An inline SVG icon from a small fixed set (paths are constants). */
export function icon(name, className = 'icon') {
  const paths = ICONS[name] || ICONS.dot;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', className);
  for (const d of paths) {
    const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

const ICONS = {
  dot: ['M12 12h.01'],
  search: ['M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16z', 'M21 21l-4.3-4.3'],
  users: ['M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2', 'M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M22 21v-2a4 4 0 0 0-3-3.9', 'M16 3.1a4 4 0 0 1 0 7.8'],
  calendar: ['M8 2v4', 'M16 2v4', 'M3 10h18', 'M5 4h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z'],
  bell: ['M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9', 'M10.3 21a1.94 1.94 0 0 0 3.4 0'],
  activity: ['M22 12h-4l-3 9L9 3l-3 9H2'],
  alert: ['M12 9v4', 'M12 17h.01', 'M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z'],
  check: ['M20 6 9 17l-5-5'],
  x: ['M18 6 6 18', 'M6 6l12 12'],
  chevron: ['M6 9l6 6 6-6'],
  user: ['M20 21a8 8 0 0 0-16 0', 'M12 13a5 5 0 1 0 0-10 5 5 0 0 0 0 10z'],
  microscope: ['M6 18h8', 'M3 22h18', 'M14 22a7 7 0 1 0 0-14h-1', 'M9 14h2', 'M9 12a2 2 0 0 1-2-2V6h6v4a2 2 0 0 1-2 2z', 'M12 6V3a1 1 0 0 0-1-1H9a1 1 0 0 0-1 1v3'],
  shield: ['M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z'],
  sliders: ['M4 21v-7', 'M4 10V3', 'M12 21v-9', 'M12 8V3', 'M20 21v-5', 'M20 12V3', 'M1 14h6', 'M9 8h6', 'M17 16h6'],
  download: ['M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4', 'M7 10l5 5 5-5', 'M12 15V3'],
  pause: ['M6 4h4v16H6z', 'M14 4h4v16h-4z'],
  play: ['M5 3l14 9-14 9V3z'],
  eye: ['M2 12s3-7 10-7 10 7 10 7-3 7-10 7-10-7-10-7z', 'M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6z'],
  clock: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z', 'M12 6v6l4 2'],
  inbox: ['M22 12h-6l-2 3h-4l-2-3H2', 'M5.45 5.11 2 12v6a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2v-6l-3.45-6.89A2 2 0 0 0 16.76 4H7.24a2 2 0 0 0-1.79 1.11z'],
  arrowUp: ['M12 19V5', 'M5 12l7-7 7 7'],
  send: ['M22 2 11 13', 'M22 2 15 22l-4-9-9-4 20-7z'],
  copy: ['M20 9h-9a2 2 0 0 0-2 2v9a2 2 0 0 0 2 2h9a2 2 0 0 0 2-2v-9a2 2 0 0 0-2-2z', 'M5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1'],
};

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Up to two initials for an avatar. */
export function initials(name, email) {
  const source = (name || '').trim() || (email || '').split('@')[0] || '?';
  const parts = source.split(/[\s._-]+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : source.slice(0, 2);
  return letters.toUpperCase();
}

export function personName(person) {
  if (!person) return '';
  return person.name || person.email || person.id || '';
}

function toDate(value) {
  if (!value) return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

// Every time the console shows is in one zone: the facility's, once the
// server named it (setTimeZone), the browser's until then.
const display = { zone: undefined };

/**
 * Shows every time from now on in zone (an IANA name such as
 * "Europe/Berlin"); an empty or unknown name keeps the browser's zone.
 * Answers whether the zone was taken.
 */
export function setTimeZone(zone) {
  if (!zone) return false;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone }).format(0);
  } catch {
    return false;
  }
  display.zone = zone;
  return true;
}

/** The zone times are shown in: the facility's, or the browser's. */
export function timeZoneName() {
  return display.zone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

// Hours are counted 0–23 whatever the browser's habit, as the server
// writes them in the messages it composes (notifications, summaries):
// one time format across the console.
function fmt(d, options) {
  const clock = options.hour ? { hourCycle: 'h23' } : {};
  return d.toLocaleString(undefined, { ...options, ...clock, timeZone: display.zone });
}

export function formatTime(value) {
  const d = toDate(value);
  return d ? fmt(d, { hour: '2-digit', minute: '2-digit' }) : '';
}

export function formatTimeSeconds(value) {
  const d = toDate(value);
  return d ? fmt(d, { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';
}

export function formatDate(value) {
  const d = toDate(value);
  return d ? fmt(d, { year: 'numeric', month: 'short', day: 'numeric' }) : '';
}

export function formatDateTime(value) {
  const d = toDate(value);
  if (!d) return '';
  return fmt(d, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** "Mon 09:00–10:00" (the end's day too when it differs). */
export function formatSlot(start, end) {
  const a = toDate(start);
  const b = toDate(end);
  if (!a) return '';
  const day = (d) => fmt(d, { weekday: 'short', day: 'numeric', month: 'short' });
  const from = `${day(a)} ${formatTime(a)}`;
  if (!b) return from;
  return day(a) === day(b) ? `${from}–${formatTime(b)}` : `${from} – ${day(b)} ${formatTime(b)}`;
}

/** The calendar day of value in the display zone, as yyyy-mm-dd. */
export function zonedDay(value) {
  const d = toDate(value);
  if (!d) return '';
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone: display.zone, year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(d).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/**
 * The moment a wall-clock date (yyyy-mm-dd) and time (hh:mm) name in the
 * display zone: what a form's date and time fields mean.
 */
export function zonedDate(day, time) {
  const guess = new Date(`${day}T${time}:00Z`);
  if (Number.isNaN(guess.getTime())) return guess;
  // The zone's offset at the guess, then again at the corrected moment
  // (once is wrong only across a change of offset).
  let at = guess;
  for (let i = 0; i < 2; i += 1) at = new Date(guess.getTime() - zoneOffset(at));
  return at;
}

/** How far the display zone is ahead of UTC at d, in ms. */
function zoneOffset(d) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone: display.zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(d).map((p) => [p.type, p.value]));
  const wall = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day),
    Number(parts.hour), Number(parts.minute), Number(parts.second));
  return wall - Math.floor(d.getTime() / 1000) * 1000;
}

/** A <time> element with a machine-readable datetime and a readable text. */
export function timeEl(value, text = formatDateTime(value), className) {
  const d = toDate(value);
  const title = d ? `${fmt(d, { dateStyle: 'full', timeStyle: 'long' })}` : null;
  return h('time', { datetime: d ? d.toISOString() : null, title, class: className }, text);
}

/** s with its first letter upper-case ("phone number" → "Phone number"). */
export function capital(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/** "3:07" or "1:02:07": time left until a moment (0 when past). */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hrs = Math.floor(total / 3600);
  const mins = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return hrs > 0 ? `${hrs}:${pad(mins)}:${pad(secs)}` : `${mins}:${pad(secs)}`;
}

/** "5 minutes" style duration in words. */
export function formatMinutesWords(ms) {
  const mins = Math.max(0, Math.round(ms / 60000));
  if (mins < 1) return 'less than a minute';
  if (mins < 60) return `${mins} minute${mins === 1 ? '' : 's'}`;
  const hrs = Math.floor(mins / 60);
  const rest = mins % 60;
  return `${hrs} h${rest ? ` ${rest} min` : ''}`;
}

/** "just now", "5 min ago", "2 h ago", or the date. */
export function relativeTime(value, now = Date.now()) {
  const d = toDate(value);
  if (!d) return '';
  const diff = Math.round((now - d.getTime()) / 1000);
  if (diff < 45) return 'just now';
  if (diff < 3600) return `${Math.round(diff / 60)} min ago`;
  if (diff < 86400) return `${Math.round(diff / 3600)} h ago`;
  return formatDateTime(d);
}

/** Words for an impersonation's end cause. */
export function causeWords(cause) {
  switch (cause) {
    case 'ended_by_actor': return 'ended by the agent';
    case 'revoked': return 'ended by a manager';
    case 'expired': return 'time ran out';
    case 'actor_logged_out': return 'the agent signed out';
    case 'target_suspended': return 'the account was suspended';
    case 'actor_suspended': return "the agent's account was suspended";
    case 'actor_lost_permission': return 'the agent lost the permission';
    case 'actor_session_ended': return "the agent's session ended";
    case 'consent_withdrawn': return 'you withdrew your consent';
    case 'moderator_absent': return 'no moderator was watching it';
    default: return cause ? cause.replaceAll('_', ' ') : '';
  }
}

/** A random id for things the client names (presence views). */
export function randomId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `v${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

/** Calls fn at most once per wait ms, after the last call. */
export function debounce(fn, wait) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** A status badge for a user's account. */
export function statusBadge(status) {
  const s = status || 'active';
  return h('span', { class: `badge ${s === 'active' ? 'badge--success' : 'badge--danger'}` }, s);
}

export function roleBadge(role) {
  return h('span', { class: `badge ${role && role !== 'user' ? 'badge--primary' : ''}` }, role || '—');
}

/** A centred spinner with a message, for a region that is loading. */
export function loadingBlock(message = 'Loading…') {
  return h('div', { class: 'loading loading--block', role: 'status' },
    h('span', { class: 'spinner spinner--lg', 'aria-hidden': 'true' }),
    h('p', null, message));
}

/** An empty state: icon, title, text and optional actions. */
export function emptyState({ iconName = 'inbox', title, text, actions = [] }) {
  return h('div', { class: 'empty-state empty-state--inline' },
    h('div', { class: 'empty-state__icon' }, icon(iconName)),
    h('p', { class: 'empty-state__title' }, title),
    text ? h('p', { class: 'empty-state__text' }, text) : null,
    actions.length ? h('div', { class: 'empty-state__actions' }, actions) : null);
}

/** An error callout with the server's message, its reason and a retry button. */
export function errorBlock(error, retry) {
  const message = (error && error.message) || 'Something went wrong.';
  return h('div', { class: 'callout callout--danger error-block', role: 'alert' },
    h('div', { class: 'error-block__body' },
      h('p', null, message),
      error && error.reason ? h('p', { class: 'error-block__reason' }, error.reason) : null,
      retry ? h('button', { type: 'button', class: 'btn btn--secondary btn--sm', onclick: retry }, 'Try again') : null));
}

/** Puts a button into (or out of) its pending state. */
export function setBusy(button, busy, pendingLabel) {
  const label = button.querySelector('[data-slot="label"]');
  if (busy) {
    if (!button.dataset.idleLabel) button.dataset.idleLabel = label ? label.textContent : '';
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    if (label && pendingLabel) label.textContent = pendingLabel;
  } else {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    if (label && button.dataset.idleLabel) label.textContent = button.dataset.idleLabel;
    delete button.dataset.idleLabel;
  }
}

/** A button with a spinner and a label slot, for setBusy. */
export function busyButton(label, attrs = {}) {
  return h('button', { type: 'button', ...attrs },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    h('span', { 'data-slot': 'label' }, label));
}

/**
 * Opens a modal <dialog> built by build(close) and resolves with the value
 * passed to close() (undefined when dismissed). Focus returns to the
 * element that had it.
 */
export function openDialog({ title, describedBy, build, className = '' }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = `dlg-title-${randomId()}`;
    const dialog = h('dialog', { class: `dialog ${className}`, 'aria-labelledby': titleId });
    let result;
    const close = (value) => {
      result = value;
      dialog.close();
    };
    const head = h('div', { class: 'dialog__head' },
      h('h2', { id: titleId, class: 'dialog__title' }, title),
      h('button', { type: 'button', class: 'btn btn--ghost btn--icon', 'aria-label': 'Close', onclick: () => close(undefined) }, icon('x')));
    const body = build(close);
    dialog.append(head, body);
    if (describedBy) dialog.setAttribute('aria-describedby', describedBy);
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    const first = dialog.querySelector('[autofocus]') || dialog.querySelector('input, select, textarea, button:not(.btn--icon)');
    if (first) first.focus();
  });
}

/** Marks a form field invalid with a message, or clears it (message ''). */
export function fieldError(input, message) {
  const field = input.closest('.field');
  let box = field ? field.querySelector('.field__error') : null;
  if (!box && field) {
    box = h('p', { class: 'field__error', id: `${input.id}-error` });
    field.append(box);
  }
  if (message) {
    input.setAttribute('aria-invalid', 'true');
    if (box) {
      box.textContent = message;
      describedBy(input, box.id, true);
    }
  } else {
    input.removeAttribute('aria-invalid');
    if (box) {
      box.textContent = '';
      describedBy(input, box.id, false);
    }
  }
}

/** Adds id to (or takes it from) what describes input, keeping the rest (hints, counters). */
function describedBy(input, id, on) {
  const ids = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter((x) => x && x !== id);
  if (on) ids.push(id);
  if (ids.length) input.setAttribute('aria-describedby', ids.join(' '));
  else input.removeAttribute('aria-describedby');
}
