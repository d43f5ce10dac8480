import { createHash, timingSafeEqual } from 'node:crypto';

/** Compares a presented secret with the real one in constant time, whatever their lengths. */
export function sameSecret(presented: string, actual: string): boolean {
  return timingSafeEqual(createHash('sha256').update(presented).digest(), createHash('sha256').update(actual).digest());
}
