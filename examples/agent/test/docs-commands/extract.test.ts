import { describe, expect, it } from 'vitest';
import { commandsOf, fencedBlocks, splitAnd, stripComment } from './extract.js';

const md = (...lines: string[]) => lines.join('\n');

describe('commandsOf', () => {
  it('takes sh, bash and console blocks only, with their line numbers', () => {
    const text = md('# t', '```sh', 'a 1', '```', '```yaml', 'b: 2', '```', '```bash', 'c 3', '```', '```', 'plain', '```', '```ts', 'd()', '```');
    expect(commandsOf('x.md', text)).toEqual([
      { doc: 'x.md', line: 3, command: 'a 1' },
      { doc: 'x.md', line: 9, command: 'c 3' },
    ]);
  });

  it('joins \\ continuations, drops comments and blank lines, splits &&', () => {
    const text = md('```sh', '# a whole-line comment', '', 'launch-agent enqueue \\', '  -q gpu \\', '  -- python x.py   # why', 'a && b && c', '```');
    expect(commandsOf('x.md', text).map((c) => [c.line, c.command])).toEqual([
      [4, 'launch-agent enqueue -q gpu -- python x.py'],
      [7, 'a'],
      [7, 'b'],
      [7, 'c'],
    ]);
  });

  it('in console blocks, takes the $-prompted lines (and their continuations) and leaves the output out', () => {
    const text = md('```console', '$ launch-agent status', 'ID  QUEUE', 'abc default', '$ launch-agent enqueue \\', '    -- true', '0mx5', '```');
    expect(commandsOf('x.md', text).map((c) => c.command)).toEqual(['launch-agent status', 'launch-agent enqueue -- true']);
  });

  it('counts a block left open to the end, as Markdown renders it', () => {
    expect(commandsOf('x.md', md('```sh', 'a', 'b \\')).map((c) => c.command)).toEqual(['a', 'b']);
  });
});

describe('stripComment and splitAnd', () => {
  it('keeps # and && inside quotes and # inside a word', () => {
    expect(stripComment(`echo "a # b" 'c # d' e#f # g`)).toBe(`echo "a # b" 'c # d' e#f`);
    expect(stripComment('export WANDB_API_KEY=…          # or `wandb login` (~/.netrc)')).toBe('export WANDB_API_KEY=…');
    expect(splitAnd(`sh -c 'a && b' && c`)).toEqual([`sh -c 'a && b'`, 'c']);
  });
});

describe('fencedBlocks', () => {
  it('returns each block with its language and body', () => {
    expect(fencedBlocks(md('x', '```yaml', 'a: 1', 'b: 2', '```', '````sh', 'c', '````'))).toEqual([
      { lang: 'yaml', line: 2, body: 'a: 1\nb: 2\n' },
      { lang: 'sh', line: 6, body: 'c\n' },
    ]);
  });
});
