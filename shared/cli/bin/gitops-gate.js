#!/usr/bin/env node
// Committed as plain JavaScript so the bin link works before the first build; the CLI itself is compiled TypeScript.
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
