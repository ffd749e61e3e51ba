/**
 * The platform's error base: a stable `code` (the ApplicationFailure type at the activity boundary,
 * so retry policies can name it; also what scripts match on) and a `retriable` flag. Pure, so
 * schemas, workers, infra and activities all share it.
 */
export class PlatformError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retriable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'PlatformError';
  }
}
