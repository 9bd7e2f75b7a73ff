// The path of an HTTP request target, for routing. Never throws: the request line is client input.

/** origin-form (`/a?b`) or absolute-form (`http://host/a?b`, which RFC 9112 §3.2.2 says a server must accept). */
const TARGET = /^(?:[a-z][a-z0-9+.-]*:\/\/[^/?#]*)?(\/[^?#]*)/i;

/** The path of `target`, or '' when it has none (`*`, `http://[`, garbage): such a request matches no route. */
export function requestPath(target: string | undefined): string {
  // What nearly every request sends, a path with no query or fragment, is its own path.
  if (target !== undefined && target.charCodeAt(0) === 0x2f && target.indexOf('?') === -1 && target.indexOf('#') === -1) return target;
  return TARGET.exec(target ?? '')?.[1] ?? '';
}
