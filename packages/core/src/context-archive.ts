import { stat } from 'node:fs/promises';
import { LaunchError } from './errors.js';
import { describeValue } from './validation.js';

/**
 * The size of the build-context archive a context store is about to upload, or the error every store
 * gives when there is none (`context_store.no_file`, stage `build`): a missing path, or a directory
 * where an archive was expected. `where` names the destination (`s3://bucket/prefix`).
 */
export async function contextArchiveSize(localPath: string, where: string): Promise<number> {
  let reason: string;
  try {
    const info = await stat(localPath);
    if (info.isFile()) return info.size;
    reason = 'not a regular file (pack a directory into a .tgz first)';
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'error';
    reason = code === 'ENOENT' ? 'no such file' : code;
  }
  throw new LaunchError({
    code: 'context_store.no_file',
    stage: 'build',
    category: 'ContextUpload',
    message: `cannot upload ${describeValue(localPath, 200)} to ${where}: ${reason}`,
    hint: 'the build context archive must exist before it is uploaded',
  });
}
