/**
 * Email delivery through nodemailer's SMTP transport (RFC 5321 submission, RFC 5322/2045/2047
 * message composition): one connection per message, since alert mail is rare and a fresh connection
 * keeps failure handling simple. This module only maps the platform's channel settings onto
 * nodemailer's options and its errors onto the platform's {@link ChannelError} codes:
 *
 * - `secure: true`: implicit TLS from the first byte (usually port 465);
 * - `startTls: "auto"` upgrades when the server offers STARTTLS, `"required"` refuses without it
 *   (nodemailer `requireTLS`), `"off"` never upgrades (`ignoreTLS`);
 * - credentials never travel over an unencrypted connection unless `allowInsecureAuth` (local
 *   relays): with credentials on a plain connection, STARTTLS becomes required, and `startTls: "off"`
 *   with credentials is refused before connecting;
 * - replies: 4xx (and 503) are retryable, other 5xx final (nodemailer's `permanent` flag, after
 *   RFC 5321 4.2.1); timeouts are `channel_timeout`; network trouble `channel_unavailable`;
 *   a missing STARTTLS or a failed TLS handshake is `channel_config` (final: no retry fixes it).
 * - partial delivery is delivery: refused recipients are reported, the others get the mail.
 */
import { createTransport, type SendMailOptions } from 'nodemailer';
import { ChannelError } from './channel-error.js';

/** How much longer than `timeoutMs` the socket may stay silent before it counts as idle, in ms. */
export const SOCKET_IDLE_MARGIN_MS = 250;

/** Connection settings for {@link sendMail}. */
export interface SmtpOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte. */
  secure: boolean;
  /** STARTTLS policy on a plain connection. */
  startTls: 'auto' | 'required' | 'off';
  /** Verify the server's certificate. */
  rejectUnauthorized: boolean;
  /** Permit AUTH without TLS (local relays only). */
  allowInsecureAuth: boolean;
  /** Name sent in EHLO. */
  heloName: string;
  /**
   * Limit, in milliseconds, for connecting and for the greeting; a command's reply may take this
   * plus {@link SOCKET_IDLE_MARGIN_MS} of silence, so that a phase's own limit always fires first.
   */
  timeoutMs: number;
  auth?: { user: string; pass: string };
  /** Cancels the send (activity cancellation). */
  signal?: AbortSignal;
}

/** What the server said about an accepted message. */
export interface SmtpSendResult {
  /** The server's final reply, e.g. `250 OK: queued as ABC`, plus any refused recipients. */
  response: string;
  /** Recipients the server accepted. */
  accepted: string[];
}

/**
 * The message: either fields nodemailer composes (from, to, subject, text, date, messageId, headers),
 * or `raw` RFC 5322 text with an explicit `envelope`.
 */
export type OutgoingMail = Pick<SendMailOptions, 'from' | 'to' | 'subject' | 'text' | 'date' | 'messageId' | 'headers' | 'raw' | 'envelope'>;

interface SmtpFailure extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  permanent?: boolean;
  rejected?: string[];
  originalCode?: string;
}

/** A certificate or handshake failure, or a refused STARTTLS: retrying the same settings cannot help. */
function isTlsProblem(e: SmtpFailure): boolean {
  if (e.code === 'ETLS' || e.command === 'STARTTLS') return true;
  return /CERT|SSL|TLS/i.test(e.originalCode ?? '') || /certificate|self[- ]signed|ssl routines|tls/i.test(e.message);
}

function where(options: SmtpOptions): string {
  return `SMTP ${options.host}:${options.port}`;
}

/** Maps a nodemailer error onto the platform's channel errors (see the module comment). */
export function smtpChannelError(error: unknown, options: SmtpOptions): ChannelError {
  if (error instanceof ChannelError) return error;
  const e = (error instanceof Error ? error : new Error(String(error))) as SmtpFailure;
  const stage = e.command ?? e.code ?? 'send';
  const details = { stage, ...(e.responseCode === undefined ? {} : { smtpCode: e.responseCode }) };
  if (isTlsProblem(e)) {
    const why = options.startTls === 'required' ? 'startTls is "required"' : options.auth && !options.secure && !options.allowInsecureAuth ? 'credentials are never sent unencrypted' : 'TLS was requested';
    return new ChannelError(
      'channel_config',
      `${where(options)}: TLS could not be established (${why}): ${e.response ?? e.message} (tlsRejectUnauthorized ${options.rejectUnauthorized}; use a server offering STARTTLS with a valid certificate, secure: true, or allowInsecureAuth for a local relay)`,
      false,
      { cause: error, details },
    );
  }
  if (typeof e.responseCode === 'number') {
    // RFC 5321 4.2.1: 4yz transient, 5yz permanent (nodemailer treats 503 as transient too).
    const permanent = e.permanent ?? (e.responseCode >= 500 && e.responseCode !== 503);
    const reply = (e.response ?? String(e.responseCode)).slice(0, 300);
    return new ChannelError(permanent ? 'channel_rejected' : 'channel_unavailable', `${where(options)}: ${stage} expected a 2xx/3xx reply, got ${reply}`, !permanent, { cause: error, details });
  }
  if (e.code === 'ETIMEDOUT') return new ChannelError('channel_timeout', `${where(options)}: ${stage}: ${e.message}`, true, { cause: error, details });
  if (e.code === 'ENOAUTH' || e.code === 'ECONFIG') return new ChannelError('channel_config', `${where(options)}: ${e.message}`, false, { cause: error, details });
  return new ChannelError('channel_unavailable', `${where(options)}: ${stage}: ${e.message}`, true, { cause: error, details });
}

/**
 * Sends one message. Throws {@link ChannelError}: `channel_rejected` (5xx, final),
 * `channel_unavailable` (4xx, network), `channel_timeout`, `channel_config` (credentials would
 * travel in clear, STARTTLS required but missing, TLS handshake refused).
 */
export async function sendMail(options: SmtpOptions, mail: OutgoingMail): Promise<SmtpSendResult> {
  const plainWithCredentials = options.auth !== undefined && !options.secure && !options.allowInsecureAuth;
  if (plainWithCredentials && options.startTls === 'off') {
    throw new ChannelError(
      'channel_config',
      `${where(options)}: refusing to send credentials over an unencrypted connection; use secure: true, startTls "auto" or "required" with a server offering STARTTLS, or allowInsecureAuth: true for a local relay`,
      false,
    );
  }
  if (options.signal?.aborted) throw new ChannelError('channel_unavailable', `${where(options)}: aborted (activity cancelled)`, true);
  const transport = createTransport({
    host: options.host,
    port: options.port,
    secure: options.secure,
    // Credentials on a plain connection: upgrade or give up, never AUTH in clear.
    requireTLS: options.startTls === 'required' || plainWithCredentials,
    ignoreTLS: options.startTls === 'off',
    tls: { rejectUnauthorized: options.rejectUnauthorized, servername: options.host },
    name: options.heloName,
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    // The idle limit must be strictly longer than the phase limits: nodemailer arms the socket's
    // idle timer just before the greeting timer, and when both have the same duration (a connect
    // within the same millisecond) the idle timer fires first and the error says "CONN: Timeout"
    // instead of naming the greeting (1 send in 10 with a 20 ms limit).
    socketTimeout: options.timeoutMs + SOCKET_IDLE_MARGIN_MS,
    ...(options.auth ? { auth: { user: options.auth.user, pass: options.auth.pass } } : {}),
    // Never log: the transcript would hold credentials and recipients.
    logger: false,
  });
  try {
    const info = await transport.sendMail({ ...mail, ...(options.signal ? { signal: options.signal } : {}) });
    const accepted = (info.accepted as (string | { address: string })[]).map((a) => (typeof a === 'string' ? a : a.address));
    const refused = (info.rejected as (string | { address: string })[]).map((a) => (typeof a === 'string' ? a : a.address));
    return { response: `${info.response}${refused.length > 0 ? ` (refused: ${refused.join(', ')})` : ''}`, accepted };
  } catch (error) {
    throw smtpChannelError(error, options);
  } finally {
    transport.close();
  }
}
