/** Every version of `request-enriched`. Pure; importable from workflows. */
export { requestEnrichedV1 } from './v1.js';
export { requestEnrichedV2 } from './v2.js';
export { requestEnrichedV3 } from './v3.js';
