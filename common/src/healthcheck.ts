// The container healthcheck both images run (Dockerfile HEALTHCHECK, compose healthcheck), with
// the image's own Bun, so no image needs curl: exits 0 when the service's readiness probe answers 200.
// Usage: bun common/src/healthcheck.ts <port variable>... <default port>: the first variable that is
// set names the port (the API's image asks OPS_PORT, then API_PORT: readiness leaves API_PORT with OPS_PORT).
const args = process.argv.slice(2);
const defaultPort = args.at(-1) ?? '';
const port = args.slice(0, -1).map((name) => process.env[name]).find((value) => value !== undefined && value !== '') ?? defaultPort;

try {
  const response = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(3000) });
  process.exit(response.ok ? 0 : 1);
} catch {
  process.exit(1);
}
