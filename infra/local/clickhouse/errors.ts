/**
 * ClickHouse exceptions as the HTTP interface renders them: an error code, its name, a message,
 * and the HTTP status the server maps the code to.
 */

/** Error codes the endpoint raises itself (numbers from ClickHouse's src/Common/ErrorCodes.cpp). */
export const ErrorCode = {
  BAD_ARGUMENTS: 36,
  NOT_IMPLEMENTED: 48,
  SYNTAX_ERROR: 62,
  UNKNOWN_SETTING: 115,
  READONLY: 164,
  QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING: 216,
  SESSION_NOT_FOUND: 372,
  SESSION_IS_LOCKED: 373,
  INVALID_SESSION_TIMEOUT: 374,
  QUERY_WAS_CANCELLED: 394,
  UNKNOWN_QUERY_PARAMETER: 456,
  BAD_QUERY_PARAMETER: 457,
  AUTHENTICATION_FAILED: 516,
  STD_EXCEPTION: 1001,
} as const;

/** An error carrying a ClickHouse error code, rendered as the server renders exceptions. */
export class EndpointError extends Error {
  /**
   * @param code ClickHouse error code (`X-ClickHouse-Exception-Code`).
   * @param message the text after `DB::Exception: `.
   * @param typeName the code's name, e.g. `UNKNOWN_TABLE`.
   */
  constructor(readonly code: number, message: string, readonly typeName: string) {
    super(message);
    this.name = 'EndpointError';
  }
}

/** Shorthand for an {@link EndpointError} whose type name is the key of {@link ErrorCode}. */
export function chError(name: keyof typeof ErrorCode, message: string): EndpointError {
  return new EndpointError(ErrorCode[name], message, name);
}

// The server's table (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp, ClickHouse 25.x/26.x):
// every code not listed answers 500.
const statusGroups: [number, number[]][] = [
  [401, [194]], // REQUIRED_PASSWORD
  // UNKNOWN_USER, WRONG_PASSWORD, AUTHENTICATION_FAILED, SET_NON_GRANTED_ROLE, ACCESS_DENIED
  [403, [192, 193, 516, 512, 497]],
  // BAD_ARGUMENTS, CANNOT_COMPILE_REGEXP, CANNOT_PARSE_{TEXT,ESCAPE_SEQUENCE,QUOTED_STRING,DATE,
  // DATETIME,NUMBER,DOMAIN_VALUE_FROM_STRING,IPV4,IPV6,INPUT_ASSERTION_FAILED,UUID},
  // DUPLICATE_COLUMN, ILLEGAL_COLUMN, UNKNOWN_ELEMENT_IN_AST, UNKNOWN_TYPE_OF_AST_NODE,
  // THERE_IS_NO_COLUMN, TOO_DEEP_AST, TOO_BIG_AST, UNEXPECTED_AST_STRUCTURE, SYNTAX_ERROR,
  // INCORRECT_DATA, TYPE_MISMATCH, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  [400, [36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168, 223, 62, 117, 53, 321]],
  // UNKNOWN_{TABLE,FUNCTION,IDENTIFIER,TYPE,STORAGE,DATABASE,SETTING,DIRECTION_OF_SORTING,
  // AGGREGATE_FUNCTION,FORMAT,DATABASE_ENGINE,TYPE_OF_QUERY,ROLE}
  [404, [60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511]],
  [413, [229]], // QUERY_IS_TOO_LARGE
  [501, [48]], // NOT_IMPLEMENTED
  [503, [209, 76, 439]], // SOCKET_TIMEOUT, CANNOT_OPEN_FILE, CANNOT_SCHEDULE_TASK
  [411, [381]], // HTTP_LENGTH_REQUIRED
  [408, [159]], // TIMEOUT_EXCEEDED
  [415, [779]], // UNSUPPORTED_MEDIA_TYPE
];
const statusByCode = new Map<number, number>(statusGroups.flatMap(([status, codes]) => codes.map((code) => [code, status] as const)));

/**
 * The HTTP status a ClickHouse server answers for an exception code, following the server's
 * `exceptionCodeToHTTPStatus`; 500 for every other code.
 */
export function httpStatusFor(code: number): number {
  return statusByCode.get(code) ?? 500;
}

/** Any error (chdb's, the endpoint's, a plain one) as an {@link EndpointError}. */
export function toEndpointError(err: unknown): EndpointError {
  if (err instanceof EndpointError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const parsed = /Code: (\d+)\. DB::Exception: ([\s\S]*?)(?:\. )?\(([A-Z0-9_]+)\)\s*$/.exec(message);
  if (parsed) return new EndpointError(Number(parsed[1]), parsed[2]!, parsed[3]!);
  const chCode = (err as { clickhouseCode?: unknown } | undefined)?.clickhouseCode;
  return new EndpointError(typeof chCode === 'number' ? chCode : ErrorCode.STD_EXCEPTION, message, 'STD_EXCEPTION');
}
