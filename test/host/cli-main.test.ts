import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../core/host/cli/main.ts';

const names = async (argv?: string[]) => (await buildProgram(argv)).commands.map((command) => command.name());

describe('vswin command loading', () => {
  it('loads every command module for help and for unknown words', async () => {
    const all = [
      'doctor',
      'forward',
      'model',
      'checkpoint',
      'data',
      'train',
      'eval',
      'runs',
      'demo',
      'serve',
      'export',
      'cluster',
      'submit',
      'jobs',
    ];
    expect(await names()).toEqual(all);
    expect(await names(['node', 'vswin', '--help'])).toEqual(all);
    expect(await names(['node', 'vswin', 'no-such-command'])).toEqual(all);
  });

  it('loads only the module that owns the command, past global options', async () => {
    expect(await names(['node', 'vswin', '--backend', 'cpu', 'data', 'sample', '--total-frames', '10'])).toEqual(['data']);
    expect(await names(['node', 'vswin', 'eval', '--run', 'x'])).toEqual(['train', 'eval', 'runs', 'demo']);
    expect(await names(['node', 'vswin', '--version'])).toEqual([]);
  });

  it('maps every command to the module that registers it', async () => {
    for (const word of await names()) expect(await names(['node', 'vswin', word])).toContain(word);
  });
});
