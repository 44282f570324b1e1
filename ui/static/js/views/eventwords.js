// Audit events in plain words: one sentence per event, with real names.
//
// Every function here is pure: it reads an event (as GET /api/v1/activity
// and the live feed give it, see docs/AUDIT.md) and a Names directory, and
// returns text. The raw action, object and path stay out of the sentence
// and go into eventDetails, for the row's expandable details.

import { causeWords, formatTime, personName } from '../dom.js';

/**
 * Names turns ids into names: people (name and address), resources and
 * projects. An id it does not know falls back to the name in the event.
 */
export class Names {
  constructor() {
    this.users = new Map();
    this.resources = new Map();
    this.projects = new Map();
  }

  /** Adds people ({id, name, email}). */
  addUsers(list) {
    for (const u of list || []) if (u && u.id) this.users.set(u.id, { name: u.name, email: u.email });
  }

  /** Adds resources ({id, name}). */
  addResources(list) {
    for (const r of list || []) if (r && r.id) this.resources.set(r.id, r.name);
  }

  /** Adds projects ({id, code, name}). */
  addProjects(list) {
    for (const p of list || []) if (p && p.id) this.projects.set(p.id, { code: p.code, name: p.name });
  }

  /** A resource's name, or '' when unknown. */
  resource(id) {
    return this.resources.get(id) || '';
  }

  /** A project's code, or its id when unknown. */
  project(id) {
    const p = this.projects.get(id);
    return p ? p.code : id;
  }
}

/**
 * A person as the log shows them, so that a look-alike display name cannot
 * pass for someone else: "Sam Support (support@example.org)". The address
 * comes from the directory by id; an unknown id keeps the event's name.
 */
export function personWords(person, names = new Names()) {
  if (!person) return 'Someone';
  const known = person.id ? names.users.get(person.id) : null;
  const name = (known && known.name) || personName(person) || 'Someone';
  return known && known.email ? `${name} (${known.email})` : name;
}

/** A person's name alone (for the one acted as), from the directory first. */
export function nameOf(person, names = new Names()) {
  if (!person) return '';
  const known = person.id ? names.users.get(person.id) : null;
  return (known && known.name) || personName(person);
}

/** The first word of a name, for a second mention ("Ben"). */
export function firstName(name) {
  return (name || '').trim().split(/\s+/)[0] || name || '';
}

/**
 * The slot of an attempt to book: "resource:<id> <start>/<end>" (UTC,
 * ISO 8601 interval) as {resource, start, end}, or null.
 */
export function parseSlot(object) {
  const m = /^resource:(\S+)\s+(\S+)\/(\S+)$/.exec(object || '');
  if (!m) return null;
  const start = new Date(m[2]);
  const end = new Date(m[3]);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) return null;
  return { resource: m[1], start, end };
}

/**
 * A booking's reason as written on creation, "<resource name>, <start> to
 * <end>", as {resource, start, end}, or null.
 */
export function parseBookingReason(reason) {
  const m = /^(.*), (\S+) to (\S+)$/.exec(reason || '');
  if (!m) return null;
  const start = new Date(m[2]);
  const end = new Date(m[3]);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) return null;
  return { resourceName: m[1], start, end };
}

/**
 * A time slot in the console's time format: "Thu 10:00–11:00", with the
 * date when it is not within the coming or past week, and both days when
 * it spans midnight.
 */
export function slotWords(start, end, now = new Date()) {
  const far = Math.abs(start.getTime() - now.getTime()) > 6 * 86400000;
  const day = (d) => d.toLocaleDateString(undefined, far ? { weekday: 'short', day: 'numeric', month: 'short' } : { weekday: 'short' });
  const sameDay = start.toDateString() === end.toDateString();
  return sameDay
    ? `${day(start)} ${formatTime(start)}–${formatTime(end)}`
    : `${day(start)} ${formatTime(start)} – ${day(end)} ${formatTime(end)}`;
}

/** The method and path of a view ("GET /api/v1/resources"), or null. */
export function parseRequest(object) {
  const m = /^([A-Z]+) (\/\S*)$/.exec(object || '');
  return m ? { method: m[1], path: m[2] } : null;
}

const VIEWS = [
  [/^\/api\/v1\/resources$/, () => 'resources'],
  [/^\/api\/v1\/bookings$/, () => 'bookings'],
  [/^\/api\/v1\/profile$/, () => 'the profile'],
  [/^\/api\/v1\/projects$/, () => 'projects'],
  [/^\/api\/v1\/impersonations$/, () => 'the active sessions'],
  [/^\/api\/v1\/impersonations\/[^/]+\/summary$/, () => 'what was done in a session'],
  [/^\/api\/v1\/impersonations\/[^/]+$/, () => 'a session'],
  [/^\/api\/v1\/users$/, () => 'the directory'],
  [/^\/api\/v1\/users\/([^/]+)\/access$/, (m, names) => `${possessive(nameOf({ id: m[1] }, names) || 'a user')} access`],
  [/^\/api\/v1\/users\/([^/]+)$/, (m, names) => `${possessive(nameOf({ id: m[1] }, names) || 'a user')} page`],
  [/^\/api\/v1\/activity$/, () => 'the activity log'],
];

function possessive(name) {
  return name.endsWith('s') ? `${name}’` : `${name}’s`;
}

/** What a view looked at, in words ("resources"), or '' for an unknown path. */
export function viewedThing(path, names = new Names()) {
  for (const [re, words] of VIEWS) {
    const m = re.exec(path);
    if (m) return words(m, names);
  }
  return '';
}

/** "viewed resources", or "opened <path>" for a path not mapped. */
export function viewWords(path, names = new Names()) {
  const thing = viewedThing(path, names);
  return thing ? `viewed ${thing}` : `opened ${path}`;
}

/** What an action tried to do, as a verb phrase ("book Confocal LSM 900 for Thu 10:00–11:00"). */
export function attemptWords(e, names = new Names(), now = new Date()) {
  const slot = parseSlot(e.object);
  if (slot) {
    const what = names.resource(slot.resource) || 'a resource';
    return `book ${what} for ${slotWords(slot.start, slot.end, now)}`;
  }
  const req = parseRequest(e.object);
  const action = e.action || '';
  if (req && req.method === 'GET') return `view ${viewedThing(req.path, names) || req.path}`;
  if (action.endsWith('.cancel')) return 'cancel a booking';
  if (action === 'booking.create') return 'make a booking';
  if (action.startsWith('profile.')) return 'change the profile';
  if (action.startsWith('password.')) return 'change the password';
  if (action === 'user.suspend') return 'suspend an account';
  if (action.startsWith('policy.')) return 'change a policy';
  if (req) return `${req.method.toLowerCase()} ${req.path}`;
  return action ? `do ${action}` : 'do something';
}

/** "Sam Support (support@example.org), acting as Ben Okafor," or the actor alone. */
function who(e, names) {
  const actor = personWords(e.actor, names);
  if (e.impersonation_id && e.subject && e.actor && e.subject.id !== e.actor.id) {
    return `${actor}, acting as ${nameOf(e.subject, names)},`;
  }
  return actor;
}

/** "Sam Support (support@example.org), acting as Ben Okafor, viewed resources" without the trailing comma. */
function whoDid(e, names, rest) {
  return `${who(e, names)} ${rest}`;
}

/** How a session ended, from the end event's object and cause. */
export function endWords(e, names = new Names()) {
  const m = /^ended_by:(\S*)\s*(.*)$/.exec(e.object || '');
  const byId = m ? m[1] : '';
  const byText = m ? m[2] : '';
  const by = byText || (byId ? personWords({ id: byId }, names) : '');
  if (by && e.actor && byId === e.actor.id && e.outcome === 'ended_by_actor') return 'they ended it themselves';
  if (by && (e.outcome === 'revoked' || e.outcome === 'ended_by_actor')) return `${by} ended it`;
  if (by && e.outcome === 'target_suspended') return `${by} suspended the account`;
  if (e.outcome === 'expired') return 'its time ran out';
  return causeWords(e.outcome) || 'it ended';
}

/** The ticket of a start ("ticket:SUP-42" → "SUP-42"), or ''. */
export function ticketOf(object) {
  const m = /^ticket:(.+)$/.exec(object || '');
  return m ? m[1] : '';
}

/**
 * One sentence saying what an event records, with real names.
 * @param {object} e an event
 * @param {Names} [names] the directory, resources and projects known
 * @param {Date} [now] for how far away a booked slot is
 */
export function eventSentence(e, names = new Names(), now = new Date()) {
  const actor = personWords(e.actor, names);
  const subject = nameOf(e.subject, names);
  const reason = (e.reason || '').trim();
  switch (e.type) {
    case 'impersonation.started': {
      const ticket = ticketOf(e.object);
      const waits = e.outcome === 'started_paused' ? ' The session is moderated: it waits for a moderator.' : '';
      return `${actor} started acting as ${subject}. Reason: ${reason || '—'}${ticket ? ` (ticket ${ticket})` : ''}.${waits}`;
    }
    case 'impersonation.paused':
      return `The session of ${actor} as ${subject} paused: ${reason || 'no moderator is watching.'}`;
    case 'impersonation.resumed':
      return `The session of ${actor} as ${subject} resumed. ${reason}`.trim();
    case 'impersonation.ended':
      return `${actor} stopped acting as ${subject}: ${endWords(e, names)}.`;
    case 'impersonation.denied':
      return `${actor} was refused acting as ${subject}: ${reason || 'not allowed'}`;
    case 'action.denied':
      return `${whoDid(e, names, `tried to ${attemptWords(e, names, now)}`)} — refused: ${reason || 'not allowed'}`;
    case 'action.allowed':
      return allowedWords(e, names, now);
    case 'booking.created':
      return `${whoDid(e, names, bookedWords(e, now))}.`;
    case 'booking.cancelled':
      return `${whoDid(e, names, 'cancelled a booking')}.`;
    case 'auth.login':
      return `${nameOf(e.actor, names) || 'Someone'} signed in${addressNote(e.actor, names)}.`;
    case 'auth.logout':
      return `${nameOf(e.actor, names) || 'Someone'} signed out${addressNote(e.actor, names)}.`;
    case 'policy.changed':
      return `${actor} ${e.outcome === 'removed' ? 'removed' : 'added'} ${policyWords(e.object, names)}.`;
    case 'user.suspended':
      return `${actor} suspended ${subject || reason || 'an account'}.`;
    case 'user.renamed':
      return `${whoDid(e, names, 'changed the name')}. ${reason}`.trim();
    case 'request.created':
      return `${actor} asked to act as ${subject} (${e.outcome === 'approval' ? 'needs approval' : 'needs their consent'}). Reason: ${reason || '—'}.`;
    case 'request.approved':
      return e.outcome === 'approved'
        ? `${actor} allowed the request to act as ${subject}${reason ? `. Note: ${reason}` : ''}.`
        : `${actor} approved the request to act as ${subject} (${e.outcome})${reason ? `. Note: ${reason}` : ''}.`;
    case 'request.denied':
      return `${actor} refused the request to act as ${subject}${reason ? `. Note: ${reason}` : ''}.`;
    case 'request.expired':
      return `The request of ${actor} to act as ${subject} expired unanswered.`;
    case 'request.cancelled':
      return `${actor} withdrew the request to act as ${subject}.`;
    case 'consent.granted':
      return `${actor} let support act as them without asking. ${reason}`.trim();
    case 'consent.withdrawn':
      return `${actor} withdrew their consent: support must ask again.`;
    case 'field.revealed':
      return `${whoDid(e, names, `revealed ${subject ? `${subject}’s` : 'a'} ${fieldWords(e.object)}`)}. Reason: ${reason || '—'}.`;
    case 'settings.changed':
      return `${actor} changed the impersonation settings: ${reason || 'no change'}.`;
    case 'audit.refused':
      return `${actor}’s request was refused: it was too large to record${reason ? ` (${reason})` : ''}.`;
    case 'alert.raised':
      return `Alert: ${reason || `${alertRuleLabel(e.outcome)}.`}`;
    case 'alert.acknowledged':
      return `${actor} acknowledged the alert ${alertRuleWords(e.outcome)}${reason ? `: ${sentenceEnd(reason)}` : ' without a note.'}`;
    case 'sink.created':
      return `${actor} added the audit sink ${sentenceEnd(reason || 'without a description')}`;
    case 'sink.changed':
      return `${actor} changed the audit sink: ${sentenceEnd(sinkChangeWords(reason) || 'no change')}`;
    case 'sink.removed':
      return `${actor} removed the audit sink ${sentenceEnd(reason || 'without a description')}`;
    case 'sink.tested':
      return e.outcome === 'delivered'
        ? `${actor} sent a test record to the audit sink: delivered.`
        : `${actor} sent a test record to the audit sink: failed${reason ? `: ${sentenceEnd(reason)}` : '.'}`;
    default:
      return [actor, e.action, e.outcome].filter(Boolean).join(' · ');
  }
}

/** A sink's changes as the server lists them, a pause or resume in words. */
function sinkChangeWords(reason) {
  return reason.replace('enabled true → false', 'paused').replace('enabled false → true', 'resumed');
}

/** Text that ends a sentence: with its own stop, or a full stop added. */
function sentenceEnd(text) {
  return /[.!?…]$/.test(text) ? text : `${text}.`;
}

/** The alert rules (standin.Rule…): a short label, and the words that say what an alert was about. */
const ALERT_RULES = {
  off_hours: ['Outside hours', 'on a session started outside the facility’s hours'],
  privileged_target: ['Staff account', 'on a session on a staff account'],
  refusals: ['Many refusals', 'on many refusals in one session'],
  long_session: ['Long session', 'on a session running long'],
  agent_starts: ['Many sessions', 'on an agent starting many sessions'],
  repeated_target: ['Same user again', 'on a user impersonated again and again'],
};

/** An alert rule's short label ("Many refusals"); an unknown rule shows as it is. */
export function alertRuleLabel(rule) {
  return ALERT_RULES[rule] ? ALERT_RULES[rule][0] : (rule || 'Alert');
}

/** What an alert of a rule was about ("on many refusals in one session"). */
export function alertRuleWords(rule) {
  return ALERT_RULES[rule] ? ALERT_RULES[rule][1] : `“${rule || 'unknown'}”`;
}

/** The personal data fields in words, as the server names them (standin.FieldLabel). */
const FIELD_LABELS = { phone: 'phone number', emergency_contact: 'emergency contact', date_of_birth: 'date of birth' };

/** A personal data field ("phone") in words. */
export function fieldLabel(field) {
  return FIELD_LABELS[field] || 'personal data';
}

/** A revealed field ("field:phone") in words. */
export function fieldWords(object) {
  return fieldLabel((object || '').replace(/^field:/, ''));
}

/** A policy line ("p, support, *, booking, create") as "the rule: support may create booking". */
export function policyWords(line, names = new Names()) {
  const m = /^p,\s*([^,]+),\s*([^,]+),\s*([^,]+),\s*([^,]+)$/.exec(line || '');
  if (!m) return 'a policy rule';
  const [, role, domain, object, action] = m.map((x) => x.trim());
  return `the rule: ${role} may ${action} ${object}${domain === '*' ? '' : ` in ${names.project(domain)}`}`;
}

/** " (ben@example.org)" when the directory knows the person's address. */
function addressNote(person, names) {
  const known = person && person.id ? names.users.get(person.id) : null;
  return known && known.email ? ` (${known.email})` : '';
}

function bookedWords(e, now) {
  const b = parseBookingReason(e.reason);
  if (!b) return `booked ${e.reason || 'a resource'}`;
  return `booked ${b.resourceName} for ${slotWords(b.start, b.end, now)}`;
}

function allowedWords(e, names, now) {
  const req = parseRequest(e.object);
  if (e.outcome === 'failed') {
    return `${whoDid(e, names, `tried to ${attemptWords(e, names, now)}`)} — it failed${e.reason ? `: ${e.reason}` : '.'}`;
  }
  if (req && req.method === 'GET') return whoDid(e, names, viewWords(req.path, names));
  return whoDid(e, names, attemptWords(e, names, now).replace(/^do /, 'did '));
}

/**
 * What repeated views have in common, so consecutive ones collapse into one
 * row: the session and the path. '' when the event is not a plain view.
 */
export function viewKey(e) {
  if (e.type !== 'action.allowed' || e.outcome === 'failed') return '';
  const req = parseRequest(e.object);
  if (!req || req.method !== 'GET') return '';
  return `${e.impersonation_id || ''} ${req.path}`;
}

/**
 * Collapses consecutive views of the same thing in the same session (the
 * list is newest first): each row is {events} with one event, or several
 * views, newest first. Denials, changes, starts and ends never merge.
 */
export function collapseViews(events) {
  const rows = [];
  for (const e of events) {
    const key = viewKey(e);
    const last = rows[rows.length - 1];
    if (key && last && last.key === key) last.events.push(e);
    else rows.push({ key, events: [e] });
  }
  return rows;
}

/** The raw facts of an event, for its details: [label, value] pairs. */
export function eventDetails(e, names = new Names()) {
  const req = parseRequest(e.object);
  const rows = [
    ['Type', e.type],
    ['Actor', e.actor ? `${personWords(e.actor, names)} · ${e.actor.id || '—'}` : ''],
    ['Subject', e.subject ? `${personWords(e.subject, names)} · ${e.subject.id || '—'}` : ''],
    ['Action', e.action],
    req ? ['Request', `${req.method} ${req.path}`] : ['Object', e.object],
    ['Outcome', e.outcome],
    ['Reason', e.reason],
    ['Project', e.project ? names.project(e.project) : ''],
    ['Session', e.impersonation_id],
    ['Address', e.ip],
    ['Event', `#${e.seq}${e.id ? ` · ${e.id}` : ''}`],
  ];
  return rows.filter(([, v]) => v);
}
