import { LaunchError, LaunchValidationError } from '@launch/core';
import { zodIssues } from '@launch/core/internal';
import { constants } from 'node:fs';
import { lstat, open, realpath, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { z } from 'zod';

/** A notebook larger than this is refused (outputs with images make notebooks large, but not this large). */
export const MAX_NOTEBOOK_BYTES = 128 * 1024 * 1024;

/** nbformat's multiline string: one string, or a list of lines that are joined as they are (nbformat's `rejoin_lines`). */
const multiline = z.union([z.string(), z.array(z.string())]);

const cell = z
  .object({
    cell_type: z.string(),
    source: multiline,
    execution_count: z.number().int().nonnegative().nullish(),
    metadata: z.object({ raw_mimetype: z.string().optional() }).passthrough().optional(),
  })
  .passthrough();

/** The part of an nbformat 4 notebook the conversion reads; everything else passes through unread. */
const notebookSchema = z
  .object({
    nbformat: z.literal(4),
    nbformat_minor: z.number().int().nonnegative(),
    cells: z.array(cell),
  })
  .passthrough();

type Notebook = z.output<typeof notebookSchema>;

/** The entry point's script after conversion: W&B's `fname.replace(".ipynb", ".py")`, applied to the extension only. */
export function scriptNameFor(notebook: string): string {
  return notebook.replace(/\.ipynb$/, '.py');
}

/**
 * Parses an nbformat 4 notebook (`.ipynb` JSON). Hostile input is refused with a LaunchValidationError naming
 * `what` and the field (`cells.3.source`), stage `agent`, code `wandb.notebook_invalid`.
 */
export function parseNotebook(text: string, what: string): Notebook {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new LaunchError({
      code: 'wandb.notebook_invalid',
      stage: 'agent',
      message: `${what} is not a notebook: not JSON (${(error as Error).message})`,
      hint: 'the entry point of a notebook job names a Jupyter notebook (.ipynb); log the job again from a saved notebook',
      cause: error,
    });
  }
  const parsed = notebookSchema.safeParse(raw);
  if (!parsed.success) {
    throw new LaunchValidationError({ code: 'wandb.notebook_invalid', stage: 'agent', subject: what, issues: zodIssues(parsed.error, raw) });
  }
  return parsed.data;
}

const joinSource = (source: string | string[]): string => (typeof source === 'string' ? source : source.join(''));

/**
 * The Python script W&B's agent makes of a notebook (`convert_jupyter_notebook_to_script`): in code cells, lines
 * starting with `!` are dropped (W&B's own step), then nbconvert's `PythonExporter` writes the script: its
 * header, each code cell under `# In[n]:` with IPython syntax turned into Python by IPython's transforms
 * (`%magic` → `get_ipython().run_line_magic(…)`, see {@link ipythonToPython}), markdown cells as `# ` comments,
 * raw cells without a MIME type (or `text/x-python`) as they are; other cells are left out.
 */
export function notebookToScript(notebook: Notebook): string {
  let out = '#!/usr/bin/env python\n# coding: utf-8\n';
  for (const c of notebook.cells) {
    const source = joinSource(c.source);
    if (c.cell_type === 'code') {
      const kept = source
        .split('\n')
        .filter((line) => !line.startsWith('!'))
        .join('\n');
      out += `\n# In[${c.execution_count ? c.execution_count : ' '}]:\n\n\n${ipythonToPython(kept)}\n`;
    } else if (c.cell_type === 'markdown') {
      out += `\n# ${source.split('\n').join('\n# ')}\n`;
    } else if (c.cell_type === 'raw') {
      const mime = (c.metadata?.raw_mimetype ?? '').toLowerCase();
      if (mime === '' || mime === 'text/x-python') out += `\n${source}\n`;
    }
  }
  return out;
}

/**
 * Converts the notebook `notebookPath` (relative, inside `codeDir`) to a script beside it, as W&B's agent does
 * before running a notebook job, and returns the script's relative path. Refuses a notebook or script that is
 * not a regular file inside `codeDir` (a symbolic link in a repository must not lead the write elsewhere).
 */
export async function convertNotebookInDir(codeDir: string, notebookPath: string, job: string): Promise<string> {
  const what = `notebook ${notebookPath} of job ${job}`;
  if (!notebookPath.endsWith('.ipynb')) {
    throw new LaunchError({
      code: 'wandb.job_invalid',
      stage: 'agent',
      message: `job ${job} is a notebook job (source.notebook), but its entry point names ${JSON.stringify(notebookPath)}, not a .ipynb file`,
      hint: 'log the job again from the notebook',
    });
  }
  const scriptPath = scriptNameFor(notebookPath);
  const root = await realpath(codeDir);
  const source = join(codeDir, notebookPath);
  const target = join(codeDir, scriptPath);
  const outside = (p: string) => {
    const rel = relative(root, p);
    return rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || rel.startsWith(sep);
  };
  const parentReal = await realpath(dirname(source)).catch(() => undefined);
  const info = await lstat(source).catch(() => undefined);
  if (!info || !parentReal) {
    throw new LaunchError({
      code: 'wandb.job_invalid',
      stage: 'agent',
      message: `${what} is not in the job's code`,
      hint: 'the entry point of a notebook job names the notebook relative to its code; log the job again',
    });
  }
  if (outside(join(parentReal, 'x')) || !info.isFile()) {
    throw new LaunchError({
      code: 'wandb.job_path_escapes',
      stage: 'agent',
      message: `${what} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'} or lies outside the code directory`,
    });
  }
  if (info.size > MAX_NOTEBOOK_BYTES) {
    throw new LaunchError({
      code: 'wandb.notebook_invalid',
      stage: 'agent',
      message: `${what} is ${info.size} bytes, more than the ${MAX_NOTEBOOK_BYTES} read`,
    });
  }
  // O_NOFOLLOW: the file checked above is the one read, even if it were swapped for a link meanwhile.
  const handle = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW);
  let text: string;
  try {
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  const script = notebookToScript(parseNotebook(text, what));
  // As W&B does, the script replaces a file of that name; a link there is removed, never written through.
  const existing = await lstat(target).catch(() => undefined);
  if (existing?.isDirectory()) {
    throw new LaunchError({
      code: 'wandb.job_invalid',
      stage: 'agent',
      message: `job ${job}: the script for ${notebookPath} would be ${scriptPath}, which is a directory in the code`,
    });
  }
  if (existing) await unlink(target);
  await writeFile(target, script, { flag: 'wx' });
  return scriptPath;
}

// ---------------------------------------------------------------------------------------------------------------
// IPython syntax to Python: what nbconvert's `ipython2python` filter does through IPython's TransformerManager.

/** Python's `repr()` of a string (what IPython's `%r` puts in the generated calls). */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch)) {
      if (cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + quote;
}

/** IPython's `PromptStripper`: strips `>>> `/`... ` or `In [n]: ` prompts when the cell starts with them. */
function stripPrompts(lines: string[], prompt: RegExp, initial: RegExp): string[] {
  if (lines.length === 0) return lines;
  if (initial.test(lines[0]!) || (lines.length > 1 && prompt.test(lines[1]!))) return lines.map((l) => l.replace(prompt, ''));
  return lines;
}

/** The line's text without its line break. */
const body = (line: string) => line.replace(/\r?\n$/, '');

/** IPython's `assemble_continued_line`: backslash-continued lines joined with spaces, trailing space removed. */
function assemble(lines: string[], start: number, col: number, end: number): string {
  const parts = [lines[start]!.slice(col), ...lines.slice(start + 1, end + 1)];
  return [...parts.slice(0, -1).map((p) => p.trimEnd().slice(0, -1)), parts.at(-1)!.trimEnd()].join(' ');
}

/** IPython's `find_end_of_continued_line`: the last line of a backslash continuation starting at `start`. */
function endOfContinued(lines: string[], start: number): number {
  let end = start;
  while (end < lines.length - 1 && body(lines[end]!).endsWith('\\')) end++;
  return end;
}

/**
 * Which lines start a Python statement (outside strings, brackets and backslash continuations), so an escape
 * character there is IPython syntax. A small scanner standing in for Python's tokenizer.
 */
function statementStarts(lines: string[]): boolean[] {
  const starts: boolean[] = [];
  let triple: string | null = null;
  let depth = 0;
  let continued = false;
  for (const line of lines) {
    starts.push(triple === null && depth === 0 && !continued);
    const text = body(line);
    let i = 0;
    continued = false;
    while (i < text.length) {
      if (triple !== null) {
        if (text[i] === '\\') i += 2;
        else if (text.startsWith(triple, i)) {
          i += 3;
          triple = null;
        } else i++;
        continue;
      }
      const ch = text[i]!;
      if (ch === '#') break;
      if (ch === '"' || ch === "'") {
        if (text.startsWith(ch.repeat(3), i)) {
          triple = ch.repeat(3);
          i += 3;
          continue;
        }
        i++;
        while (i < text.length && text[i] !== ch) i += text[i] === '\\' ? 2 : 1;
        i++;
        continue;
      }
      if ('([{'.includes(ch)) depth++;
      else if (')]}'.includes(ch)) depth = Math.max(0, depth - 1);
      i++;
    }
    if (triple === null && text.endsWith('\\')) continued = true;
  }
  return starts;
}

/**
 * nbconvert's `ipython2python` with IPython present (IPython's `TransformerManager.transform_cell`): leading blank
 * lines and a common leading indent removed, `>>>` and `In [n]:` prompts stripped, a cell magic (`%%name args`
 * on the first line) made `get_ipython().run_cell_magic(name, args, body)`, and on each line that starts a
 * statement `%magic args` → `get_ipython().run_line_magic(…)`, `!cmd` → `get_ipython().system(…)`, `!!cmd` →
 * `get_ipython().getoutput(…)`, `x = %magic` and `x = !cmd` likewise. Help (`?`) and auto-call (`,` `;` `/`)
 * escapes are left as they are. The result ends with a line break.
 */
export function ipythonToPython(cell: string): string {
  const source = cell.endsWith('\n') ? cell : `${cell}\n`;
  let lines: string[] = source.match(/[^\n]*\n/g) ?? [];
  // leading_empty_lines
  const first = lines.findIndex((l) => l.trim() !== '');
  if (first > 0) lines = lines.slice(first);
  // leading_indent
  const indent = /^[ \t]+/.exec(lines[0] ?? '')?.[0];
  if (indent) lines = lines.map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l));
  lines = stripPrompts(lines, /^(>>>|\.\.\.)( |$)/, /^>>>( |$)/);
  lines = stripPrompts(lines, /^(In \[\d+\]: |\s*\.{3,}: ?)/, /^(In \[\d+\]: |\s*\.{3,}: ?)/);
  // cell_magic
  if (lines.length > 0 && lines[0]!.startsWith('%%') && !/^%%\w+\?/.test(lines[0]!)) {
    const head = body(lines[0]!).slice(2).trimEnd();
    const space = head.indexOf(' ');
    const [name, args] = space < 0 ? [head, ''] : [head.slice(0, space), head.slice(space + 1)];
    return `get_ipython().run_cell_magic(${pyRepr(name)}, ${pyRepr(args)}, ${pyRepr(lines.slice(1).join(''))})\n`;
  }
  const starts = statementStarts(lines);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!starts[i]) {
      out.push(line);
      continue;
    }
    const lead = /^[ \t]*/.exec(line)![0];
    const rest = line.slice(lead.length);
    const assign = /^([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*)([%!])/.exec(rest);
    let col: number;
    let call: (content: string) => string;
    if (assign && !(assign[2] === '%' && !/^[A-Za-z_]/.test(rest.slice(assign[0].length)))) {
      col = lead.length + assign[1]!.length;
      call = assign[2] === '%' ? (content) => magicCall(content.slice(1)) : (content) => `get_ipython().getoutput(${pyRepr(content.slice(1))})`;
    } else if (rest.startsWith('!!')) {
      col = lead.length;
      call = (content) => `get_ipython().getoutput(${pyRepr(content.slice(2))})`;
    } else if (rest.startsWith('!')) {
      col = lead.length;
      call = (content) => `get_ipython().system(${pyRepr(content.slice(1))})`;
    } else if (rest.startsWith('%')) {
      col = lead.length;
      call = (content) => magicCall(content.slice(1));
    } else {
      out.push(line);
      continue;
    }
    const end = endOfContinued(lines, i);
    out.push(`${line.slice(0, col)}${call(assemble(lines, i, col, end))}\n`);
    i = end;
  }
  return out.join('');
}

function magicCall(content: string): string {
  const space = content.indexOf(' ');
  const [name, args] = space < 0 ? [content, ''] : [content.slice(0, space), content.slice(space + 1)];
  return `get_ipython().run_line_magic(${pyRepr(name)}, ${pyRepr(args)})`;
}
