// The container healthcheck both images run (Dockerfile HEALTHCHECK, compose healthcheck), with
// the image's own Bun, so no image needs curl: exits 0 when the service's readiness probe answers 200.
// Usage: bun common/src/healthcheck.ts <port variable> <default port>
const [portVariable = '', defaultPort = ''] = process.argv.slice(2);
const port = process.env[portVariable] || defaultPort;

try {
  const response = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(3000) });
  process.exit(response.ok ? 0 : 1);
} catch {
  process.exit(1);
}
