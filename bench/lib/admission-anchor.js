// The floor for bench/admission.js: the least an HTTPS admission webhook does — node:https with keep-alive, read the
// body, JSON.parse it, answer allowed with the request's uid. No Fastify, no decision, no Redis. The webhook's CPU per
// review minus this one's is what gitops-gate adds; the rest is Node's TLS and HTTP.
import { createServer } from 'node:https';

const { CERT, KEY } = process.env;
let reviews = 0;
let lat = [];
const server = createServer({ cert: CERT, key: KEY, keepAliveTimeout: 65_000 }, (req, res) => {
  const t0 = performance.now();
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const body = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: review.request.uid, allowed: true },
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    reviews += 1;
    res.once('finish', () => lat.push(performance.now() - t0));
  });
});
server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }));
process.on('message', (m) => {
  if (m === 'cpu') {
    process.send?.({ cpu: process.cpuUsage(), reviews, lat });
    lat = [];
  }
  if (m === 'stop') server.close(() => process.exit(0)) && server.closeAllConnections();
});
