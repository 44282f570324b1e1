// The facility app, as its users see it (and as support sees it while
// impersonating): resources and booking, my bookings, profile and
// notifications.

import { ApiError } from '../api.js';
import {
  busyButton, emptyState, errorBlock, fieldError, formatDate, formatDateTime, h, icon, initials, loadingBlock,
  openDialog, relativeTime, replace, roleBadge, setBusy, statusBadge, timeEl, timeZoneName, zonedDate, zonedDay,
} from '../dom.js';
import { bookingTable } from './directory.js';
import { personalCard } from './personal.js';

function pageHeader(eyebrow, title, subtitle) {
  return h('header', { class: 'page-header' },
    eyebrow ? h('p', { class: 'card__eyebrow' }, eyebrow) : null,
    h('h1', { class: 'page-header__title' }, title),
    subtitle ? h('p', { class: 'page-header__subtitle' }, subtitle) : null);
}

function firstName(ctx) {
  return (ctx.user.name || '').split(' ')[0] || ctx.user.email;
}

// ---------------------------------------------------------------- book

/** Resources with "can I book this, and if not why", and the booking form. */
export function mountBook(ctx, root) {
  const projects = (ctx.profile && ctx.profile.projects) || [];
  let stopped = false;
  root.append(pageHeader(ctx.impersonation ? `As ${ctx.user.name}` : 'Facility', 'Book an instrument',
    'Every resource says whether you can book it, and if not, why.'));

  if (!ctx.profile && ctx.profileError) {
    // The profile could not be read (a paused moderated session, the
    // server down): say so, not "no project".
    root.append(h('section', { class: 'card' }, errorBlock(ctx.profileError, () => ctx.reloadPage())));
    return () => {};
  }
  if (projects.length === 0) {
    root.append(h('section', { class: 'card' }, emptyState({
      iconName: 'microscope',
      title: 'You are in no project',
      text: 'Bookings are made in a project. Ask a project lead to add you, then come back.',
    })));
    return () => {};
  }

  const projectSelect = h('select', { id: 'book-project', class: 'input' },
    projects.map((p) => h('option', { value: p.project_id }, `${p.code} · ${p.name}`)));
  const resourceList = h('div', { id: 'resource-list', class: 'resource-list', 'aria-live': 'polite', 'aria-busy': 'true' });

  // The booking form.
  const resourceSelect = h('select', { id: 'booking-resource', class: 'input' }, h('option', { value: '' }, 'Loading…'));
  const date = h('input', { id: 'booking-date', class: 'input', type: 'date', required: true, value: defaultDate() });
  const start = h('input', { id: 'booking-start', class: 'input', type: 'time', step: '900', required: true, value: '10:00' });
  const end = h('input', { id: 'booking-end', class: 'input', type: 'time', step: '900', required: true, value: '11:00' });
  const error = h('div', { id: 'booking-error', class: 'callout callout--danger', role: 'alert' });
  const success = h('div', { id: 'booking-success', class: 'callout callout--success', role: 'status' });
  const submit = busyButton('Book', { type: 'submit', class: 'btn btn--primary', id: 'booking-submit' });
  const form = h('form', { id: 'booking-form', class: 'form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'booking-resource' }, 'Resource'), resourceSelect),
    h('div', { class: 'field' }, h('label', { for: 'booking-date' }, 'Date'), date),
    h('div', { class: 'field-row' },
      h('div', { class: 'field' }, h('label', { for: 'booking-start' }, 'From'), start),
      h('div', { class: 'field' }, h('label', { for: 'booking-end' }, 'To'), end)),
    h('p', { class: 'field__hint' }, `Times start and end on a quarter hour, in ${timeZoneName()} time.`),
    error, success, submit);

  root.append(
    h('div', { class: 'book-layout' },
      h('section', { class: 'card', 'aria-labelledby': 'resources-title' },
        h('div', { class: 'card__header card__header--tight' },
          h('h2', { class: 'card__title', id: 'resources-title' }, 'Resources'),
          h('div', { class: 'field field--inline' }, h('label', { for: 'book-project' }, 'Project'), projectSelect)),
        resourceList),
      h('section', { class: 'card booking-card', 'aria-labelledby': 'booking-title' },
        h('h2', { class: 'card__title', id: 'booking-title' }, 'New booking'),
        form)));

  let resources = [];
  const loadResources = async () => {
    resourceList.setAttribute('aria-busy', 'true');
    replace(resourceList, loadingBlock('Checking what you can book…'));
    try {
      const page = await ctx.api.get('/resources', { query: { project: projectSelect.value } });
      if (stopped) return;
      resources = page.items || [];
    } catch (err) {
      if (stopped) return;
      replace(resourceList, errorBlock(err, loadResources));
      return;
    } finally {
      resourceList.setAttribute('aria-busy', 'false');
    }
    const keep = resourceSelect.value;
    replace(resourceSelect, resources.map((r) => h('option', { value: r.id }, r.bookable ? r.name : `${r.name} (not bookable)`)));
    if (keep && resources.some((r) => r.id === keep)) resourceSelect.value = keep;
    if (!resources.length) {
      replace(resourceList, emptyState({ iconName: 'microscope', title: 'No resources', text: 'The facility has no instruments or rooms yet.' }));
      return;
    }
    replace(resourceList, h('ul', { class: 'resource-list__items' }, resources.map((r) => h('li', {
      class: `resource ${r.bookable ? 'resource--ok' : 'resource--no'}`, 'data-resource-id': r.id, 'data-bookable': String(r.bookable),
    },
    h('div', { class: 'resource__head' },
      h('h3', { class: 'resource__name' }, r.name),
      h('span', { class: `badge badge--text ${r.bookable ? 'badge--success' : 'badge--danger'}` }, r.bookable ? 'Bookable' : 'Not bookable')),
    h('p', { class: 'resource__meta' },
      [r.kind, (r.required_trainings || []).length ? `requires ${r.required_trainings.join(', ')}` : 'no training required',
        r.max_hours ? `at most ${r.max_hours} h per booking` : ''].filter(Boolean).join(' · ')),
    r.bookable ? null : h('p', { class: 'resource__reason' }, icon('alert', 'icon icon--sm'), h('span', null, r.reason || 'Not bookable.')),
    h('div', { class: 'resource__actions' },
      h('button', {
        type: 'button', class: `btn ${r.bookable ? 'btn--primary' : 'btn--secondary'} btn--sm`, 'data-book': r.id,
        onclick: () => { resourceSelect.value = r.id; date.focus(); },
      }, r.bookable ? 'Book…' : 'Try anyway…'))))));
  };
  projectSelect.addEventListener('change', loadResources);

  for (const input of [date, start, end]) input.addEventListener('input', () => fieldError(input, ''));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    success.textContent = '';
    const problems = validateBooking(date, start, end);
    if (problems.length) {
      for (const [input, message] of problems) fieldError(input, message);
      problems[0][0].focus();
      return;
    }
    const body = {
      resource_id: resourceSelect.value,
      project_id: projectSelect.value,
      start: zonedDate(date.value, start.value).toISOString(),
      end: zonedDate(date.value, end.value).toISOString(),
    };
    setBusy(submit, true, 'Booking…');
    try {
      const booking = await ctx.api.post('/bookings', body);
      success.replaceChildren(h('p', null,
        `Booked ${booking.resource_name || 'the resource'} on ${formatDateTime(booking.start)}. `,
        h('a', { href: '#/bookings' }, 'See my bookings')));
      ctx.toast(`Booked ${booking.resource_name || 'the resource'}.`, { kind: 'success' });
    } catch (err) {
      error.replaceChildren(h('div', { class: 'error-block__body' },
        h('p', { class: 'error-block__title' }, err instanceof ApiError ? err.message : 'The booking failed.'),
        err && err.reason ? h('p', { class: 'error-block__reason', id: 'booking-reason' }, err.reason) : null));
    } finally {
      setBusy(submit, false);
    }
  });

  loadResources();
  return () => { stopped = true; };
}

/** The next weekday at the facility, as yyyy-mm-dd. */
function defaultDate() {
  const d = new Date(`${zonedDay(new Date())}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  while (d.getUTCDay() === 0 || d.getUTCDay() === 6) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

/** The form's own checks; policy (trainings, hours, limits) is the server's. */
function validateBooking(date, start, end) {
  const problems = [];
  if (!date.value) problems.push([date, 'Choose a date.']);
  if (!start.value) problems.push([start, 'Choose a start time.']);
  if (!end.value) problems.push([end, 'Choose an end time.']);
  if (problems.length) return problems;
  const quarter = (v) => Number(v.split(':')[1]) % 15 === 0;
  if (!quarter(start.value)) problems.push([start, 'Start on a quarter hour (:00, :15, :30 or :45).']);
  if (!quarter(end.value)) problems.push([end, 'End on a quarter hour (:00, :15, :30 or :45).']);
  const from = zonedDate(date.value, start.value);
  const to = zonedDate(date.value, end.value);
  if (to <= from) problems.push([end, 'The booking must end after it starts.']);
  if (from < new Date(Date.now() - 15 * 60000)) problems.push([start, 'The booking starts in the past.']);
  return problems;
}

// ------------------------------------------------------------ my bookings

/** The effective user's bookings, with cancel. */
export function mountBookings(ctx, root) {
  let stopped = false;
  const box = h('div', { id: 'my-bookings', 'aria-live': 'polite' }, loadingBlock('Loading your bookings…'));
  root.append(
    pageHeader(ctx.impersonation ? `As ${ctx.user.name}` : 'Facility', 'My bookings', 'Upcoming and past bookings. Cancel what you no longer need.'),
    h('section', { class: 'card' }, box));

  const load = async () => {
    try {
      const page = await ctx.api.get('/bookings', { query: { limit: 100 } });
      if (stopped) return;
      render(page.items || []);
    } catch (err) {
      if (!stopped) replace(box, errorBlock(err, load));
    }
  };
  const render = (items) => {
    if (!items.length) {
      replace(box, emptyState({ iconName: 'calendar', title: 'No bookings yet', text: 'Book an instrument and it will be listed here.', actions: [h('a', { class: 'btn btn--primary', href: '#/book' }, 'Book an instrument')] }));
      return;
    }
    const now = Date.now();
    const upcoming = items.filter((b) => b.status === 'confirmed' && new Date(b.end).getTime() > now)
      .sort((a, b) => String(a.start).localeCompare(String(b.start)));
    const past = items.filter((b) => !upcoming.includes(b));
    const cancel = (b) => h('button', { type: 'button', class: 'btn btn--danger btn--sm', 'data-cancel': b.id, onclick: () => confirmCancel(ctx, b, load) }, 'Cancel');
    replace(box,
      h('h2', { class: 'section-title' }, `Upcoming (${upcoming.length})`),
      upcoming.length ? bookingTable(upcoming, { actions: cancel }) : h('p', { class: 'muted' }, 'Nothing coming up.'),
      past.length ? h('h2', { class: 'section-title' }, `Past and cancelled (${past.length})`) : null,
      past.length ? bookingTable(past) : null);
  };
  load();
  return () => { stopped = true; };
}

function confirmCancel(ctx, b, reload) {
  return openDialog({
    title: 'Cancel this booking?',
    build: (close) => {
      const error = h('div', { id: 'cancel-error', class: 'callout callout--danger', role: 'alert' });
      const yes = busyButton('Cancel booking', { class: 'btn btn--danger', id: 'cancel-confirm' });
      yes.addEventListener('click', async () => {
        setBusy(yes, true, 'Cancelling…');
        error.textContent = '';
        try {
          await ctx.api.delete(`/bookings/${encodeURIComponent(b.id)}`);
          close(true);
          ctx.toast('The booking was cancelled.', { kind: 'success' });
          reload();
        } catch (err) {
          setBusy(yes, false);
          error.replaceChildren(h('div', { class: 'error-block__body' },
            h('p', { class: 'error-block__title' }, err.message),
            err.reason ? h('p', { class: 'error-block__reason' }, err.reason) : null));
        }
      });
      return h('div', { class: 'dialog__body' },
        h('p', null, `${b.resource_name || 'Resource'}, ${formatDateTime(b.start)} to ${formatDateTime(b.end)}. The slot becomes free for others.`),
        error,
        h('div', { class: 'dialog__actions' },
          h('button', { type: 'button', class: 'btn btn--secondary', autofocus: true, onclick: () => close(false) }, 'Keep it'),
          yes));
    },
  });
}

// ---------------------------------------------------------------- profile

/** The effective user's profile: name, projects, trainings, password. */
export function mountProfile(ctx, root) {
  let stopped = false;
  const box = h('div', { class: 'stack' }, loadingBlock('Loading your profile…'));
  root.append(pageHeader(ctx.impersonation ? `As ${ctx.user.name}` : 'Account', 'Profile', null), box);

  const load = async () => {
    try {
      const p = await ctx.api.get('/profile');
      if (!stopped) render(p);
    } catch (err) {
      if (!stopped) replace(box, errorBlock(err, load));
    }
  };

  const render = (p) => {
    const name = h('input', { id: 'profile-name', class: 'input', value: p.name, maxlength: '100', autocomplete: 'name', required: true });
    const saveMsg = h('div', { id: 'profile-message', class: 'callout', role: 'status' });
    const save = busyButton('Save', { type: 'submit', class: 'btn btn--primary' });
    const nameForm = h('form', { class: 'form', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'profile-name' }, 'Name'), name),
      saveMsg, h('div', null, save));
    nameForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      saveMsg.className = 'callout';
      saveMsg.textContent = '';
      if (!name.value.trim()) {
        fieldError(name, 'Enter your name.');
        name.focus();
        return;
      }
      fieldError(name, '');
      setBusy(save, true, 'Saving…');
      try {
        const updated = await ctx.api.patch('/profile', { name: name.value.trim() });
        saveMsg.className = 'callout callout--success';
        saveMsg.textContent = `Saved. You appear as ${updated.name}.`;
        ctx.refreshSession();
      } catch (err) {
        saveMsg.className = 'callout callout--danger';
        saveMsg.textContent = err.reason ? `${err.message} ${err.reason}` : err.message;
      } finally {
        setBusy(save, false);
      }
    });

    const current = h('input', { id: 'pw-current', class: 'input', type: 'password', autocomplete: 'current-password' });
    const next = h('input', { id: 'pw-new', class: 'input', type: 'password', autocomplete: 'new-password', minlength: '8' });
    const pwMsg = h('div', { id: 'password-message', class: 'callout', role: 'status' });
    const change = busyButton('Change password', { type: 'submit', class: 'btn btn--secondary' });
    const pwForm = h('form', { class: 'form', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'pw-current' }, 'Current password'), current),
      h('div', { class: 'field' }, h('label', { for: 'pw-new' }, 'New password'), next,
        h('p', { class: 'field__hint' }, '8 to 256 characters.')),
      pwMsg, h('div', null, change));
    pwForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      pwMsg.className = 'callout';
      pwMsg.textContent = '';
      if (next.value.length < 8) {
        fieldError(next, 'The new password must be at least 8 characters long.');
        next.focus();
        return;
      }
      fieldError(next, '');
      setBusy(change, true, 'Changing…');
      try {
        await ctx.api.post('/profile/password', { current_password: current.value, new_password: next.value });
        pwMsg.className = 'callout callout--success';
        pwMsg.textContent = 'Your password was changed.';
        current.value = '';
        next.value = '';
      } catch (err) {
        pwMsg.className = 'callout callout--danger';
        pwMsg.textContent = err.reason ? `${err.message} ${err.reason}` : err.message;
      } finally {
        setBusy(change, false);
      }
    });

    refuseForm(ctx.permissions.edit_profile, 'profile-name-refused', nameForm, [name, save]);
    refuseForm(ctx.permissions.change_password, 'password-refused', pwForm, [current, next, change]);

    replace(box,
      h('header', { class: 'profile-head card' },
        h('span', { class: 'avatar avatar--lg', 'aria-hidden': 'true' }, initials(p.name, p.email)),
        h('div', { class: 'profile-head__text' },
          h('p', { class: 'profile-head__name' }, p.name),
          h('p', { class: 'profile-head__email' }, p.email),
          h('div', { class: 'cluster' }, roleBadge(p.role), statusBadge(p.status)))),
      h('div', { class: 'grid-2' },
        h('section', { class: 'card', 'aria-labelledby': 'p-projects' },
          h('h2', { class: 'card__title', id: 'p-projects' }, 'Projects'),
          (p.projects || []).length
            ? h('ul', { class: 'list' }, p.projects.map((m) => h('li', { class: 'list__item' },
              h('span', null, h('strong', null, m.code), ` · ${m.name}`), h('span', { class: 'badge' }, m.role))))
            : emptyState({ iconName: 'users', title: 'No projects', text: 'Ask a project lead to add you.' })),
        h('section', { class: 'card', 'aria-labelledby': 'p-trainings' },
          h('h2', { class: 'card__title', id: 'p-trainings' }, 'Trainings'),
          (p.trainings || []).length
            ? h('ul', { class: 'list' }, p.trainings.map((t) => h('li', { class: 'list__item' },
              h('span', null, h('strong', null, t.name), h('span', { class: 'list__sub' },
                `Completed ${formatDate(t.completed_at)}${t.expires_at ? ` · expires ${formatDate(t.expires_at)}` : ''}`)),
              h('span', { class: `badge ${t.valid ? 'badge--success' : 'badge--danger'}` }, t.valid ? 'valid' : 'expired'))))
            : emptyState({ iconName: 'shield', title: 'No trainings yet', text: 'Some instruments need a training first.' }))),
      personalCard(ctx, p, { own: !ctx.impersonation }),
      h('div', { class: 'grid-2' },
        h('section', { class: 'card', 'aria-labelledby': 'p-name' }, h('h2', { class: 'card__title', id: 'p-name' }, 'Your name'), nameForm),
        h('section', { class: 'card', 'aria-labelledby': 'p-password' }, h('h2', { class: 'card__title', id: 'p-password' }, 'Password'), pwForm)));
  };
  load();
  return () => { stopped = true; };
}

/**
 * Shows a form the server refuses (GET /permissions says so, with why)
 * as refused before anyone types: its controls disabled and described by
 * the reason, which stands at the top of the form.
 * @param {{allowed: boolean, reason?: string}|undefined} decision
 */
function refuseForm(decision, id, form, controls) {
  if (!decision || decision.allowed) return;
  const reason = decision.reason || 'This is not allowed here.';
  form.prepend(h('p', { id, class: 'callout callout--warning form__refused' }, icon('alert', 'icon icon--sm'), ' ', reason));
  form.dataset.refused = 'true';
  for (const control of controls) {
    control.disabled = true;
    control.setAttribute('aria-describedby', id);
  }
}

// ---------------------------------------------------------- notifications

/**
 * The facts of a notification beside its sentence, each only when the
 * sentence does not say it already: who and why are stated once.
 */
function inboxFacts(n) {
  const body = n.body || '';
  const who = n.actor_email ? `${n.actor_name} (${n.actor_email})` : (n.actor_name || '');
  return h('dl', { class: 'inbox__facts' },
    who && !body.includes(who) ? h('div', null, h('dt', null, 'Who'), h('dd', null, who)) : null,
    h('div', null, h('dt', null, 'When'), h('dd', null, timeEl(n.at, `${formatDateTime(n.at)} (${relativeTime(n.at)})`))),
    n.reason && !body.includes(n.reason) ? h('div', null, h('dt', null, 'Why'), h('dd', { 'data-fact': 'why' }, n.reason)) : null);
}

/** The inbox: who started or ended a session on my account, when and why. */
export function mountNotifications(ctx, root) {
  const store = ctx.notifications;
  const box = h('div', { id: 'inbox', 'aria-live': 'polite' });
  root.append(
    pageHeader(ctx.impersonation ? `As ${ctx.user.name}` : 'Account', 'Notifications',
      `When support looks at your account, you are told here${ctx.impersonation ? '' : ' and live'}.`),
    h('section', { class: 'card' }, box));

  const render = () => {
    if (!store.loaded) {
      replace(box, loadingBlock('Loading notifications…'));
      return;
    }
    if (store.error && !store.items.length) {
      replace(box, errorBlock(store.error, () => { store.loaded = false; render(); store.start(ctx); }));
      return;
    }
    if (!store.items.length) {
      replace(box, emptyState({ iconName: 'bell', title: 'No notifications', text: 'Nobody from support has opened a session on your account.' }));
      return;
    }
    const readSeq = store.readSeq;
    replace(box,
      h('ol', { class: 'inbox' }, store.items.map((n) => h('li', {
        class: `inbox__item${n.seq > readSeq ? ' inbox__item--unread' : ''}`, 'data-type': n.type, 'data-id': n.id,
      },
      h('span', { class: `inbox__icon inbox__icon--${n.type === 'impersonation.started' ? 'start' : 'end'}` }, icon(n.type === 'impersonation.started' ? 'eye' : 'check')),
      h('div', { class: 'inbox__body' },
        h('p', { class: 'inbox__title' }, n.title, n.seq > readSeq ? h('span', { class: 'badge badge--primary badge--inline' }, 'new') : null),
        h('p', { class: 'inbox__text' }, n.body),
        inboxFacts(n),
        n.type === 'impersonation.ended' && n.impersonation_id
          ? h('p', { class: 'inbox__more' }, h('a', { href: `#/sessions/${encodeURIComponent(n.impersonation_id)}`, 'data-summary': n.impersonation_id },
            'See what was done in your name'))
          : null)))),
      store.nextCursor ? h('div', { class: 'list-more' }, busyButton('Load older', {
        class: 'btn btn--secondary',
        onclick: async (e) => {
          const b = e.currentTarget;
          setBusy(b, true, 'Loading…');
          try { await store.more(); } catch (err) { setBusy(b, false); ctx.toast(err.message, { kind: 'error' }); }
        },
      })) : null);
    // Seen now: the count in the navigation clears.
    store.markRead();
  };
  const off = store.on(render);
  render();
  return off;
}
