import type { ArtifactFileInit, ArtifactStore, ArtifactVersionRecord } from './artifacts.js';

/** `wandb-job.json` as W&B's `create_job` writes it (only the fields W&B's agent reads). */
export interface WandbJobJson {
  source_type: 'repo' | 'artifact' | 'image' | string;
  source: {
    git?: { remote: string; commit: string | null };
    artifact?: string;
    image?: string;
    entrypoint?: string[];
    notebook?: boolean;
    dockerfile?: string;
    build_context?: string;
    base_image?: string;
    args?: string[];
  };
  runtime?: string;
  input_types?: unknown;
  output_types?: unknown;
  _partial?: boolean;
  [key: string]: unknown;
}

export interface PublishJobInit {
  entity: string;
  project: string;
  /** Job name (W&B names them `job-<remote>_<path>` or `job-<image>`; any artifact name works). */
  name: string;
  /** The job's `wandb-job.json`: an object (serialized) or raw text served as it is (a corrupt file). */
  job: WandbJobJson | string;
  /** `requirements.frozen.txt` of the job; default a one-line file; `null` leaves it out. */
  requirements?: string | null;
  /** `diff.patch` (repo jobs): uncommitted changes applied on top of the commit. */
  diffPatch?: string;
  /** More files in the job artifact. */
  extraFiles?: Record<string, ArtifactFileInit>;
  aliases?: string[];
}

export interface PublishCodeInit {
  entity: string;
  project: string;
  /** Collection name; W&B's are `source-<project>-<path>`. */
  name: string;
  files: Record<string, ArtifactFileInit>;
  aliases?: string[];
}

/** The string a job's `source.artifact` names a code artifact with: W&B's `wandb-artifact://_id/<id>`. */
export function artifactIdString(record: ArtifactVersionRecord): string {
  return `wandb-artifact://_id/${record.id}`;
}

/** Publishes a `job` artifact (`wandb-job.json`, `requirements.frozen.txt`, optional `diff.patch`). */
export function publishJob(store: ArtifactStore, init: PublishJobInit): Promise<ArtifactVersionRecord> {
  const files: Record<string, ArtifactFileInit> = {
    'wandb-job.json': typeof init.job === 'string' ? init.job : JSON.stringify(init.job),
    ...(init.requirements === null ? {} : { 'requirements.frozen.txt': init.requirements ?? 'numpy==1.26.4\n' }),
    ...(init.diffPatch === undefined ? {} : { 'diff.patch': init.diffPatch }),
    ...init.extraFiles,
  };
  return store.publish({ entity: init.entity, project: init.project, name: init.name, type: 'job', files, ...(init.aliases ? { aliases: init.aliases } : {}) });
}

/** Publishes a `code` artifact. */
export function publishCode(store: ArtifactStore, init: PublishCodeInit): Promise<ArtifactVersionRecord> {
  return store.publish({
    entity: init.entity,
    project: init.project,
    name: init.name,
    type: 'code',
    files: init.files,
    ...(init.aliases ? { aliases: init.aliases } : {}),
  });
}
