// Express 5 with express-rate-limit (its limit raised so the load is never refused) and a
// hand-written check, publishing like every other server here.
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import { announce, closeOnSigterm, port, publishEvent } from './publish.mjs';

const isText = (value) => typeof value === 'string' && value.length > 0;

const app = express();
app.use(rateLimit({ windowMs: 60_000, limit: 1_000_000_000, standardHeaders: 'draft-8', legacyHeaders: false }));
app.use(express.json({ limit: '1mb' }));
app.post('/api/v1/activities', async (req, res) => {
  const { userId, eventType, timestamp, payload } = req.body ?? {};
  const valid = isText(userId) && isText(eventType) && !Number.isNaN(Date.parse(timestamp)) && typeof payload === 'object' && payload !== null;
  if (!valid) return res.status(400).json({ status: 'invalid' });
  const id = await publishEvent(req.body);
  res.status(202).json({ status: 'accepted', id });
});

const server = app.listen(port, '127.0.0.1', () => announce(server.address()));
closeOnSigterm(() => new Promise((done) => server.close(done)));
