import { ensureReference } from './reference.js';

/** Builds the reference Alertmanager and amtool once (cached outside the clone) before the suite. */
export default function setup(): void {
  ensureReference();
}
