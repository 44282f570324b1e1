// The impersonation settings (#/settings), for admins: which mode each
// kind of target needs before support may act as them (direct, the
// target's consent, approval by others, a moderator watching), by role and
// by project, where the strictest of a target's scopes wins; how long a
// request waits, and how long a moderated session waits for its moderator.

import { ApiError } from '../api.js';
import {
  busyButton, capital, errorBlock, fieldError, h, loadingBlock, personName, replace, setBusy, timeEl, timeZoneName,
} from '../dom.js';
import { fieldLabel } from './eventwords.js';

/** The roles a mode can be set for (owners are never impersonated). */
const ROLES = ['user', 'support', 'manager', 'admin'];

/** The modes this server runs, in the order of strictness, in words. */
const MODES = [
  { mode: 'direct', label: 'Direct', words: 'the session starts at once.' },
  { mode: 'consent', label: 'Consent', words: 'the user allows it in their console, or has allowed support ahead of time.' },
  { mode: 'approval', label: 'Approval', words: 'others approve it: admins, or leads of the user\'s projects (four eyes).' },
  { mode: 'moderated', label: 'Moderated', words: 'the session starts at once but runs only while a moderator (an admin, or a lead of the user\'s projects) watches it live; without one it pauses, and ends after the grace period.' },
];

/** "HH:MM" for minutes after midnight (24:00, the day's end, as 00:00). */
export function minutesToTime(m) {
  const n = ((Number(m) || 0) % 1440 + 1440) % 1440;
  return `${String(Math.floor(n / 60)).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}`;
}

/**
 * Minutes after midnight for "HH:MM", or NaN. An end at 00:00 is the
 * day's end (1440).
 */
export function timeToMinutes(value, { end = false } = {}) {
  const m = /^(\d\d):(\d\d)/.exec(value || '');
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) return Number.NaN;
  const n = Number(m[1]) * 60 + Number(m[2]);
  return end && n === 0 ? 1440 : n;
}

/**
 * The alert thresholds (settings.alerts): the facility's hours and the
 * numbers, each an input with its bounds (standin.AlertRules.Check).
 */
const ALERT_NUMBERS = [
  { key: 'refusals', id: 'alert-refusals', min: 1, max: 1000, label: 'Refusals in one session that raise an alert' },
  { key: 'refusal_minutes', id: 'alert-refusal-minutes', min: 1, max: 1440, label: 'Counted within (minutes)' },
  { key: 'long_session_minutes', id: 'alert-long-minutes', min: 1, max: 10080, label: 'A session is long after (minutes)' },
  { key: 'sessions_per_agent_hour', id: 'alert-agent-hour', min: 1, max: 1000, label: 'Sessions an agent may start within an hour' },
  { key: 'sessions_per_user_day', id: 'alert-user-day', min: 1, max: 1000, label: 'Times a user may be impersonated within a day' },
];

/** The Alerts fieldset: returns {el, read()} where read() answers the thresholds, or null after marking what is wrong. */
function alertFields(rules, editable) {
  const from = h('input', { id: 'alert-day-start', class: 'input', type: 'time', step: '60', required: true,
    value: minutesToTime(rules.day_start_minute), disabled: !editable, 'aria-describedby': 'alert-hours-hint' });
  const to = h('input', { id: 'alert-day-end', class: 'input', type: 'time', step: '60', required: true,
    value: minutesToTime(rules.day_end_minute), disabled: !editable, 'aria-describedby': 'alert-hours-hint' });
  const numbers = ALERT_NUMBERS.map((f) => ({
    ...f,
    input: h('input', { id: f.id, class: 'input input--narrow', type: 'number', min: String(f.min), max: String(f.max), step: '1', required: true,
      value: String(rules[f.key]), disabled: !editable }),
  }));
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const byKey = Object.fromEntries(numbers.map((f) => [f.key, f]));
  const el = h('fieldset', { class: 'fieldset settings__alerts', id: 'settings-alerts' },
    h('legend', null, 'Alerts'),
    h('p', { class: 'muted' }, 'When a session looks unusual, admins and the leads of the user\'s projects are alerted on the Activity page: started outside the facility\'s hours or on a staff account, many refusals, running long, an agent starting many sessions, a user impersonated again and again.'),
    h('div', { class: 'field-row' },
      field('alert-day-start', 'Facility hours from', from),
      field('alert-day-end', 'Facility hours until', to)),
    h('p', { class: 'field__hint', id: 'alert-hours-hint' }, `Monday to Friday, in ${timeZoneName()} time; 00:00 as the end is midnight. Weekends are outside hours.`),
    h('div', { class: 'field-row' },
      field(byKey.refusals.id, byKey.refusals.label, byKey.refusals.input),
      field(byKey.refusal_minutes.id, byKey.refusal_minutes.label, byKey.refusal_minutes.input)),
    ['long_session_minutes', 'sessions_per_agent_hour', 'sessions_per_user_day'].map((k) => field(byKey[k].id, byKey[k].label, byKey[k].input)));
  const read = () => {
    const wrong = [];
    const mark = (input, message) => {
      fieldError(input, message);
      if (message) wrong.push(input);
    };
    const start = timeToMinutes(from.value);
    const end = timeToMinutes(to.value, { end: true });
    mark(from, Number.isNaN(start) ? 'Give the time the facility opens, as HH:MM.' : '');
    mark(to, Number.isNaN(end) ? 'Give the time the facility closes, as HH:MM.'
      : (!Number.isNaN(start) && end <= start ? 'The hours end after they start, within one day.' : ''));
    const out = { day_start_minute: start, day_end_minute: end };
    for (const f of numbers) {
      const v = Number(f.input.value);
      const ok = f.input.value.trim() !== '' && Number.isInteger(v) && v >= f.min && v <= f.max;
      mark(f.input, ok ? '' : `A whole number from ${f.min} to ${f.max}.`);
      out[f.key] = v;
    }
    if (wrong.length) {
      wrong[0].focus();
      return null;
    }
    return out;
  };
  return { el, read };
}

/** Mounts the settings page into root. */
export function mountSettings(ctx, root) {
  let stopped = false;
  const box = h('div', { id: 'settings', class: 'stack' }, loadingBlock('Loading the settings…'));
  root.append(
    h('header', { class: 'page-header' },
      h('p', { class: 'card__eyebrow' }, 'Administration'),
      h('h1', { class: 'page-header__title' }, 'Impersonation settings'),
      h('p', { class: 'page-header__subtitle' },
        'What support needs before acting as someone. Where a user\'s role and projects ask for different modes, the strictest applies. Who may impersonate at all is set by the access policies.')),
    box);

  const load = async () => {
    replace(box, loadingBlock('Loading the settings…'));
    try {
      const [settings, projects] = await Promise.all([ctx.api.get('/settings/impersonation'), ctx.api.get('/projects')]);
      if (!stopped) render(settings, projects.items || []);
    } catch (err) {
      if (!stopped) replace(box, errorBlock(err, load));
    }
  };

  const render = (settings, projects) => {
    const editable = ctx.permissions.edit_settings;
    const rules = new Map((settings.rules || []).map((r) => [r.scope, r]));
    const scopes = [
      ...ROLES.map((role) => ({ scope: `role:${role}`, label: `Every ${role}` })),
      ...projects.map((p) => ({ scope: `project:${p.id}`, label: `Members of ${p.code}`, hint: p.name })),
    ];
    const rows = scopes.map((s, i) => {
      const rule = rules.get(s.scope) || { mode: 'direct' };
      const mode = h('select', { id: `mode-${i}`, class: 'input', disabled: !editable, 'data-scope': s.scope },
        MODES.map((m) => h('option', { value: m.mode, selected: m.mode === rule.mode }, m.label)));
      const approvals = h('input', { id: `approvals-${i}`, class: 'input input--narrow', type: 'number', min: '1', max: '5', step: '1',
        value: String(rule.approvals || 1), disabled: !editable, hidden: rule.mode !== 'approval' });
      mode.addEventListener('change', () => { approvals.hidden = mode.value !== 'approval'; });
      return {
        scope: s.scope, mode, approvals,
        el: h('tr', null,
          h('th', { scope: 'row' }, h('label', { for: `mode-${i}` }, s.label), s.hint ? h('span', { class: 'muted settings__hint' }, ` (${s.hint})`) : null),
          h('td', null, mode),
          h('td', null, h('label', { class: 'visually-hidden', for: `approvals-${i}` }, `Approvers needed for ${s.label}`), approvals)),
      };
    });
    const minutes = h('input', { id: 'request-minutes', class: 'input input--narrow', type: 'number', min: '1', max: '1440', step: '1',
      value: String(settings.request_minutes), disabled: !editable });
    const grace = h('input', { id: 'grace-seconds', class: 'input input--narrow', type: 'number', min: '10', max: '3600', step: '1',
      value: String(settings.grace_seconds), disabled: !editable });
    const unmasked = new Set(settings.unmasked || []);
    const shown = (settings.fields || []).map((f) => h('input', { type: 'checkbox', id: `unmasked-${f}`, value: f, checked: unmasked.has(f), disabled: !editable }));
    const alerts = settings.alerts ? alertFields(settings.alerts, editable) : null;
    const error = h('div', { id: 'settings-error', role: 'alert' });
    const save = busyButton('Save settings', { type: 'submit', class: 'btn btn--primary', id: 'settings-save', disabled: !editable });
    const changed = settings.changed_by
      ? h('p', { class: 'muted', id: 'settings-changed' }, `Version ${settings.version}, changed by ${personName(settings.changed_by)} `, timeEl(settings.changed_at), '.')
      : h('p', { class: 'muted', id: 'settings-changed' }, 'Never changed: every target is direct.');
    const form = h('form', { class: 'form card', novalidate: true, 'aria-labelledby': 'settings-modes-title' },
      h('h2', { class: 'card__title', id: 'settings-modes-title' }, 'Modes'),
      changed,
      h('ul', { class: 'settings__modes' }, MODES.map((m) => h('li', null, h('strong', null, m.label), `: ${m.words}`))),
      error,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'table settings__table', id: 'settings-modes' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Whose sessions'), h('th', { scope: 'col' }, 'Mode'), h('th', { scope: 'col' }, 'Approvers needed'))),
          h('tbody', null, rows.map((r) => r.el)))),
      h('div', { class: 'field' },
        h('label', { for: 'request-minutes' }, 'A request waits for its answer (minutes)'),
        minutes),
      h('div', { class: 'field' },
        h('label', { for: 'grace-seconds' }, 'A paused moderated session ends after (seconds without a moderator)'),
        grace),
      h('fieldset', { class: 'fieldset settings__fields' },
        h('legend', null, 'Personal data shown to staff without a reveal'),
        h('p', { class: 'muted' }, 'Fields left unticked are hidden in every view of a user but their own, while impersonating too; revealing one needs a reason and is recorded.'),
        shown.map((box) => h('label', { class: 'settings__check', for: box.id }, box, ` ${capital(fieldLabel(box.value))}`))),
      alerts ? alerts.el : null,
      editable ? h('div', { class: 'dialog__actions' }, save) : h('p', { class: 'muted' }, 'You may read these settings, not change them.'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.replaceChildren();
      // Thresholds left out of the request stay as they are.
      const thresholds = alerts ? alerts.read() : undefined;
      if (thresholds === null) return;
      const body = {
        version: settings.version,
        rules: rows.filter((r) => r.mode.value !== 'direct').map((r) => ({
          scope: r.scope, mode: r.mode.value, approvals: r.mode.value === 'approval' ? Number(r.approvals.value) : undefined,
        })),
        request_minutes: Number(minutes.value),
        unmasked: shown.filter((box) => box.checked).map((box) => box.value),
        grace_seconds: Number(grace.value),
        alerts: thresholds,
      };
      setBusy(save, true, 'Saving…');
      try {
        const saved = await ctx.api.put('/settings/impersonation', body);
        ctx.toast('The impersonation settings are saved and apply at once.', { kind: 'success' });
        render(saved, projects);
        document.getElementById('settings-changed')?.focus?.();
      } catch (err) {
        setBusy(save, false);
        replace(error, errorBlock(err, err instanceof ApiError && err.status === 409 ? load : null));
      }
    });
    replace(box, form);
  };

  load();
  return () => { stopped = true; };
}
