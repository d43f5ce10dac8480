/** Credentials inside URLs (`amqp://user:pass@host`): found once, for masking and for logs. */
const USERINFO = /\/\/([^:/@]+):([^@]*)@/;

/** The password of a URL, if it has one. */
export function urlPassword(url: string): string | undefined {
  const m = USERINFO.exec(url);
  return m?.[2] ? decodeURIComponent(m[2]) : undefined;
}

/** `amqp://user:pass@host` -> `amqp://user:***@host`: never log a password. */
export function redactUrl(url: string): string {
  return url.replace(USERINFO, '//$1:***@');
}
