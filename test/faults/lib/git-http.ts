/**
 * A real smart-HTTP git server for fault tests: Node's http server in front of `git http-backend` (CGI), so the
 * services fetch over the same protocol they use against GitHub. Each client role gets its own path prefix
 * (`/<tag>/…`), which tells the test which process is fetching; `hold(tag)` parks that role's pack requests
 * (`POST …/git-upload-pack`: the moment a fetch is in flight) until `release()`, so a test can catch a process in the
 * middle of a job deterministically instead of racing it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { serveGitHttpBackend } from '@gitops-gate/github-emulator';

export interface HeldRequest {
  tag: string;
  path: string;
  at: number;
}

export interface GitHttpServer {
  /** `http://127.0.0.1:<port>/<tag>` — append the repository path under projectRoot. */
  urlFor(tag: string): string;
  /** Pack requests of these tags wait until release(); `*` matches every tag. */
  hold(...tags: string[]): void;
  /** Stops holding; parked requests go on (or are cut off with `drop`, like a peer that died). */
  release(opts?: { drop?: boolean }): void;
  held(): HeldRequest[];
  /** Resolves with the first parked request, or throws after timeoutMs. */
  waitForHeld(timeoutMs: number): Promise<HeldRequest>;
  /** Every request served so far, by tag, with the Authorization header it carried (credential-scope tests). */
  log(): { tag: string; method: string; path: string; status: number; auth?: string }[];
  close(): Promise<void>;
}

export async function startGitHttpServer(projectRoot: string): Promise<GitHttpServer> {
  let holding = new Set<string>();
  const parked: { req: HeldRequest; go: () => void; drop: () => void }[] = [];
  const served: { tag: string; method: string; path: string; status: number; auth?: string }[] = [];

  function serveCgi(req: IncomingMessage, res: ServerResponse, tag: string, pathInfo: string, query: string): void {
    serveGitHttpBackend(projectRoot, req, res, pathInfo, query, (status) => {
      served.push({ tag, method: req.method ?? 'GET', path: pathInfo, status, auth: req.headers.authorization });
    });
  }

  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://git.invalid');
    const m = /^\/([A-Za-z0-9_-]+)(\/.*)$/.exec(u.pathname);
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const tag = m[1]!;
    const pathInfo = m[2]!;
    const isPack = req.method === 'POST' && pathInfo.endsWith('/git-upload-pack');
    if (isPack && (holding.has(tag) || holding.has('*'))) {
      // Pause the body: git http-backend reads it once we let the request go.
      req.pause();
      const entry = {
        req: { tag, path: pathInfo, at: Date.now() },
        go: () => {
          req.resume();
          serveCgi(req, res, tag, pathInfo, u.search.slice(1));
        },
        drop: () => {
          req.socket.destroy();
        },
      };
      parked.push(entry);
      return;
    }
    serveCgi(req, res, tag, pathInfo, u.search.slice(1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  return {
    urlFor: (tag) => `http://127.0.0.1:${port}/${tag}`,
    hold(...tags) {
      for (const t of tags) holding.add(t);
    },
    release(opts = {}) {
      holding = new Set();
      for (const p of parked.splice(0)) (opts.drop ? p.drop : p.go)();
    },
    held: () => parked.map((p) => p.req),
    async waitForHeld(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const first = parked[0];
        if (first) return first.req;
        await sleep(10);
      }
      throw new Error(`no git fetch reached the server within ${timeoutMs} ms`);
    },
    log: () => served.map((s) => ({ ...s })),
    close() {
      for (const p of parked.splice(0)) p.drop();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
