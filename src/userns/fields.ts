// The spec fields behind the identity options: errors name the field (`{field}` in a message), which
// the CLI shows as its flag (src/errors.ts FLAG_OF).
export const FIELD_OF: Record<string, string> = {
  uidmap: 'userns.uidMap',
  gidmap: 'userns.gidMap',
  user: 'user',
  'group-add': 'groupAdd',
  'cap-add': 'capAdd',
  'cap-drop': 'capDrop',
};

export const fieldOf = (flag: string): string => FIELD_OF[flag] ?? flag;
