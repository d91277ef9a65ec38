import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LaunchError, LaunchValidationError } from '@launch/core';
import { afterAll, describe, expect, it } from 'vitest';
import { convertNotebookInDir, ipythonToPython, notebookToScript, parseNotebook, pyRepr, scriptNameFor } from './notebook.js';

const fixtures = fileURLToPath(new URL('../test-support/notebooks/', import.meta.url));
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');
const root = mkdtempSync(join(tmpdir(), 'wandb-notebook-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<LaunchError> {
  try {
    await p;
  } catch (error) {
    if (LaunchError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected the promise to reject');
}

/** A code directory holding the named fixtures. */
function codeDir(...names: string[]): string {
  const dir = mkdtempSync(join(root, 'code-'));
  for (const name of names) writeFileSync(join(dir, name), fixture(name));
  return dir;
}

const TRAIN_SCRIPT = `#!/usr/bin/env python
# coding: utf-8

# # Train
# 
# Fits a *tiny* model.

# In[1]:


get_ipython().run_line_magic('matplotlib', 'inline')
import json
config = {'lr': 0.1}


# In[ ]:


files = get_ipython().getoutput('ls -1')
for i in range(2):
    get_ipython().system('echo "it\\'s $i"')
    print(i)
doc = """
%not_a_magic inside a string
"""
print(json.dumps(config))


print('raw python')

# In[3]:


get_ipython().run_cell_magic('writefile', 'out.txt', 'hello\\n')

`;

describe('notebook conversion (W&B: nbconvert PythonExporter after dropping ! lines)', () => {
  it('converts an nbformat 4 notebook with lines as lists: code cells, markdown as comments, magics, raw cells', () => {
    expect(notebookToScript(parseNotebook(fixture('train.ipynb'), 'train.ipynb'))).toBe(TRAIN_SCRIPT);
  });

  it('takes source as one string, and the script runs under Python', () => {
    const script = notebookToScript(parseNotebook(fixture('plain.ipynb'), 'plain.ipynb'));
    expect(script).toBe("#!/usr/bin/env python\n# coding: utf-8\n\n# In[7]:\n\n\nimport sys\nprint('plain', sys.argv[1:])\n\n\n# Done.\n");
    const path = join(root, 'plain.py');
    writeFileSync(path, script);
    expect(execFileSync('python3', [path, '--lr', '1'], { encoding: 'utf8' })).toBe("plain ['--lr', '1']\n");
  });

  it('makes IPython calls that Python runs when get_ipython exists (the converted script is valid Python)', () => {
    const path = join(root, 'train.py');
    writeFileSync(path, TRAIN_SCRIPT);
    const stub = [
      'import builtins, sys',
      'class Shell:',
      '    def run_line_magic(self, n, a): print("line", n, a)',
      '    def run_cell_magic(self, n, a, b): print("cell", n, a, repr(b))',
      '    def system(self, c): print("system", c)',
      '    def getoutput(self, c): print("getoutput", c); return []',
      'builtins.get_ipython = lambda: Shell()',
      'exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"))',
    ].join('\n');
    const out = execFileSync('python3', ['-c', stub, path], { encoding: 'utf8' });
    expect(out.split('\n')).toEqual([
      'line matplotlib inline',
      'getoutput ls -1',
      `system echo "it's $i"`,
      '0',
      `system echo "it's $i"`,
      '1',
      '{"lr": 0.1}',
      'raw python',
      "cell writefile out.txt 'hello\\n'",
      '',
    ]);
  });

  it('turns IPython syntax into Python as IPython does', () => {
    expect(ipythonToPython('x = 1')).toBe('x = 1\n');
    expect(ipythonToPython('\n\n  %time f()\n  y = 2\n')).toBe("get_ipython().run_line_magic('time', 'f()')\ny = 2\n");
    expect(ipythonToPython('%cd \\\n  /tmp')).toBe("get_ipython().run_line_magic('cd', '   /tmp')\n");
    expect(ipythonToPython('out = !!ls\nx = %who_ls\ny = 5 % 3\n')).toBe(
      "out = get_ipython().getoutput('!ls')\nx = get_ipython().run_line_magic('who_ls', '')\ny = 5 % 3\n",
    );
    expect(ipythonToPython('!!date')).toBe("get_ipython().getoutput('date')\n");
    expect(ipythonToPython('f(1,\n%2)\ns = """\n!not\n"""')).toBe('f(1,\n%2)\ns = """\n!not\n"""\n');
    expect(ipythonToPython('>>> a = 1\n... b = 2')).toBe('a = 1\nb = 2\n');
    expect(ipythonToPython('In [3]: %pwd')).toBe("get_ipython().run_line_magic('pwd', '')\n");
    expect(ipythonToPython('%%bash\necho "hi"\n')).toBe("get_ipython().run_cell_magic('bash', '', 'echo \"hi\"\\n')\n");
    expect(ipythonToPython('obj?')).toBe('obj?\n');
  });

  it("writes Python's repr of strings", () => {
    expect(pyRepr('plain')).toBe("'plain'");
    expect(pyRepr("it's")).toBe('"it\'s"');
    expect(pyRepr(`it's "x"`)).toBe(`'it\\'s "x"'`);
    expect(pyRepr('a\\b\n\t\u0001\u00a0é\u2028😀')).toBe("'a\\\\b\\n\\t\\x01\\xa0é\\u2028😀'");
  });

  it('refuses malformed notebooks naming the file and the field', () => {
    const bad = (text: string) => {
      try {
        parseNotebook(text, 'notebook nb.ipynb of job a/b/c:v0');
      } catch (error) {
        return error as LaunchError;
      }
      throw new Error('expected a refusal');
    };
    const wrongSource = bad(fixture('malformed.ipynb'));
    expect(wrongSource).toBeInstanceOf(LaunchValidationError);
    expect(wrongSource.code).toBe('wandb.notebook_invalid');
    expect(wrongSource.stage).toBe('agent');
    expect(wrongSource.message).toContain('notebook nb.ipynb of job a/b/c:v0 is invalid');
    expect((wrongSource as LaunchValidationError).issues.map((i) => i.path)).toEqual(['cells[1].source']);
    expect(bad('{"cells": [').message).toMatch(/^notebook nb\.ipynb of job a\/b\/c:v0 is not a notebook: not JSON/);
    const v3 = bad('{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}') as LaunchValidationError;
    expect(v3.issues.map((i) => i.path).sort()).toEqual(['cells', 'nbformat']);
    expect(bad('[]').message).toContain('(root)');
  });
});

describe('convertNotebookInDir', () => {
  it('writes the script beside the notebook and returns its path', async () => {
    const dir = codeDir();
    mkdirSync(join(dir, 'nb'));
    writeFileSync(join(dir, 'nb', 'train.ipynb'), fixture('train.ipynb'));
    writeFileSync(join(dir, 'nb', 'train.py'), 'old\n');
    expect(await convertNotebookInDir(dir, 'nb/train.ipynb', 'a/b/c:v0')).toBe('nb/train.py');
    expect(readFileSync(join(dir, 'nb', 'train.py'), 'utf8')).toBe(TRAIN_SCRIPT);
    expect(scriptNameFor('x.ipynb.d/y.ipynb')).toBe('x.ipynb.d/y.py');
  });

  it('never follows a symbolic link out of the code, and refuses a missing notebook or another extension', async () => {
    const outside = mkdtempSync(join(root, 'outside-'));
    writeFileSync(join(outside, 'nb.ipynb'), fixture('plain.ipynb'));
    const dir = codeDir('plain.ipynb');
    symlinkSync(join(outside, 'nb.ipynb'), join(dir, 'linked.ipynb'));
    expect((await rejection(convertNotebookInDir(dir, 'linked.ipynb', 'a/b/c:v0'))).code).toBe('wandb.job_path_escapes');
    symlinkSync(outside, join(dir, 'sub'));
    expect((await rejection(convertNotebookInDir(dir, 'sub/nb.ipynb', 'a/b/c:v0'))).code).toBe('wandb.job_path_escapes');
    expect(existsSync(join(outside, 'nb.py'))).toBe(false);
    // A link where the script goes is replaced, never written through.
    writeFileSync(join(outside, 'victim.py'), 'keep\n');
    symlinkSync(join(outside, 'victim.py'), join(dir, 'plain.py'));
    expect(await convertNotebookInDir(dir, 'plain.ipynb', 'a/b/c:v0')).toBe('plain.py');
    expect(readFileSync(join(outside, 'victim.py'), 'utf8')).toBe('keep\n');
    expect(readFileSync(join(dir, 'plain.py'), 'utf8')).toContain("print('plain', sys.argv[1:])");
    const missing = await rejection(convertNotebookInDir(dir, 'none.ipynb', 'a/b/c:v0'));
    expect(missing.message).toBe("notebook none.ipynb of job a/b/c:v0 is not in the job's code");
    expect((await rejection(convertNotebookInDir(dir, 'plain.py', 'a/b/c:v0'))).message).toContain('not a .ipynb file');
  });

  it('refuses a malformed notebook file naming it', async () => {
    const dir = codeDir('malformed.ipynb');
    const error = await rejection(convertNotebookInDir(dir, 'malformed.ipynb', 'a/b/c:v0'));
    expect(error.code).toBe('wandb.notebook_invalid');
    expect(error.message).toContain('notebook malformed.ipynb of job a/b/c:v0 is invalid');
    expect(error.message).toContain('cells[1].source');
    expect(existsSync(join(dir, 'malformed.py'))).toBe(false);
  });
});
