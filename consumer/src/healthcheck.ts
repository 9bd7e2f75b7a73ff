// Container healthcheck (Dockerfile HEALTHCHECK, compose healthcheck): exits 0 when GET /health
// on this container answers 200. Runs with the image's own Bun, so the image needs no curl.
const port = process.env.HEALTH_PORT || '8001';

try {
  const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) });
  process.exit(response.ok ? 0 : 1);
} catch {
  process.exit(1);
}
