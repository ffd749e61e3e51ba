/**
 * A minimal SMTP submission client (RFC 5321) on node:net / node:tls: EHLO, STARTTLS, AUTH PLAIN or
 * LOGIN, MAIL FROM, RCPT TO, DATA with dot-stuffing, QUIT; plus the RFC 5322 message formatting the
 * email channel needs (encoded-word headers, 7bit or quoted-printable body). It sends one message
 * per connection: alert mail is rare and a fresh connection keeps failure handling simple.
 * Reply classes map to the platform's error codes: 4xx and network trouble are retryable, 5xx final.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ChannelError } from './channel-error.js';

/** Connection settings for {@link sendMail}. */
export interface SmtpOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte. */
  secure: boolean;
  /** STARTTLS policy on a plain connection. */
  startTls: 'auto' | 'required' | 'off';
  rejectUnauthorized: boolean;
  /** Permit AUTH without TLS (local relays only). */
  allowInsecureAuth: boolean;
  heloName: string;
  /** Limit for connecting and for each command's reply. */
  timeoutMs: number;
  auth?: { user: string; pass: string };
  signal?: AbortSignal;
}

/** One SMTP reply (all lines of a multi-line reply joined by newlines). */
export interface SmtpReply {
  code: number;
  lines: string[];
}

/** The server's final answer to DATA, e.g. `250 OK: queued as ABC`. */
export interface SmtpSendResult {
  response: string;
  /** Recipients the server accepted. */
  accepted: string[];
}

function replyText(reply: SmtpReply): string {
  return `${reply.code} ${reply.lines.join(' / ')}`.slice(0, 300);
}

function smtpFailure(stage: string, reply: SmtpReply, host: string): ChannelError {
  // 4xx are transient by definition (RFC 5321 4.2.1); 5xx are permanent.
  const transient = reply.code >= 400 && reply.code < 500;
  return new ChannelError(
    transient ? 'channel_unavailable' : 'channel_rejected',
    `SMTP ${host}: ${stage} expected a 2xx/3xx reply, got ${replyText(reply)}`,
    transient,
    { details: { stage, smtpCode: reply.code } },
  );
}

/** Reads CRLF-terminated reply lines from whichever socket is current (plain, then TLS). */
class ReplyReader {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.buffer += chunk.toString('utf8');
    let index: number;
    while ((index = this.buffer.indexOf('\n')) >= 0) {
      this.lines.push(this.buffer.slice(0, index).replace(/\r$/, ''));
      this.buffer = this.buffer.slice(index + 1);
    }
    if (this.buffer.length > 64_000) this.fail(new Error('SMTP reply line longer than 64 kB'));
    this.wake();
  };
  private readonly onClose = (): void => this.fail(new Error('connection closed by the server'));
  private readonly onError = (error: Error): void => this.fail(error);
  private socket: Socket | undefined;

  attach(socket: Socket): void {
    this.detach();
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  detach(): void {
    if (!this.socket) return;
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onError);
    this.socket = undefined;
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  async read(): Promise<SmtpReply> {
    const collected: string[] = [];
    for (;;) {
      const line = this.lines.shift();
      if (line === undefined) {
        if (this.failure) throw this.failure;
        await new Promise<void>((resolve) => (this.waiter = resolve));
        continue;
      }
      const match = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!match) throw new Error(`malformed SMTP reply line ${JSON.stringify(line.slice(0, 80))}`);
      collected.push(match[3]!);
      if (match[2] !== '-') return { code: Number(match[1]), lines: collected };
    }
  }
}

/**
 * Sends one message. `message` is the complete RFC 5322 text (see {@link formatMessage}); the
 * envelope addresses are bare (`user@domain`). Throws {@link ChannelError}: `channel_rejected`
 * (5xx, final), `channel_unavailable` (4xx, network), `channel_timeout`, `channel_config`
 * (credentials would travel in clear, STARTTLS required but missing).
 */
export async function sendMail(options: SmtpOptions, envelope: { from: string; to: string[] }, message: string): Promise<SmtpSendResult> {
  const reader = new ReplyReader();
  let socket: Socket | TLSSocket | undefined;
  let encrypted = options.secure;
  let timedOut = false;
  let stage = 'connect';

  const armTimeout = (s: Socket): void => {
    s.setTimeout(options.timeoutMs, () => {
      timedOut = true;
      reader.fail(new Error(`no answer within ${options.timeoutMs} ms`));
      s.destroy();
    });
  };
  const onAbort = (): void => {
    reader.fail(new Error('aborted (activity cancelled)'));
    socket?.destroy();
  };

  const command = async (line: string, expect: (code: number) => boolean, label = line.split(' ')[0]!): Promise<SmtpReply> => {
    stage = label;
    socket!.write(`${line}\r\n`);
    const reply = await reader.read();
    if (!expect(reply.code)) throw smtpFailure(label, reply, options.host);
    return reply;
  };
  const is2xx = (c: number): boolean => c >= 200 && c < 300;

  try {
    if (options.signal?.aborted) throw new Error('aborted (activity cancelled)');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket = await new Promise<Socket>((resolve, reject) => {
      const s: Socket = options.secure
        ? tlsConnect({ host: options.host, port: options.port, servername: options.host, rejectUnauthorized: options.rejectUnauthorized })
        : netConnect({ host: options.host, port: options.port });
      socket = s;
      armTimeout(s);
      reader.attach(s);
      s.once(options.secure ? 'secureConnect' : 'connect', () => resolve(s));
      s.once('error', reject);
      s.once('close', () => reject(new Error('connection closed before it was established')));
    });

    stage = 'greeting';
    const greeting = await reader.read();
    if (greeting.code !== 220) throw smtpFailure('greeting', greeting, options.host);

    let ehlo = await command(`EHLO ${options.heloName}`, is2xx, 'EHLO');
    let capabilities = ehlo.lines.slice(1).map((l) => l.toUpperCase());

    if (!encrypted && options.startTls !== 'off') {
      const offered = capabilities.some((c) => c === 'STARTTLS' || c.startsWith('STARTTLS '));
      if (offered) {
        await command('STARTTLS', (c) => c === 220);
        stage = 'TLS handshake';
        const plain = socket;
        reader.detach();
        plain.setTimeout(0);
        socket = await new Promise<TLSSocket>((resolve, reject) => {
          const s = tlsConnect({ socket: plain, servername: options.host, rejectUnauthorized: options.rejectUnauthorized });
          socket = s;
          armTimeout(s);
          reader.attach(s);
          s.once('secureConnect', () => resolve(s));
          s.once('error', reject);
          s.once('close', () => reject(new Error('connection closed during the TLS handshake')));
        });
        encrypted = true;
        ehlo = await command(`EHLO ${options.heloName}`, is2xx, 'EHLO');
        capabilities = ehlo.lines.slice(1).map((l) => l.toUpperCase());
      } else if (options.startTls === 'required') {
        throw new ChannelError('channel_config', `SMTP ${options.host}:${options.port}: startTls is "required" but the server does not offer STARTTLS`, false);
      }
    }

    if (options.auth) {
      if (!encrypted && !options.allowInsecureAuth) {
        throw new ChannelError(
          'channel_config',
          `SMTP ${options.host}:${options.port}: refusing to send credentials over an unencrypted connection; use secure: true, a server offering STARTTLS, or allowInsecureAuth: true for a local relay`,
          false,
        );
      }
      const authLine = capabilities.find((c) => c.startsWith('AUTH ') || c.startsWith('AUTH='));
      const mechanisms = new Set((authLine ?? '').replace(/^AUTH[ =]/, '').split(/\s+/));
      const ok235 = (c: number): boolean => c === 235;
      if (mechanisms.has('PLAIN')) {
        const credentials = Buffer.from(`\u0000${options.auth.user}\u0000${options.auth.pass}`, 'utf8').toString('base64');
        await command(`AUTH PLAIN ${credentials}`, ok235, 'AUTH PLAIN');
      } else if (mechanisms.has('LOGIN')) {
        await command('AUTH LOGIN', (c) => c === 334, 'AUTH LOGIN');
        await command(Buffer.from(options.auth.user, 'utf8').toString('base64'), (c) => c === 334, 'AUTH LOGIN (user)');
        await command(Buffer.from(options.auth.pass, 'utf8').toString('base64'), ok235, 'AUTH LOGIN (password)');
      } else {
        throw new ChannelError(
          'channel_config',
          `SMTP ${options.host}:${options.port}: expected AUTH PLAIN or LOGIN to be offered, got ${authLine ? JSON.stringify(authLine) : 'no AUTH capability'}`,
          false,
        );
      }
    }

    await command(`MAIL FROM:<${envelope.from}>`, is2xx, 'MAIL FROM');
    const accepted: string[] = [];
    let lastRefusal: SmtpReply | undefined;
    for (const rcpt of envelope.to) {
      stage = 'RCPT TO';
      socket.write(`RCPT TO:<${rcpt}>\r\n`);
      const reply = await reader.read();
      if (is2xx(reply.code)) accepted.push(rcpt);
      else lastRefusal = reply;
    }
    // Partial delivery is delivery: the refused addresses are reported, the rest get the mail.
    if (accepted.length === 0) throw smtpFailure('RCPT TO (no recipient accepted)', lastRefusal!, options.host);
    await command('DATA', (c) => c === 354);
    stage = 'DATA (message)';
    socket.write(`${dotStuff(message)}\r\n.\r\n`);
    const final = await reader.read();
    if (!is2xx(final.code)) throw smtpFailure('end of DATA', final, options.host);
    try {
      await command('QUIT', () => true);
    } catch {
      // The message is already accepted; a server that drops the line on QUIT changes nothing.
    }
    const refused = envelope.to.filter((r) => !accepted.includes(r));
    return {
      response: replyText(final) + (refused.length > 0 ? ` (refused: ${refused.join(', ')})` : ''),
      accepted,
    };
  } catch (error) {
    if (error instanceof ChannelError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    if (timedOut) {
      throw new ChannelError('channel_timeout', `SMTP ${options.host}:${options.port}: ${stage}: ${reason}`, true, { cause: error, details: { stage } });
    }
    throw new ChannelError('channel_unavailable', `SMTP ${options.host}:${options.port}: ${stage}: ${reason}`, true, { cause: error, details: { stage } });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    reader.detach();
    socket?.destroy();
  }
}

/** Normalises line ends to CRLF and doubles a leading dot on every line (RFC 5321 4.5.2). */
export function dotStuff(message: string): string {
  return message
    .replace(/\r?\n/g, '\r\n')
    .split('\r\n')
    .map((line) => (line.startsWith('.') ? `.${line}` : line))
    .join('\r\n');
}

// Printable ASCII without control characters.
const plainAscii = /^[\x20-\x7e]*$/;

/** RFC 2047 encoded words for a header value that is not plain ASCII; CR/LF are removed first. */
export function encodeHeaderValue(value: string): string {
  const clean = value.replace(/[\r\n]+/g, ' ');
  if (plainAscii.test(clean)) return clean;
  const words: string[] = [];
  let chunk = '';
  for (const char of clean) {
    // 45 bytes of UTF-8 encode to 60 base64 characters: each word stays under 75 characters.
    if (Buffer.byteLength(chunk + char, 'utf8') > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += char;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join('\r\n ');
}

/** `Name <addr>` with the name encoded when needed; a bare address stays as it is. */
export function encodeMailbox(mailbox: string): string {
  const match = /^(.*?)\s*<([^>]+)>$/.exec(mailbox.trim());
  if (!match) return mailbox.trim();
  const name = match[1]!.trim().replace(/^"(.*)"$/, '$1');
  if (!name) return `<${match[2]}>`;
  const encoded = plainAscii.test(name) ? `"${name.replace(/["\\]/g, '\\$&')}"` : encodeHeaderValue(name);
  return `${encoded} <${match[2]}>`;
}

/** The bare address of a mailbox (`Ops <ops@x>` -> `ops@x`). */
export function mailboxAddress(mailbox: string): string {
  const match = /<([^>]+)>\s*$/.exec(mailbox);
  return (match ? match[1]! : mailbox).trim();
}

/** Quoted-printable (RFC 2045 6.7) for text with CRLF line ends; soft breaks keep lines <= 76. */
export function quotedPrintable(text: string): string {
  return text
    .split(/\r?\n/)
    .map((line) => {
      const bytes = Buffer.from(line, 'utf8');
      let out = '';
      let width = 0;
      bytes.forEach((byte, i) => {
        const last = i === bytes.length - 1;
        const literal = (byte >= 33 && byte <= 126 && byte !== 61) || ((byte === 32 || byte === 9) && !last);
        const piece = literal ? String.fromCharCode(byte) : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
        if (width + piece.length > 75) {
          out += '=\r\n';
          width = 0;
        }
        out += piece;
        width += piece.length;
      });
      return out;
    })
    .join('\r\n');
}

/** RFC 5322 date in UTC: `Fri, 27 Nov 2026 06:12:38 +0000`. */
export function rfc5322Date(date: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${days[date.getUTCDay()]}, ${two(date.getUTCDate())} ${months[date.getUTCMonth()]} ${date.getUTCFullYear()} ${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
}

/** What {@link formatMessage} needs. */
export interface MailMessage {
  from: string;
  to: string[];
  subject: string;
  date: Date;
  /** Without angle brackets: `id@domain`. */
  messageId: string;
  text: string;
  /** Extra headers (names trusted, values encoded). */
  headers?: Record<string, string>;
}

/** Formats a plain-text message; 7bit when the body allows it, quoted-printable otherwise. */
export function formatMessage(mail: MailMessage): string {
  const body = mail.text.replace(/\r?\n/g, '\r\n');
  const sevenBit = body.split('\r\n').every((line) => line.length <= 998 && plainAscii.test(line));
  const headers: [string, string][] = [
    ['From', encodeMailbox(mail.from)],
    ['To', mail.to.map(encodeMailbox).join(', ')],
    ['Subject', encodeHeaderValue(mail.subject)],
    ['Date', rfc5322Date(mail.date)],
    ['Message-ID', `<${mail.messageId}>`],
    ['MIME-Version', '1.0'],
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Transfer-Encoding', sevenBit ? '7bit' : 'quoted-printable'],
    ['Auto-Submitted', 'auto-generated'],
    ...Object.entries(mail.headers ?? {}).map(([k, v]): [string, string] => [k, encodeHeaderValue(v)]),
  ];
  return `${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${sevenBit ? body : quotedPrintable(body)}`;
}
