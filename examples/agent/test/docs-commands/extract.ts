import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One shell command as a doc shows it. */
export interface DocCommand {
  /** The doc's path from the repository root, e.g. `docs/cli.md`. */
  doc: string;
  /** 1-based line of the command's first line in the doc. */
  line: number;
  /** The command: continuations joined, the `$ ` prompt and a trailing `# comment` removed, trimmed. */
  command: string;
}

const SHELL_FENCES = new Set(['sh', 'bash', 'shell', 'console']);

/** The docs whose shell blocks are checked: README.md and docs/*.md (docs/api/ is generated). */
export async function docFiles(repo: string): Promise<string[]> {
  const docs = (await readdir(join(repo, 'docs'), { withFileTypes: true }))
    .filter((e) => e.isFile() && e.name.endsWith('.md'))
    .map((e) => `docs/${e.name}`)
    .sort();
  return ['README.md', ...docs];
}

export async function extractDocCommands(repo: string): Promise<DocCommand[]> {
  const out: DocCommand[] = [];
  for (const doc of await docFiles(repo)) out.push(...commandsOf(doc, await readFile(join(repo, doc), 'utf8')));
  return out;
}

/** The commands of every ```sh / ```bash / ```console block of one Markdown text. */
export function commandsOf(doc: string, markdown: string): DocCommand[] {
  const lines = markdown.split('\n');
  const out: DocCommand[] = [];
  let fence: { marker: string; lang: string } | undefined;
  let pending: { line: number; text: string } | undefined;
  const finish = (entry: { line: number; text: string }) => {
    for (const command of splitAnd(stripComment(entry.text))) out.push({ doc, line: entry.line, command });
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (!fence) {
      const open = /^\s*(`{3,}|~{3,})\s*([\w-]*)/.exec(raw);
      if (open) fence = { marker: open[1]!, lang: open[2]!.toLowerCase() };
      continue;
    }
    if (raw.trim().startsWith(fence.marker) && raw.trim().replace(/[`~]/g, '') === '') {
      if (pending) finish(pending);
      fence = undefined;
      pending = undefined;
      continue;
    }
    if (!SHELL_FENCES.has(fence.lang)) continue;
    let text = raw.trim();
    if (pending) {
      pending.text += ' ' + text;
    } else {
      if (fence.lang === 'console') {
        // In a console block only prompted lines are commands; the rest is the output shown.
        if (!/^\$(\s|$)/.test(text)) continue;
        text = text.replace(/^\$\s*/, '');
      }
      if (text === '' || text.startsWith('#')) continue;
      pending = { line: i + 1, text };
    }
    if (pending.text.endsWith('\\')) {
      pending.text = pending.text.slice(0, -1).trimEnd();
      continue;
    }
    finish(pending);
    pending = undefined;
  }
  // A block left open runs to the end of the file when rendered, so its commands count.
  if (pending) finish(pending);
  return out;
}

/** The indices of `text` outside quotes and not escaped by a backslash, as a shell reads them. */
function* unquoted(text: string): Generator<number> {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') i++;
    } else if (c === '\\') i++;
    else if (c === '"' || c === "'") quote = c;
    else yield i;
  }
}

/** Cuts a `# comment` (a `#` at the start of a word, outside quotes) and trims. */
export function stripComment(text: string): string {
  for (const i of unquoted(text)) {
    if (text[i] === '#' && (i === 0 || /\s/.test(text[i - 1]!))) return text.slice(0, i).trim();
  }
  return text.trim();
}

/** Splits `a && b` (outside quotes) into its commands. */
export function splitAnd(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (const i of unquoted(text)) {
    // `i >= start` skips the second `&` of a pair just split on.
    if (i >= start && text[i] === '&' && text[i + 1] === '&') {
      parts.push(text.slice(start, i));
      start = i + 2;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** Every fenced block of a Markdown text, with its language and body. */
export function fencedBlocks(markdown: string): { lang: string; line: number; body: string }[] {
  const lines = markdown.split('\n');
  const out: { lang: string; line: number; body: string }[] = [];
  let open: { marker: string; lang: string; line: number; body: string[] } | undefined;
  lines.forEach((raw, i) => {
    const t = raw.trim();
    if (!open) {
      const m = /^(`{3,}|~{3,})\s*([\w-]*)/.exec(t);
      if (m) open = { marker: m[1]!, lang: m[2]!.toLowerCase(), line: i + 1, body: [] };
    } else if (t.startsWith(open.marker) && t.replace(/[`~]/g, '') === '') {
      out.push({ lang: open.lang, line: open.line, body: open.body.join('\n') + '\n' });
      open = undefined;
    } else open.body.push(raw);
  });
  return out;
}
