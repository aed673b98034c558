// SPDX-License-Identifier: MIT
/**
 * Xenstore path rules (spec/xenstore.md §2): canonicalisation of relative paths, the
 * validity checks both daemons apply, the `@` special names and the relative-part length
 * rule. Pure functions: no I/O.
 */
import { XENSTORE_REL_PATH_MAX } from '../../abi/xs-wire.js';

/** The two watch-only special names (§2, §5.6). */
export const XS_SPECIAL_PATHS = ['@introduceDomain', '@releaseDomain'] as const;

/** `@introduceDomain` or `@releaseDomain`. */
export type XsSpecialPath = (typeof XS_SPECIAL_PATHS)[number];

/** True when `path` is exactly one of the two special names. */
export function isXsSpecialPath(path: string): path is XsSpecialPath {
  return path === '@introduceDomain' || path === '@releaseDomain';
}

/** The home of a domain: `/local/domain/<domid>` (GET_DOMAIN_PATH, §7.4). */
export function domainPath(domid: number): string {
  // C formats atoi() with %u, so the id is shown as an unsigned 32-bit number.
  return `/local/domain/${domid >>> 0}`;
}

/**
 * Prefix a relative path with `/local/domain/<domid>/` (§2). Absolute paths and `@` names
 * are returned unchanged. No validation.
 */
export function canonicalizePath(path: string, domid: number): string {
  if (path.startsWith('/') || path.startsWith('@')) return path;
  return `${domainPath(domid)}/${path}`;
}

const VALID_CHARS = /^[A-Za-z0-9\-/_@]*$/;
const DOMAIN_PREFIX = /^\/local\/domain\/[0-9]{1,5}\//;

/**
 * The length that counts against `path-max` (§2): the part after `/local/domain/<1-5
 * digits>/` when the path starts with that, else the whole path.
 */
export function countedPathLength(canonical: string): number {
  const m = DOMAIN_PREFIX.exec(canonical);
  return m === null ? canonical.length : canonical.length - m[0].length;
}

/**
 * Check a canonical (absolute) path in C's order (§2): starts with `/`, no trailing `/`
 * except `/` itself, no `//`, counted length ≤ `pathMax`, characters `A-Z a-z 0-9 - / _ @`.
 * Returns true when valid.
 */
export function isValidCanonicalPath(canonical: string, pathMax = XENSTORE_REL_PATH_MAX): boolean {
  if (!canonical.startsWith('/')) return false;
  if (canonical.length > 1 && canonical.endsWith('/')) return false;
  if (canonical.includes('//')) return false;
  if (countedPathLength(canonical) > pathMax) return false;
  return VALID_CHARS.test(canonical);
}

/** Parent of a canonical absolute path (`/` for top-level nodes and for `/` itself). */
export function parentPath(canonical: string): string {
  const i = canonical.lastIndexOf('/');
  return i <= 0 ? '/' : canonical.slice(0, i);
}

/** Last component of a canonical path (empty for `/`). */
export function baseName(canonical: string): string {
  return canonical.slice(canonical.lastIndexOf('/') + 1);
}

/** True when `path` equals `ancestor` or lies below it (`/` is above everything). */
export function isPathAtOrBelow(path: string, ancestor: string): boolean {
  if (ancestor === '/') return path.startsWith('/');
  return path === ancestor || path.startsWith(`${ancestor}/`);
}

/** Join a canonical parent and a child name. */
export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}
