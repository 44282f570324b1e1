// The audit sinks (#/sinks), for admins: where the audit log goes as it
// is written (a SIEM's webhook, a syslog server), and how each delivery
// stands. The list refreshes itself as each delivery's health changes
// (pushed live on the sinks topic by the node delivering it) and every
// few seconds besides; each sink's card is drawn once and then updated in
// place, so a button being pressed or focused is never swapped for
// another.

import { ApiError } from '../api.js';
import {
  busyButton, debounce, emptyState, errorBlock, fieldError, formatTimeSeconds, h, icon, loadingBlock, openDialog, personName,
  relativeTime, replace, setBusy, timeEl,
} from '../dom.js';
import { eventTypeLabel } from './activity.js';

/** How often the list asks how the deliveries stand. */
const REFRESH_MS = 5000;

const KINDS = [
  { kind: 'webhook', label: 'Webhook', words: 'batches of records POSTed to a URL (HTTPS, or HTTP inside your network), each signed with the sink\'s secret.' },
  { kind: 'syslog', label: 'Syslog', words: 'RFC 5424 messages over TCP, or TLS.' },
];

const FORMATS = [
  { format: 'standin', label: 'Standin JSON', words: 'each event as the audit log keeps it, one JSON document a line' },
  { format: 'ocsf', label: 'OCSF 1.3', words: 'each event in the Open Cybersecurity Schema Framework, as most SIEMs read it' },
];

/** Words for the event types the Activity panel has no label for. */
const TYPE_WORDS = {
  'sink.created': 'Sink added',
  'sink.changed': 'Sink changed',
  'sink.removed': 'Sink removed',
  'sink.tested': 'Sink tested',
};

function typeLabel(type) {
  return TYPE_WORDS[type] || eventTypeLabel(type);
}

function kindLabel(kind) {
  const k = KINDS.find((x) => x.kind === kind);
  return k ? k.label : kind;
}

function formatLabel(format) {
  const f = FORMATS.find((x) => x.format === format);
  return f ? f.label : format;
}

/** Where a sink delivers, in words. */
function destinationWords(s) {
  if (s.kind === 'syslog') return `${s.address} over ${s.tls ? 'TLS' : 'plain TCP'}`;
  return s.url || '';
}

/** What a sink sends, in words: its filter. */
function filterWords(s, projectName) {
  const types = s.types || [];
  const projects = s.projects || [];
  let what = types.length ? types.map(typeLabel).join(', ') : 'Every event';
  if (projects.length) what += `, of ${projects.length === 1 ? 'project' : 'projects'} ${projects.map(projectName).join(', ')}`;
  return what;
}

/**
 * How a sink's delivery stands: 'paused' (disabled), 'failing' (its last
 * try failed; it tries again by itself), 'delivering' (acknowledged) or
 * 'starting' (nothing acknowledged yet).
 */
function stateOf(s) {
  const health = s.health || {};
  if (!s.enabled) return 'paused';
  if (health.failures > 0 || health.last_error) return 'failing';
  if (health.delivered_at) return 'delivering';
  return 'starting';
}

const STATE_BADGES = {
  delivering: { label: 'Delivering', className: 'badge--success', iconName: 'check' },
  failing: { label: 'Failing', className: 'badge--danger', iconName: 'alert' },
  paused: { label: 'Paused', className: '', iconName: 'pause' },
  starting: { label: 'Starting', className: 'badge--primary', iconName: 'clock' },
};

/** A string usable in element ids. */
function idPart(id) {
  return String(id).replace(/[^A-Za-z0-9_-]/g, '_');
}

/** Mounts the sinks page into root; returns its cleanup. */
export function mountSinks(ctx, root) {
  const editable = Boolean(ctx.permissions.edit_sinks);
  let stopped = false;
  let timer = null;
  /** Whether a refresh runs (they never overlap), and whether another was asked for meanwhile. */
  let inFlight = false;
  let wanted = false;
  /**
   * Bumped before and after every change made here: an answer to a
   * refresh that overlapped a change may predate it, and is not drawn.
   */
  let changes = 0;
  /** The last answer of GET /sinks. */
  let allowed = '';
  let eventTypes = [];
  /** Projects by id, for filters in words (empty when they could not be read). */
  let projects = [];
  /** The drawn cards by sink id, in the order shown. */
  const cards = new Map();
  let loaded = false;

  const addButton = h('button', { type: 'button', class: 'btn btn--primary', id: 'sink-add', hidden: !editable, onclick: () => addSink() },
    icon('send', 'icon icon--sm'), h('span', null, 'Add a sink'));
  const refreshed = h('p', { class: 'sinks__refreshed muted', id: 'sinks-refreshed' });
  const allowedNote = h('p', { class: 'muted', id: 'sinks-allowed' });
  const list = h('ul', { class: 'sinks', id: 'sinks-list', 'aria-labelledby': 'sinks-title' });
  const empty = h('div', { id: 'sinks-empty', hidden: true },
    emptyState({
      iconName: 'send',
      title: 'No sinks yet: add one to stream the audit log to your SIEM',
      text: 'A sink receives every event of the audit log as it is written, in order, and picks up where it stopped after any outage.',
    }));
  // Says changes of a delivery's state to screen readers, not every refresh.
  const announcer = h('p', { class: 'visually-hidden', id: 'sinks-announce', 'aria-live': 'polite' });
  const box = h('div', { class: 'stack', id: 'sinks' }, loadingBlock('Loading the sinks…'));
  const section = h('section', { class: 'card sinks__card', 'aria-labelledby': 'sinks-title' },
    h('div', { class: 'card__header card__header--tight' },
      h('div', null,
        h('h2', { class: 'card__title', id: 'sinks-title' }, 'Sinks'),
        refreshed),
      addButton),
    allowedNote,
    empty,
    list,
    editable ? null : h('p', { class: 'muted' }, 'You may see the sinks, not change them.'));

  root.append(
    h('header', { class: 'page-header' },
      h('p', { class: 'card__eyebrow' }, 'Administration'),
      h('h1', { class: 'page-header__title' }, 'Audit sinks'),
      h('p', { class: 'page-header__subtitle' },
        'Where the audit log goes as it is written: a SIEM\'s webhook or a syslog server. Each sink gets every event it asks for at least once, in order, and carries on from where it stopped after an outage.')),
    box,
    announcer);

  const announce = (message) => {
    announcer.textContent = '';
    requestAnimationFrame(() => { announcer.textContent = message; });
  };

  const projectName = (id) => {
    const p = projects.find((x) => x.id === id);
    return p ? p.code : id;
  };

  // ------------------------------------------------------------ refresh

  /**
   * Asks how the sinks stand and draws the answer. One request at a
   * time: asked while one runs, it runs again once that one is back.
   */
  const refresh = async () => {
    if (stopped) return;
    if (inFlight) {
      wanted = true;
      return;
    }
    clearTimeout(timer);
    inFlight = true;
    wanted = false;
    const startedAt = changes;
    try {
      const answer = await ctx.api.get('/sinks');
      if (stopped) return;
      if (startedAt !== changes) {
        wanted = true; // a change made here meanwhile is newer than this answer
        return;
      }
      apply(answer);
      refreshed.classList.remove('sinks__refreshed--stale');
      const at = new Date();
      replace(refreshed, 'Live; last refreshed at ', timeEl(at, formatTimeSeconds(at)), '.');
    } catch (err) {
      if (stopped) return;
      if (!loaded) {
        replace(box, errorBlock(err, () => { replace(box, loadingBlock('Loading the sinks…')); refresh(); }));
        return;
      }
      refreshed.classList.add('sinks__refreshed--stale');
      replace(refreshed, `Could not refresh: ${err.message} Trying again in 5 seconds.`);
    } finally {
      inFlight = false;
      if (!stopped && loaded) {
        clearTimeout(timer);
        timer = setTimeout(refresh, wanted ? 0 : REFRESH_MS);
      }
    }
  };

  /** Runs change, a request changing a sink, so that no refresh overlapping it is drawn. */
  const changing = async (change) => {
    changes += 1;
    try {
      return await change();
    } finally {
      changes += 1;
    }
  };

  /** Draws GET /sinks: new cards for new sinks, the others updated in place. */
  const apply = (answer) => {
    allowed = answer.allowed || '';
    eventTypes = answer.event_types || [];
    allowedNote.textContent = `Sinks may deliver to ${allowed || 'any public address'} on this server.`;
    const items = answer.items || [];
    if (!loaded) {
      loaded = true;
      replace(box, section);
    }
    const seen = new Set();
    for (const s of items) {
      seen.add(s.id);
      const card = cards.get(s.id);
      if (card) card.update(s, true);
      else addCard(s);
    }
    for (const [id, card] of cards) {
      if (!seen.has(id)) dropCard(id, card);
    }
    showEmpty();
  };

  const showEmpty = () => {
    empty.hidden = cards.size > 0;
    list.hidden = cards.size === 0;
  };

  const addCard = (s) => {
    const card = sinkCard(s);
    cards.set(s.id, card);
    list.append(card.el);
    return card;
  };

  const dropCard = (id, card) => {
    card.el.remove();
    cards.delete(id);
  };

  // -------------------------------------------------------------- a card

  /** One sink's card, with update(sink) to draw a newer state in place. */
  const sinkCard = (initial) => {
    let s = initial;
    let state = '';
    const base = `sink-${idPart(s.id)}`;
    const name = h('h3', { class: 'sink__name', id: `${base}-name` });
    const badge = h('span', { class: 'badge sink__state' });
    const destination = h('p', { class: 'sink__destination' });
    const format = h('dd', null);
    const filter = h('dd', { class: 'sink__filter' });
    const origin = h('dd', { class: 'sink__origin' });
    const changed = h('dd', null);
    const changedItem = h('div', { class: 'facts__item' }, h('dt', null, 'Last changed'), changed);
    const delivered = h('p', { class: 'sink__delivered', 'data-slot': 'delivered' });
    const failing = h('div', { class: 'callout callout--danger sink__failing', 'data-slot': 'failing' });
    const testResult = h('div', { class: 'sink__test', 'data-slot': 'test' });
    const forName = () => h('span', { class: 'visually-hidden', 'data-slot': 'for' }, ` ${s.name}`);

    const test = busyButton('Send test record', { class: 'btn btn--secondary btn--sm', 'data-action': 'test', id: `${base}-test` });
    test.append(forName());
    const toggle = busyButton('Pause', { class: 'btn btn--secondary btn--sm', 'data-action': 'toggle', id: `${base}-toggle` });
    toggle.prepend(icon('pause', 'icon icon--sm'));
    toggle.append(forName());
    const edit = h('button', { type: 'button', class: 'btn btn--ghost btn--sm', 'data-action': 'edit', id: `${base}-edit` }, 'Change', forName());
    const remove = h('button', { type: 'button', class: 'btn btn--danger btn--sm', 'data-action': 'remove', id: `${base}-remove` }, 'Remove', forName());

    const el = h('li', { class: 'sink', 'data-sink-id': s.id, 'aria-labelledby': `${base}-name` },
      h('div', { class: 'sink__head' }, name, badge),
      destination,
      h('dl', { class: 'facts sink__facts' },
        h('div', { class: 'facts__item' }, h('dt', null, 'Format'), format),
        h('div', { class: 'facts__item' }, h('dt', null, 'Sends'), filter),
        h('div', { class: 'facts__item' }, h('dt', null, 'Added'), origin),
        changedItem),
      h('div', { class: 'sink__health' }, delivered, failing),
      testResult,
      editable ? h('div', { class: 'sink__actions' }, test, toggle, edit, remove) : null);

    const update = (next, live) => {
      s = next;
      const health = s.health || { delivered_seq: s.from_seq, failures: 0 };
      const now = stateOf(s);
      el.dataset.state = now;
      name.textContent = s.name;
      for (const span of el.querySelectorAll('[data-slot="for"]')) span.textContent = ` ${s.name}`;
      const b = STATE_BADGES[now];
      badge.className = `badge sink__state ${b.className}`;
      replace(badge, icon(b.iconName, 'icon icon--sm'), b.label);
      replace(destination, h('span', { class: 'visually-hidden' }, 'Destination: '), h('span', { class: 'badge' }, kindLabel(s.kind)), ' ',
        h('span', { class: 'sink__address' }, destinationWords(s)));
      format.textContent = formatLabel(s.format);
      filter.textContent = filterWords(s, projectName);
      replace(origin, timeEl(s.created_at), ` by ${personName(s.created_by) || 'someone'}`);
      changedItem.hidden = !s.changed_at || s.changed_at === s.created_at;
      replace(changed, timeEl(s.changed_at), ` by ${personName(s.changed_by) || 'someone'}`);

      const upTo = `#${health.delivered_seq}`;
      if (health.delivered_at) {
        replace(delivered, 'Delivered up to ', h('strong', null, upTo), ' ', timeEl(health.delivered_at, relativeTime(health.delivered_at)),
          now === 'paused' ? '. Paused: nothing more is sent until it is resumed.' : '.');
      } else if (now === 'paused') {
        replace(delivered, `Paused before its first delivery: it will start after event ${upTo}.`);
      } else {
        replace(delivered, `Nothing acknowledged yet: it starts after event ${upTo}.`);
      }
      if (health.last_error && s.enabled) {
        const count = health.failures === 1 ? '1 failure' : `${health.failures} failures in a row`;
        replace(failing, h('div', { class: 'sink__failing-body' },
          h('p', null, h('strong', null, 'Behind and failing: '), h('span', { class: 'sink__error' }, health.last_error)),
          h('p', null, h('span', { class: 'sink__failures' }, count),
            health.last_error_at ? [', the last ', timeEl(health.last_error_at, relativeTime(health.last_error_at))] : null,
            '. It tries again by itself, waiting longer after each failure.')));
      } else {
        failing.replaceChildren();
      }

      // A toggle being pressed keeps its pending label until its answer.
      if (toggle.getAttribute('aria-busy') !== 'true') {
        toggle.querySelector('[data-slot="label"]').textContent = s.enabled ? 'Pause' : 'Resume';
        toggle.querySelector('svg').replaceWith(icon(s.enabled ? 'pause' : 'play', 'icon icon--sm'));
      }

      // A test refused while failing says nothing once deliveries are back.
      if (live && state === 'failing' && now === 'delivering') testResult.replaceChildren();
      if (live && state && state !== now) {
        const said = {
          delivering: `${s.name} delivers again.`,
          failing: `${s.name} is failing: ${health.last_error || 'its last delivery failed'}.`,
          paused: `${s.name} is paused.`,
          starting: `${s.name} is starting.`,
        };
        announce(said[now]);
      }
      state = now;
    };

    test.addEventListener('click', async () => {
      setBusy(test, true, 'Sending…');
      testResult.replaceChildren();
      try {
        await ctx.api.post(`/sinks/${encodeURIComponent(s.id)}/test`, {});
        ctx.toast(`${s.name} acknowledged the test record.`, { kind: 'success', title: 'Test record delivered' });
      } catch (err) {
        replace(testResult, h('div', { class: 'callout callout--danger', role: 'alert' },
          h('div', { class: 'error-block__body' },
            h('p', null, err.message),
            err.reason ? h('p', { class: 'error-block__reason sink__error' }, err.reason) : null)));
      } finally {
        setBusy(test, false);
      }
    });

    toggle.addEventListener('click', async () => {
      const pausing = s.enabled;
      setBusy(toggle, true, pausing ? 'Pausing…' : 'Resuming…');
      try {
        const saved = await changing(() => ctx.api.put(`/sinks/${encodeURIComponent(s.id)}`, { ...settingsOf(s), enabled: !pausing }));
        if (stopped) return;
        setBusy(toggle, false);
        update(saved, false);
        ctx.toast(pausing ? `${saved.name} is paused: nothing is sent until you resume it.`
          : `${saved.name} resumes after event #${(saved.health && saved.health.delivered_seq) || saved.from_seq}.`, { kind: 'success' });
      } catch (err) {
        setBusy(toggle, false);
        ctx.toast(err.reason ? `${err.message} ${err.reason}` : err.message, { kind: 'error', title: pausing ? 'Not paused' : 'Not resumed' });
      } finally {
        refresh();
      }
    });

    edit.addEventListener('click', () => changeSink(s));
    remove.addEventListener('click', () => confirmRemove(s));

    update(s, false);
    return {
      el,
      update,
      get sink() { return s; },
      focus: () => { name.tabIndex = -1; name.focus(); },
    };
  };

  // ------------------------------------------------------ add and change

  const addSink = async () => {
    const created = await openDialog({
      title: 'Add a sink',
      className: 'dialog--sink',
      build: (close) => sinkForm({ ctx, allowed, eventTypes, projects, onSaved: close }),
    });
    if (!created || stopped) return;
    changes += 1; // the answer of a refresh that ran during the request may lack it
    const card = cards.get(created.id) || addCard(created);
    card.update(created, false);
    showEmpty();
    refresh();
    if (created.secret) {
      await showSecret(created);
    } else {
      ctx.toast(`${created.name} is added and starts with ${created.from_seq ? 'its own creation' : 'the whole history'}.`, { kind: 'success' });
    }
    if (!stopped && cards.has(created.id)) cards.get(created.id).focus();
  };

  const changeSink = async (s) => {
    const saved = await openDialog({
      title: `Change ${s.name}`,
      className: 'dialog--sink',
      build: (close) => sinkForm({ ctx, allowed, eventTypes, projects, sink: s, onSaved: close }),
    });
    if (!saved || stopped) return;
    changes += 1;
    const card = cards.get(saved.id);
    if (card) card.update(saved, false);
    ctx.toast(`${saved.name} is saved; the change applies from its next record.`, { kind: 'success' });
    refresh();
  };

  const confirmRemove = async (s) => {
    const removed = await openDialog({
      title: `Remove ${s.name}?`,
      build: (close) => {
        const error = h('div', { class: 'callout callout--danger', role: 'alert', id: 'sink-remove-error' });
        const yes = busyButton('Remove sink', { class: 'btn btn--danger', id: 'sink-remove-confirm' });
        yes.addEventListener('click', async () => {
          setBusy(yes, true, 'Removing…');
          error.replaceChildren();
          try {
            await changing(() => ctx.api.delete(`/sinks/${encodeURIComponent(s.id)}`));
            close(true);
          } catch (err) {
            setBusy(yes, false);
            replace(error, h('div', { class: 'error-block__body' }, h('p', null, err.message),
              err.reason ? h('p', { class: 'error-block__reason' }, err.reason) : null));
          }
        });
        return h('div', { class: 'dialog__body' },
          h('p', null, `${s.name} stops receiving the audit log at once, and its secret is gone for good. What it has received stays where it is; the removal is recorded in the log.`),
          error,
          h('div', { class: 'dialog__actions' },
            h('button', { type: 'button', class: 'btn btn--secondary', autofocus: true, onclick: () => close(false) }, 'Keep it'),
            yes));
      },
    });
    if (!removed || stopped) return;
    const card = cards.get(s.id);
    const order = [...cards.keys()];
    if (card) dropCard(s.id, card);
    changes += 1;
    showEmpty();
    ctx.toast(`${s.name} is removed.`, { kind: 'success' });
    // Focus goes to the next sink, or to what adds one.
    const next = cards.get(order[order.indexOf(s.id) + 1]) || cards.get(order[order.indexOf(s.id) - 1]);
    if (next) next.focus();
    else addButton.focus();
    refresh();
  };

  // Projects name the filters; the page works without them.
  ctx.api.get('/projects')
    .then((answer) => {
      projects = (answer && answer.items) || [];
      if (!stopped) for (const card of cards.values()) card.update(card.sink, false);
    })
    .catch(() => {});
  refresh();
  // A health change pushed live asks again at once (a burst asks once).
  const offLive = ctx.live.subscribe('sinks', debounce(() => refresh(), 250));

  return () => {
    stopped = true;
    clearTimeout(timer);
    offLive();
  };
}

/** The settings of a sink as PUT /sinks/{id} takes them. */
function settingsOf(s) {
  return {
    name: s.name,
    kind: s.kind,
    url: s.kind === 'webhook' ? s.url : '',
    address: s.kind === 'syslog' ? s.address : '',
    tls: Boolean(s.tls),
    ca: s.ca || '',
    format: s.format,
    types: s.types || [],
    projects: s.projects || [],
    enabled: Boolean(s.enabled),
  };
}

/**
 * The form adding a sink, or changing sink when given; onSaved gets what
 * the server answered (with the secret, on creation).
 */
function sinkForm({ ctx, allowed, eventTypes, projects, sink = null, onSaved }) {
  const creating = !sink;
  const start = sink || { kind: 'webhook', format: 'standin', tls: true, types: [], projects: [] };
  const allowedWords = `Allowed on this server: ${allowed || 'any public address'}.`;

  const name = h('input', { id: 'sink-name', class: 'input', type: 'text', maxlength: '100', autocomplete: 'off', required: true,
    value: start.name || '', placeholder: 'e.g. Acme SIEM', autofocus: true });
  const kinds = KINDS.map((k) => h('input', { type: 'radio', name: 'sink-kind', id: `sink-kind-${k.kind}`, value: k.kind, checked: start.kind === k.kind,
    'aria-describedby': `sink-kind-${k.kind}-hint` }));
  const url = h('input', { id: 'sink-url', class: 'input', type: 'url', autocomplete: 'off', spellcheck: 'false', inputmode: 'url',
    value: start.url || '', placeholder: 'https://siem.example.org', 'aria-describedby': 'sink-url-hint' });
  const address = h('input', { id: 'sink-address', class: 'input', type: 'text', autocomplete: 'off', spellcheck: 'false',
    value: start.address || '', placeholder: 'siem.example.org:6514', 'aria-describedby': 'sink-address-hint' });
  const tls = h('input', { id: 'sink-tls', type: 'checkbox', checked: start.kind === 'syslog' ? Boolean(start.tls) : true });
  const format = h('select', { id: 'sink-format', class: 'input', 'aria-describedby': 'sink-format-hint' },
    FORMATS.map((f) => h('option', { value: f.format, selected: f.format === start.format }, f.label)));
  const formatHint = h('p', { class: 'field__hint', id: 'sink-format-hint' });
  const history = h('input', { id: 'sink-history', type: 'checkbox', 'aria-describedby': 'sink-history-hint' });
  const ca = h('textarea', { id: 'sink-ca', class: 'input mono-sm', rows: '4', spellcheck: 'false', autocomplete: 'off',
    placeholder: '-----BEGIN CERTIFICATE-----', 'aria-describedby': 'sink-ca-hint' }, start.ca || '');

  const picked = new Set(start.types || []);
  const typeBoxes = eventTypes.map((t) => h('input', { type: 'checkbox', id: `sink-type-${idPart(t)}`, value: t, checked: picked.has(t) }));
  const typesCount = h('span', { class: 'sink-form__count', id: 'sink-types-count' });
  const pickedProjects = new Set(start.projects || []);
  const projectBoxes = projects.map((p) => h('input', { type: 'checkbox', id: `sink-project-${idPart(p.id)}`, value: p.id, checked: pickedProjects.has(p.id) }));
  const projectsCount = h('span', { class: 'sink-form__count', id: 'sink-projects-count' });

  const error = h('div', { id: 'sink-form-error', class: 'callout callout--danger', role: 'alert' });
  const submit = busyButton(creating ? 'Add sink' : 'Save changes', { type: 'submit', class: 'btn btn--primary', id: 'sink-submit' });

  const webhookFields = h('div', { class: 'field' },
    h('label', { for: 'sink-url' }, 'URL'),
    url,
    h('p', { class: 'field__hint', id: 'sink-url-hint' }, `Where the batches are POSTed. ${allowedWords}`));
  const syslogFields = h('div', { class: 'stack sink-form__syslog' },
    h('div', { class: 'field' },
      h('label', { for: 'sink-address' }, 'Host and port'),
      address,
      h('p', { class: 'field__hint', id: 'sink-address-hint' }, `The syslog server, as host:port. ${allowedWords}`)),
    h('label', { class: 'settings__check', for: 'sink-tls' }, tls, ' Use TLS (recommended; plain TCP sends the log readable on the way)'));

  const choice = (box, label, code) => h('label', { class: 'sink-form__choice', for: box.id }, box,
    h('span', null, label, code ? h('span', { class: 'mono-sm' }, ` ${code}`) : null));

  const counted = () => {
    const n = typeBoxes.filter((b) => b.checked).length;
    typesCount.textContent = n ? `${n} chosen` : 'every event';
    const m = projectBoxes.filter((b) => b.checked).length;
    projectsCount.textContent = m ? `${m} chosen` : 'every project';
  };

  const kindNow = () => (kinds.find((k) => k.checked) || kinds[0]).value;
  const showKind = () => {
    const kind = kindNow();
    webhookFields.hidden = kind !== 'webhook';
    syslogFields.hidden = kind !== 'syslog';
  };
  const sayFormat = () => {
    const f = FORMATS.find((x) => x.format === format.value);
    formatHint.textContent = f ? `${f.label}: ${f.words}.` : '';
  };

  const form = h('form', { class: 'form dialog__body sink-form', novalidate: true, id: 'sink-form' },
    h('div', { class: 'field' },
      h('label', { for: 'sink-name' }, 'Name ', h('span', { class: 'field__required' }, '(required)')),
      name),
    h('fieldset', { class: 'fieldset sink-form__kinds' },
      h('legend', null, 'Kind'),
      KINDS.map((k, i) => h('div', { class: 'sink-form__kind' },
        h('label', { class: 'settings__check', for: kinds[i].id }, kinds[i], ` ${k.label}`),
        h('p', { class: 'field__hint', id: `sink-kind-${k.kind}-hint` }, capitalFirst(k.words))))),
    webhookFields,
    syslogFields,
    h('div', { class: 'field' },
      h('label', { for: 'sink-format' }, 'Format'),
      format,
      formatHint),
    h('details', { class: 'sink-form__more', open: start.ca ? true : null },
      h('summary', null, 'Certificate authority (optional)'),
      h('div', { class: 'field' },
        h('label', { for: 'sink-ca' }, 'Trust this authority for the sink\'s TLS certificate'),
        ca,
        h('p', { class: 'field__hint', id: 'sink-ca-hint' },
          'For a SIEM whose certificate comes from your organization\'s own authority: paste its PEM. Empty: the system\'s authorities.'))),
    h('details', { class: 'sink-form__more', open: picked.size ? true : null },
      h('summary', null, 'Event types: ', typesCount),
      h('fieldset', { class: 'fieldset' },
        h('legend', null, 'Send only these types (none ticked: every event)'),
        h('div', { class: 'sink-form__choices' }, typeBoxes.map((b) => choice(b, typeLabel(b.value), b.value))))),
    projects.length ? h('details', { class: 'sink-form__more', open: pickedProjects.size ? true : null },
      h('summary', null, 'Projects: ', projectsCount),
      h('fieldset', { class: 'fieldset' },
        h('legend', null, 'Send only the events of these projects (none ticked: every project)'),
        h('div', { class: 'sink-form__choices' }, projectBoxes.map((b, i) => choice(b, projects[i].code, projects[i].name))))) : null,
    creating ? h('div', { class: 'field' },
      h('label', { class: 'settings__check', for: 'sink-history' }, history, ' Send the whole history first'),
      h('p', { class: 'field__hint', id: 'sink-history-hint' }, 'Every event since the log began, then what follows. Otherwise the sink starts with its own creation.')) : null,
    error,
    h('div', { class: 'dialog__actions' },
      h('button', { type: 'button', class: 'btn btn--secondary', onclick: () => onSaved(undefined) }, 'Cancel'),
      submit));

  for (const k of kinds) k.addEventListener('change', showKind);
  format.addEventListener('change', sayFormat);
  form.addEventListener('change', counted);
  for (const input of [name, url, address]) input.addEventListener('input', () => fieldError(input, ''));
  showKind();
  sayFormat();
  counted();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.replaceChildren();
    const kind = kindNow();
    const destination = kind === 'webhook' ? url : address;
    fieldError(name, '');
    fieldError(destination, '');
    if (!name.value.trim()) {
      fieldError(name, 'Give the sink a name, such as the SIEM it feeds.');
      name.focus();
      return;
    }
    if (!destination.value.trim()) {
      fieldError(destination, kind === 'webhook' ? 'Give the URL the batches go to.' : 'Give the syslog server as host:port.');
      destination.focus();
      return;
    }
    const body = {
      name: name.value.trim(),
      kind,
      url: kind === 'webhook' ? url.value.trim() : '',
      address: kind === 'syslog' ? address.value.trim() : '',
      tls: kind === 'syslog' ? tls.checked : false,
      ca: ca.value.trim(),
      format: format.value,
      types: typeBoxes.filter((b) => b.checked).map((b) => b.value),
      projects: projectBoxes.filter((b) => b.checked).map((b) => b.value),
      enabled: creating ? true : Boolean(sink.enabled),
    };
    if (creating) body.history = history.checked;
    setBusy(submit, true, creating ? 'Adding…' : 'Saving…');
    try {
      const saved = creating
        ? await ctx.api.post('/sinks', body)
        : await ctx.api.put(`/sinks/${encodeURIComponent(sink.id)}`, body);
      onSaved(saved);
    } catch (err) {
      setBusy(submit, false);
      // A refused destination is said at its field; anything else above the buttons.
      if (err instanceof ApiError && err.status === 422 && /destination|url|address|host/i.test(err.message)) {
        fieldError(destination, err.message);
        destination.focus();
        return;
      }
      replace(error, h('div', { class: 'error-block__body' },
        h('p', null, err.message),
        err.reason ? h('p', { class: 'error-block__reason' }, err.reason) : null));
    }
  });
  return form;
}

function capitalFirst(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/** Shows a new webhook's secret, this once, with a way to copy it. */
function showSecret(sink) {
  return openDialog({
    title: 'Copy the secret now',
    className: 'dialog--secret',
    describedBy: 'sink-secret-warning',
    build: (close) => {
      const secret = h('textarea', { id: 'sink-secret', class: 'input sink-secret__value', rows: '2', readonly: true, spellcheck: 'false',
        autocomplete: 'off', 'aria-describedby': 'sink-secret-hint' });
      secret.value = sink.secret;
      const copied = h('p', { class: 'field__hint', id: 'sink-secret-copied', role: 'status' });
      const copy = h('button', { type: 'button', class: 'btn btn--secondary', id: 'sink-secret-copy', autofocus: true },
        icon('copy', 'icon icon--sm'), h('span', null, 'Copy'));
      secret.addEventListener('focus', () => secret.select());
      copy.addEventListener('click', async () => {
        let ok = false;
        try {
          await navigator.clipboard.writeText(sink.secret);
          ok = true;
        } catch {
          secret.focus();
          secret.select();
          try {
            ok = document.execCommand('copy');
          } catch {
            ok = false;
          }
        }
        copied.textContent = ok ? 'Copied to the clipboard.' : 'The browser did not let the page copy it: the secret is selected, copy it with the keyboard.';
      });
      return h('div', { class: 'dialog__body' },
        h('div', { class: 'callout callout--warning', id: 'sink-secret-warning' },
          h('p', null, h('strong', null, 'This is the only time this secret is shown. '),
            `Give it to the receiver of ${sink.name} now: it checks each batch's X-Standin-Signature header with it. If it is lost, remove the sink and add it again for a new one.`)),
        h('div', { class: 'field' },
          h('label', { for: 'sink-secret' }, `Secret of ${sink.name}`),
          h('div', { class: 'sink-secret' }, secret, copy),
          h('p', { class: 'field__hint', id: 'sink-secret-hint' }, 'HMAC-SHA256 key, 64 hexadecimal characters.'),
          copied),
        h('div', { class: 'dialog__actions' },
          h('button', { type: 'button', class: 'btn btn--primary', id: 'sink-secret-done', onclick: () => close(true) }, 'I have copied it')));
    },
  });
}
