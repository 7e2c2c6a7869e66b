// The bare anchor for the receiver benchmark: the least a webhook endpoint can do and still be correct — check the
// HMAC with @octokit/webhooks-methods, parse the JSON, and durably queue one job keyed by the delivery id (BullMQ on the
// same Redis). No metrics, no dedupe key, no payload validation, no queue-depth valve.
//   PORT=… REDIS_URL=… SECRET=… PREFIX=… node bench/anchor.js
import Fastify from 'fastify';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { verify } from '@octokit/webhooks-methods';

const { PORT, REDIS_URL, SECRET, PREFIX } = process.env;
const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const queue = new Queue('verify', { connection, prefix: PREFIX });
const app = Fastify({ logger: false });
app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));

app.post('/webhooks/github', async (req, reply) => {
  const sig = req.headers['x-hub-signature-256'];
  if (typeof sig !== 'string' || !(await verify(SECRET, req.body, sig))) return reply.code(401).send({ error: 'bad signature' });
  const payload = JSON.parse(req.body);
  const id = String(req.headers['x-github-delivery']);
  await queue.add('push', { deliveryId: id, ref: payload.ref, sha: payload.after, repo: payload.repository?.clone_url }, { jobId: id });
  return reply.code(202).send({ queued: true });
});
app.get('/healthz', async () => ({ ok: true }));

await app.listen({ host: '127.0.0.1', port: Number(PORT) });
const stop = async () => {
  await app.close();
  await queue.close();
  connection.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
