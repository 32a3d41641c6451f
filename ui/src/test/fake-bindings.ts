// The mocked `../bindings` module: every command goes to the fake desk installed last.
// (Kept apart from the harness: the mock's factory must not import what imports the bindings.)

import { createFakeDesk, type FakeDesk } from './fake-desk';

type Commands = FakeDesk['commands'];

let desk: FakeDesk = createFakeDesk();

export function setDesk(next: FakeDesk) {
  desk = next;
}

export const commands = new Proxy({} as Commands, {
  get:
    (_, name: string) =>
    (...args: unknown[]) =>
      (desk.commands[name as keyof Commands] as (...a: unknown[]) => unknown)(...args),
});
