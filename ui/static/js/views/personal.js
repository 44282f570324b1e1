// Personal data kept for safety records (phone, emergency contact, date of
// birth): shown to the person alone; to staff, and while impersonating,
// masked unless the settings leave a field shown. A masked field can be
// revealed for a reason, which is recorded (never the value) and told to
// the person.

import { ApiError } from '../api.js';
import { busyButton, capital, errorBlock, fieldError, h, icon, openDialog, replace, setBusy } from '../dom.js';

/**
 * A card of u's personal data as the server answered it (u.personal), with
 * a reveal button on each masked field. own says the viewer is u.
 */
export function personalCard(ctx, u, { own = false } = {}) {
  const fields = u.personal || [];
  const rows = fields.map((f) => {
    const value = h('dd', { id: `personal-${f.field}`, 'data-masked': f.masked ? 'true' : 'false', 'aria-live': 'polite' });
    if (f.masked) {
      const reveal = h('button', { type: 'button', class: 'btn btn--ghost btn--sm', id: `reveal-${f.field}` }, icon('eye', 'icon icon--sm'), ' Reveal');
      reveal.addEventListener('click', async () => {
        const shown = await revealDialog(ctx, u, f);
        if (shown !== undefined) {
          value.dataset.masked = 'false';
          replace(value, shown || 'Not given');
        }
      });
      replace(value, h('span', { class: 'personal__masked' }, 'Hidden'), ' ', reveal);
    } else {
      replace(value, f.value || h('span', { class: 'muted' }, 'Not given'));
    }
    return h('div', { class: 'facts__item' }, h('dt', null, capital(f.label)), value);
  });
  const note = own
    ? 'Only you see these. Support sees them hidden, and when someone needs one for your safety, they give a reason, and you are told.'
    : 'Hidden to protect the person. Revealing one needs a reason, is recorded and is told to them.';
  return h('section', { class: 'card', 'aria-labelledby': 'personal-title', id: 'personal' },
    h('h2', { class: 'card__title', id: 'personal-title' }, own ? 'Your safety record' : 'Safety record'),
    h('p', { class: 'muted' }, note),
    h('dl', { class: 'facts personal__facts' }, rows));
}

/** Asks why, then reveals field f of u; resolves with the value, or undefined. */
function revealDialog(ctx, u, f) {
  const name = u.name || u.email;
  return openDialog({
    title: `Reveal ${name}'s ${f.label}`,
    className: 'dialog--reveal',
    build: (close) => {
      const reason = h('input', { id: 'reveal-reason', class: 'input', type: 'text', maxlength: '500', autocomplete: 'off', required: true, autofocus: true,
        placeholder: 'e.g. Calling about the booking that failed' });
      const error = h('div', { id: 'reveal-error', role: 'alert' });
      const submit = busyButton('Reveal', { type: 'submit', class: 'btn btn--primary', id: 'reveal-submit' });
      const form = h('form', { class: 'form dialog__body', novalidate: true },
        h('p', { class: 'dialog__lead' }, `The reason is recorded, without the ${f.label}, and ${name} is told.`),
        error,
        h('div', { class: 'field' }, h('label', { for: 'reveal-reason' }, 'Reason ', h('span', { class: 'field__required' }, '(required)')), reason),
        h('div', { class: 'dialog__actions' },
          h('button', { type: 'button', class: 'btn btn--secondary', onclick: () => close(undefined) }, 'Cancel'),
          submit));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        error.replaceChildren();
        if (!reason.value.trim()) {
          fieldError(reason, `Give the reason you need ${name}'s ${f.label}.`);
          reason.focus();
          return;
        }
        fieldError(reason, '');
        setBusy(submit, true, 'Revealing…');
        try {
          const r = await ctx.api.post(`/users/${encodeURIComponent(u.id)}/reveal`, { field: f.field, reason: reason.value.trim() });
          close(r.value || '');
        } catch (err) {
          setBusy(submit, false);
          replace(error, errorBlock(err instanceof ApiError ? err : { message: 'Could not reveal it. Try again.' }, null));
        }
      });
      return form;
    },
  });
}
