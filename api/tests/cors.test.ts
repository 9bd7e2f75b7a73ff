// CORS on the ingestion routes: preflights, the headers on every answer, refused origins.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { postJson, startApp, VALID_EVENT } from './helpers.ts';

const SHOP = 'https://shop.example';

function preflight(url: string, origin: string): Promise<Response> {
  return fetch(`${url}/api/v1/activities/batch`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, content-encoding' },
  });
}

describe('CORS', () => {
  test('answers a preflight 204 with the allowed methods, headers and max age, and never counts it', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1' } });
    for (let i = 0; i < 3; i++) {
      const answer = await preflight(app.url, SHOP);
      assert.equal(answer.status, 204);
      assert.equal(answer.headers.get('access-control-allow-origin'), '*');
      assert.equal(answer.headers.get('access-control-allow-methods'), 'POST, OPTIONS');
      assert.equal(answer.headers.get('access-control-allow-headers'), 'Content-Type, Content-Encoding, Authorization, X-Write-Key');
      assert.equal(answer.headers.get('access-control-max-age'), '7200');
      assert.equal(answer.headers.get('ratelimit-limit'), null, 'not rate limited');
    }
    assert.equal((await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { origin: SHOP })).status, 202, 'the preflights left the one request');
  });

  test('puts Allow-Origin and Expose-Headers (Retry-After, RateLimit-*) on every ingestion answer to a request with Origin, errors included; none without Origin', async (t) => {
    const app = await startApp(t, { env: { RATE_LIMIT_MAX_REQUESTS: '1' } });
    for (const status of [202, 429]) {
      const answer = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { origin: SHOP });
      assert.equal(answer.status, status);
      assert.equal(answer.headers.get('access-control-allow-origin'), '*');
      assert.equal(answer.headers.get('access-control-expose-headers'), 'Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy');
    }
    assert.equal((await fetch(`${app.url}/health`, { headers: { origin: SHOP } })).headers.get('access-control-allow-origin'), null, 'only the ingestion routes');
    const plain = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(plain.headers.get('access-control-allow-origin'), null, 'no Origin, not a CORS request: no CORS headers');
    assert.equal(plain.headers.get('access-control-expose-headers'), null);
  });

  test('with CORS_ALLOWED_ORIGINS, echoes an allowed origin with Vary: Origin, and answers another 403 without publishing', async (t) => {
    const app = await startApp(t, { env: { CORS_ALLOWED_ORIGINS: `${SHOP},http://localhost:8080` } });
    const allowed = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { origin: SHOP });
    assert.equal(allowed.status, 202);
    assert.equal(allowed.headers.get('access-control-allow-origin'), SHOP);
    assert.equal(allowed.headers.get('vary'), 'Origin');
    const refused = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT, { origin: 'https://evil.example' });
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { type: string }).type, '/problems/origin-not-allowed');
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    assert.equal((await preflight(app.url, 'https://evil.example')).status, 403);
    assert.equal(app.publisher.published.length, 1);
    const plain = await postJson(`${app.url}/api/v1/activities`, VALID_EVENT);
    assert.equal(plain.status, 202, 'no Origin (curl, a server) is not a CORS request');
    assert.equal(plain.headers.get('vary'), 'Origin');
  });
});
