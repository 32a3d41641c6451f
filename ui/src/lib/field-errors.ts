// One rule for every form: an error about one input is shown at that input, which gets focus;
// anything else is the form's to show above its fields. An error names its input in `field`,
// whatever its code (`invalid_field`, `wrong_password`, `calendar_in_use`…); a few codes name
// none yet are about one input all the same (`already_member`: the email typed).

import { tick } from 'svelte';
import type { AppError, ErrorCode } from './ipc';
import { sentence } from './format';

/** A form's inputs, as errors name them. */
export interface FormFields<F extends string> {
  /** The inputs, by the names Rust gives them; a map where a form calls one otherwise
   *  (`{ notes: 'note' }`). */
  fields: readonly F[] | Readonly<Record<string, F>>;
  /** Codes that name no field yet are about one input. */
  codes?: Partial<Record<ErrorCode, F>>;
  /** The element to focus for an input; without it, focus stays where it is. */
  input?: (field: F) => HTMLElement | null | undefined;
}

/** The input of the form that `error` is about, if it is about one. */
export function fieldOf<F extends string>(error: AppError, form: Omit<FormFields<F>, 'input'>): F | null {
  const { field } = error;
  let named: F | undefined;
  if (field !== null) {
    if (isList(form.fields)) named = form.fields.find((f) => f === field);
    else if (Object.prototype.hasOwnProperty.call(form.fields, field)) named = form.fields[field];
  }
  return named ?? form.codes?.[error.code] ?? null;
}

/** `{ [input]: message }` when `error` is about one of the form's inputs, which then gets
 *  focus; `null` when it is about none. */
export function atField<F extends string>(error: AppError, form: FormFields<F>): Partial<Record<F, string>> | null {
  const field = fieldOf(error, form);
  if (field === null) return null;
  const { input } = form;
  // Once the view shows the message, so that focus lands on an input it describes.
  if (input) void tick().then(() => input(field)?.focus());
  return { [field]: sentence(error.message) } as Partial<Record<F, string>>;
}

function isList<F extends string>(fields: readonly F[] | Readonly<Record<string, F>>): fields is readonly F[] {
  return Array.isArray(fields);
}
