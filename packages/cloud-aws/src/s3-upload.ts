import { open } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { loadS3 } from './sdk.js';

const MAX_PARTS = 10_000;

export interface StreamedUploadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  path: string;
  size: number;
  partSize: number;
  queueSize: number;
  signal?: AbortSignal;
}

/**
 * Uploads a file to S3 in parts read straight from the file into a fixed set of buffers, one per
 * concurrent part, reused from part to part: the memory an upload holds is `queueSize × partSize`
 * and it allocates nothing per part. (lib-storage's `Upload` concatenates stream chunks into a new
 * buffer per part; the garbage that leaves behind let RSS grow past 64 MiB on a 1 GiB file, as
 * bench/s3-upload.ts measured.) A file of at most one part is one `PutObject`; a larger one is a
 * multipart upload with CRC32 part checksums, aborted when any part fails.
 */
export async function uploadFileInParts(options: StreamedUploadOptions): Promise<void> {
  const { client, bucket, key, size, queueSize, signal } = options;
  const partSize = Math.max(options.partSize, Math.ceil(size / MAX_PARTS));
  const { PutObjectCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, AbortMultipartUploadCommand } = await loadS3();
  const file = await open(options.path, 'r');
  try {
    if (size <= partSize) {
      const body = Buffer.allocUnsafe(size);
      const { bytesRead } = await file.read(body, 0, size, 0);
      if (bytesRead !== size) throw new Error(`${options.path} changed while it was uploaded (read ${bytesRead} of ${size} bytes)`);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: size, ContentType: 'application/octet-stream' }), {
        abortSignal: signal,
      });
      return;
    }
    const created = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: 'application/octet-stream', ChecksumAlgorithm: 'CRC32' }),
      { abortSignal: signal },
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw Object.assign(new Error('CreateMultipartUpload answered without an UploadId'), { name: 'InvalidResponse' });
    const partCount = Math.ceil(size / partSize);
    const parts: Array<{ PartNumber: number; ETag?: string; ChecksumCRC32?: string }> = [];
    const stop = new AbortController();
    const onAbort = () => stop.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let next = 1;
    let failure: unknown;
    const worker = async () => {
      const buffer = Buffer.allocUnsafe(partSize);
      while (failure === undefined && !stop.signal.aborted) {
        const partNumber = next++;
        if (partNumber > partCount) return;
        const offset = (partNumber - 1) * partSize;
        const length = Math.min(partSize, size - offset);
        const { bytesRead } = await file.read(buffer, 0, length, offset);
        if (bytesRead !== length) throw new Error(`${options.path} changed while it was uploaded (part ${partNumber}: read ${bytesRead} of ${length} bytes)`);
        const out = await client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: buffer.subarray(0, length),
            ContentLength: length,
          }),
          { abortSignal: stop.signal },
        );
        parts.push({ PartNumber: partNumber, ETag: out.ETag, ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}) });
      }
    };
    try {
      await Promise.all(
        Array.from({ length: Math.min(queueSize, partCount) }, () =>
          worker().catch((error: unknown) => {
            failure ??= error;
            stop.abort();
          }),
        ),
      );
      if (failure !== undefined) throw failure;
      if (stop.signal.aborted) throw Object.assign(new Error('upload aborted'), { name: 'AbortError' });
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), {
        abortSignal: signal,
      });
    } catch (error) {
      // Best effort: parts of an unfinished upload cost storage until aborted.
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => {});
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    await file.close();
  }
}
