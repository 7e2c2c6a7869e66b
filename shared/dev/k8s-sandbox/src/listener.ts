/**
 * One port, two protocols, like the apiserver's single secure port that tests also reach in plain HTTP: a TLS
 * ClientHello starts with 0x16, anything else is plain HTTP. The serving certificate is made for the bound host.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, isIP, type AddressInfo, type Socket } from 'node:net';
import { SandboxError } from './errors.js';
import { createServingCertificate } from './tls.js';

export interface DualListener {
  url: string;
  httpsUrl: string | undefined;
  caPem: string | undefined;
  close(): Promise<void>;
}

export async function listenDualProtocol(
  opts: { host: string; port: number; tls: boolean },
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<DualListener> {
  const { host } = opts;
  const httpServer = createServer(onRequest);
  const tls = opts.tls
    ? createServingCertificate({
        dns: ['localhost', ...(isIP(host) === 0 ? [host] : [])],
        ips: [...new Set(['127.0.0.1', '::1', ...(isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::' ? [host] : [])])],
      })
    : undefined;
  const httpsServer = tls ? createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, onRequest) : undefined;
  const sockets = new Set<Socket>();
  const tcp = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const target = httpsServer && first[0] === 0x16 ? httpsServer : httpServer;
      target.emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', (err) => reject(new SandboxError('LISTEN_FAILED', `cannot listen on ${host}:${opts.port}: ${err.message}`)));
    tcp.listen(opts.port, host, () => resolve());
  });
  const addr = tcp.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${hostForUrl}:${addr.port}`,
    httpsUrl: tls ? `https://${hostForUrl}:${addr.port}` : undefined,
    caPem: tls?.caPem,
    close: () =>
      new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        httpServer.closeAllConnections();
        httpsServer?.closeAllConnections();
        for (const s of sockets) s.destroy();
      }),
  };
}
