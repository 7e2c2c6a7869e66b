/**
 * GitHub's git smart HTTP, as far as gitops-gate meets it: `git http-backend` behind a server that, like GitHub for a
 * private repository, serves only requests carrying a live installation token as Basic `x-access-token:<token>`
 * (anything else: 401). Every request is logged with its Authorization header, so tests can show where a token went.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface GitHost {
  /** `http://127.0.0.1:<port>` — repositories are `<url>/<owner>/<name>.git` under projectRoot. */
  url: string;
  log: { method: string; path: string; status: number; auth?: string }[];
  close(): Promise<void>;
}

/** The token of a Basic `x-access-token:<token>` header (GitHub also accepts any user name with a token). */
export function basicToken(header: string | undefined): string | undefined {
  const m = /^basic (.+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? undefined : decoded.slice(i + 1);
}

/**
 * One request through `git http-backend` (CGI): the request body is piped in, the CGI headers become the response's.
 * `onStatus` gets the status once known (500 when the CGI ended without headers). Also used by the fault tests' server.
 */
export function serveGitHttpBackend(
  projectRoot: string,
  req: IncomingMessage,
  res: ServerResponse,
  pathInfo: string,
  query: string,
  onStatus: (status: number) => void,
): void {
  const cgi = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: pathInfo,
      QUERY_STRING: query,
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
      ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
      ...(req.headers['git-protocol']
        ? { GIT_PROTOCOL: String(req.headers['git-protocol']), HTTP_GIT_PROTOCOL: String(req.headers['git-protocol']) }
        : {}),
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  req.pipe(cgi.stdin);
  cgi.stdin.on('error', () => undefined);
  let head = Buffer.alloc(0);
  let status = 0;
  cgi.stdout.on('data', (chunk: Buffer) => {
    if (status) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const end = crlf >= 0 ? crlf : head.indexOf('\n\n');
    if (end < 0) return;
    status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      const name = line.slice(0, i).trim();
      const value = line.slice(i + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
      else res.setHeader(name, value);
    }
    res.statusCode = status;
    onStatus(status);
    res.write(head.subarray(end + (crlf >= 0 ? 4 : 2)));
  });
  cgi.on('close', () => {
    if (!status) {
      res.statusCode = status = 500;
      onStatus(status);
    }
    res.end();
  });
  res.on('close', () => {
    if (cgi.exitCode === null) cgi.kill('SIGKILL');
  });
}

export async function startGitHost(opts: {
  projectRoot: string;
  tokenValid: (token: string) => boolean;
  anonymous?: boolean;
}): Promise<GitHost> {
  const log: GitHost['log'] = [];
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://git.invalid');
    const entry = { method: req.method ?? 'GET', path: u.pathname, status: 0, auth: req.headers.authorization };
    log.push(entry);
    const token = basicToken(req.headers.authorization);
    if (!opts.anonymous && (!token || !opts.tokenValid(token))) {
      entry.status = 401;
      res.writeHead(401, { 'www-authenticate': 'Basic realm="GitHub"' }).end('Invalid username or token.\n');
      return;
    }
    serveGitHttpBackend(opts.projectRoot, req, res, u.pathname, u.search.slice(1), (s) => {
      entry.status = s;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
