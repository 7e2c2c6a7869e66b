import { readFileSync } from 'node:fs';
import { ConfigError, type Config } from '@gitops-gate/config';
import { createGitHubClient, type GitHubClient } from './client.js';

/** What the GitHub integration runs as, for start-up logs and the `npm start` banner. */
export function gitHubMode(config: Config): 'app' | 'token' | 'off' {
  if (config.GITHUB_APP_ID !== undefined) return 'app';
  return config.GITHUB_TOKEN ? 'token' : 'off';
}

/** The client the configuration asks for: an App, a personal token, or none (reporting and identity checks off). */
export function gitHubClientFromConfig(config: Config): GitHubClient | undefined {
  const mode = gitHubMode(config);
  if (mode === 'off') return undefined;
  if (mode === 'token')
    return createGitHubClient({
      apiUrl: config.GITHUB_API_URL,
      token: config.GITHUB_TOKEN,
      writeMinTimeMs: config.GITHUB_WRITE_INTERVAL_MS,
    });
  const file = config.GITHUB_APP_PRIVATE_KEY_FILE ?? '';
  let privateKey: string;
  try {
    privateKey = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `GITHUB_APP_PRIVATE_KEY_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(privateKey))
    throw new ConfigError(`GITHUB_APP_PRIVATE_KEY_FILE: ${file} is not a PEM private key`);
  return createGitHubClient({
    apiUrl: config.GITHUB_API_URL,
    app: { appId: config.GITHUB_APP_ID!, privateKey, installationId: config.GITHUB_APP_INSTALLATION_ID },
    writeMinTimeMs: config.GITHUB_WRITE_INTERVAL_MS,
  });
}

/**
 * The token git fetches send (only to GIT_CREDENTIAL_HOSTS, as Basic `x-access-token:<token>`): GIT_HTTP_TOKEN when
 * set, else the App installation's token (GITHUB_APP_INSTALLATION_ID), asked for per git command so a renewed token
 * is used as soon as it exists. The first token is fetched now; failing that, fetches go without one and retry.
 */
export async function gitHttpToken(
  config: Config,
  client: GitHubClient | undefined,
  onError: (err: unknown) => void,
): Promise<string | (() => string | undefined) | undefined> {
  if (config.GIT_HTTP_TOKEN) return config.GIT_HTTP_TOKEN;
  if (client?.mode !== 'app' || config.GITHUB_APP_INSTALLATION_ID === undefined) return undefined;
  await client.start().catch(onError);
  return () => client.currentGitToken();
}
