import { describe, expect, it } from 'vitest';
import { migrations as postgres } from '../../src/store/postgres/migrations.js';
import { migrations as sqlite } from '../../src/store/sqlite/migrations.js';

/** The runners apply migrations in list order and skip versions at or below the database's: no gap, no disorder. */
describe.each([
  ['sqlite', sqlite],
  ['postgres', postgres],
])('%s migrations', (_engine, list) => {
  it('are numbered 1, 2, 3… in list order', () => {
    expect(list.map((m) => m.version)).toEqual(list.map((_, i) => i + 1));
  });
});

it('both engines have the same versions with the same names', () => {
  expect(sqlite.map((m) => [m.version, m.name])).toEqual(postgres.map((m) => [m.version, m.name]));
});
