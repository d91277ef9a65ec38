import { closest } from '@launch/core/internal';

/**
 * Google Cloud regions, a static list (Google's "Regions and zones" page as of mid-2025: 43 regions).
 * A region opened after that is refused by `verify` until this list is updated; `allowUnknownRegion`
 * turns the refusal off.
 */
export const GCP_REGIONS: readonly string[] = Object.freeze([
  'africa-south1',
  'asia-east1',
  'asia-east2',
  'asia-northeast1',
  'asia-northeast2',
  'asia-northeast3',
  'asia-south1',
  'asia-south2',
  'asia-southeast1',
  'asia-southeast2',
  'asia-southeast3',
  'australia-southeast1',
  'australia-southeast2',
  'europe-central2',
  'europe-north1',
  'europe-north2',
  'europe-southwest1',
  'europe-west1',
  'europe-west2',
  'europe-west3',
  'europe-west4',
  'europe-west6',
  'europe-west8',
  'europe-west9',
  'europe-west10',
  'europe-west12',
  'me-central1',
  'me-central2',
  'me-west1',
  'northamerica-northeast1',
  'northamerica-northeast2',
  'northamerica-south1',
  'southamerica-east1',
  'southamerica-west1',
  'us-central1',
  'us-east1',
  'us-east4',
  'us-east5',
  'us-south1',
  'us-west1',
  'us-west2',
  'us-west3',
  'us-west4',
]);

/** Artifact Registry multi-region locations (`us-docker.pkg.dev`, …), valid in a registry host but not as an environment region. */
export const GAR_MULTI_REGIONS: readonly string[] = Object.freeze(['us', 'europe', 'asia']);

/** The shape of a region name: `us-central1`, `europe-west10`. */
export const GCP_REGION_PATTERN = /^[a-z]+-[a-z]+\d{1,2}$/;

/** Whether `region` is in {@link GCP_REGIONS}. */
export function isGcpRegion(region: string): boolean {
  return GCP_REGIONS.includes(region);
}

/**
 * The known region nearest to `region` by edit distance, for a "did you mean" (`us-central-1` →
 * `us-central1`, `europe-west` → `europe-west1`); undefined when nothing is close.
 */
export function suggestGcpRegion(region: string, candidates: readonly string[] = GCP_REGIONS): string | undefined {
  const lower = region.trim().toLowerCase();
  if (candidates.includes(lower)) return lower;
  // An AWS-style trailing "-1" or a zone suffix ("-a") are common slips: strip them first.
  const squeezed = lower.replace(/-(\d+)$/, '$1').replace(/(\d)-[a-f]$/, '$1');
  if (candidates.includes(squeezed)) return squeezed;
  return closest(squeezed, candidates) ?? closest(lower, candidates);
}
