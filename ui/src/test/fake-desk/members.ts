// The tenant's members and invitations, as the server keeps them: only a signed-in user whose
// role allows it may see or change them.

import type { Invitation, Member, Role } from '../../lib/ipc';
import type { Accounts } from './account';
import { SERVER_URL, fail, ok, uuid } from './base';
import type { Seed } from './seed';

export function tenantMembers({ me, sam, robin }: Seed, { signedIn, may, notSignedIn, refused }: Accounts) {
  const members: Member[] = [
    { user_id: me.id, email: 'alex@example.com', name: me.name, role: 'admin' },
    { user_id: sam.id, email: sam.email, name: sam.name, role: 'agent' },
    { user_id: robin.id, email: robin.email, name: robin.name, role: 'requester' },
  ];
  const invitations: Invitation[] = [];

  const commands = {
    listMembers: () => (!signedIn() ? notSignedIn<Member[]>() : may('view_members') ? ok(members) : refused<Member[]>()),
    setMemberRole: (userId: string, next: Role) => {
      if (!signedIn()) return notSignedIn<Member>();
      if (!may('manage_members')) return refused<Member>();
      const member = members.find((m) => m.user_id === userId);
      if (!member) return fail<Member>('not_found', 'member not found');
      if (member.role === 'admin' && next !== 'admin' && members.filter((m) => m.role === 'admin').length === 1) {
        return fail<Member>('last_admin', 'the last admin cannot stop being an admin; make someone else admin first');
      }
      member.role = next;
      return ok(member);
    },
    removeMember: (userId: string) => {
      if (!signedIn()) return notSignedIn<null>();
      if (!may('manage_members')) return refused<null>();
      const i = members.findIndex((m) => m.user_id === userId);
      if (i < 0) return fail<null>('not_found', 'member not found');
      if (members[i].role === 'admin' && members.filter((m) => m.role === 'admin').length === 1) {
        return fail<null>('last_admin', 'a tenant needs at least one admin: make someone else admin first');
      }
      members.splice(i, 1);
      return ok(null);
    },
    listInvitations: () => (!signedIn() ? notSignedIn<Invitation[]>() : may('manage_invitations') ? ok(invitations) : refused<Invitation[]>()),
    inviteMember: (email: string, invitedRole: Role) => {
      if (!signedIn()) return notSignedIn<Invitation>();
      if (!may('manage_invitations')) return refused<Invitation>();
      const address = email.trim();
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address)) return fail<Invitation>('invalid_field', `"${address}" is not an email address`, 'email');
      // As the server answers: codes of their own, naming no field.
      if (members.some((m) => m.email === address)) return fail<Invitation>('already_member', 'someone with this email is already a member');
      if (invitations.some((i) => i.email === address && i.accepted_at === null)) {
        return fail<Invitation>('already_invited', 'this email already has a pending invitation to this tenant');
      }
      const id = uuid();
      const invitation: Invitation = {
        id,
        email: address,
        role: invitedRole,
        invited_by: me.id,
        created_at: new Date().toISOString(),
        accepted_at: null,
      };
      invitations.push(invitation);
      // As the server does: the link to accept is in the answer that creates it, not in lists.
      return ok({ ...invitation, accept_url: `${SERVER_URL}/accept/${id}` });
    },
    revokeInvitation: (id: string) => {
      if (!signedIn()) return notSignedIn<null>();
      const i = invitations.findIndex((x) => x.id === id);
      if (i < 0) return fail<null>('not_found', 'invitation not found');
      if (invitations[i].accepted_at !== null) {
        return fail<null>('invitation_accepted', 'this invitation was already accepted: remove the member instead');
      }
      invitations.splice(i, 1);
      return ok(null);
    },
  };

  return { members, invitations, commands };
}
