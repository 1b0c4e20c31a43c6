// The `[USR-xxxxxxxx]` tag that starts the n8n name of every workflow this service deploys: the
// first 8 hex digits of the owner's user id, lowercase (design/contract.md: "The n8n name of a
// workflow is `[USR-<first 8 hex digits of user_id>] <name>`"). It is how cleanup and the scans
// find the service's workflows among everyone's, and half of the ownership check (ownership.ts).

/** What every tag starts with: n8n's `name` filter with it lists all of the service's workflows. */
export const USER_TAG_PREFIX = '[USR-'

export function userTag (userId: string): string {
  return `${USER_TAG_PREFIX}${userId.replace(/-/g, '').slice(0, 8).toLowerCase()}]`
}

/** The name n8n shows: the owner's tag, a space, the row's name. */
export function n8nName (userId: string, name: string): string {
  return `${userTag(userId)} ${name}`
}

/** Whether an n8n name starts with the user's tag (hex case does not matter: n8n's copy may have been edited). */
export function hasUserTag (name: string, userId: string): boolean {
  const tag = userTag(userId)
  return name.slice(0, tag.length).toLowerCase() === tag.toLowerCase()
}
