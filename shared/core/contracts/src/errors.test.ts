import { describe, expect, it } from 'vitest';
import { BaseError, hasCode } from './errors.js';

type DemoCode = 'DEMO_A' | 'DEMO_B';
class DemoError extends BaseError<DemoCode> {}

describe('BaseError', () => {
  it('carries a code, the subclass name and the cause', () => {
    const cause = new Error('underlying');
    const err = new DemoError('DEMO_A', 'something named', { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('DEMO_A');
    expect(err.name).toBe('DemoError');
    expect(err.cause).toBe(cause);
    expect(err.stack).toContain('something named');
  });

  it('hasCode narrows only for the listed codes', () => {
    expect(hasCode(new DemoError('DEMO_B', 'x'), ['DEMO_B'])).toBe(true);
    expect(hasCode(new DemoError('DEMO_B', 'x'), ['DEMO_A'])).toBe(false);
    expect(hasCode(Object.assign(new Error('x'), { code: 'DEMO_A' }), ['DEMO_A'])).toBe(false);
  });
});
