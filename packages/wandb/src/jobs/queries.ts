/**
 * The GraphQL documents of W&B's artifact API that job resolution sends, with the operation names,
 * variable names and root fields of W&B's Python client (`wandb/sdk/artifacts/_generated/operations.py`:
 * `ArtifactMembershipByName`, `ArtifactByID`, `FetchArtifactManifest`, `GetArtifactMembershipFileUrls`),
 * trimmed to the fields this client reads.
 */

const ARTIFACT_FIELDS = /* GraphQL */ `
  fragment LaunchArtifactFields on Artifact {
    id
    state
    digest
    size
    fileCount
    versionIndex
    artifactType {
      name
    }
    artifactSequence {
      name
      project {
        name
        entity {
          name
        }
      }
    }
  }
`;

/** A version by `name:alias` or `name:vN` in a project (W&B's `Artifact._from_name`). */
export const ARTIFACT_MEMBERSHIP_BY_NAME = /* GraphQL */ `
  query ArtifactMembershipByName($entity: String!, $project: String!, $name: String!) {
    project(name: $project, entityName: $entity) {
      artifactCollectionMembership(name: $name) {
        versionIndex
        artifactCollection {
          name
          project {
            name
            entity {
              name
            }
          }
        }
        artifact {
          ...LaunchArtifactFields
        }
      }
    }
  }
  ${ARTIFACT_FIELDS}
`;

/** A version by id (a job's `wandb-artifact://_id/<id>` code artifact; W&B's `Artifact._from_id`). */
export const ARTIFACT_BY_ID = /* GraphQL */ `
  query ArtifactByID($id: ID!) {
    artifact(id: $id) {
      ...LaunchArtifactFields
    }
  }
  ${ARTIFACT_FIELDS}
`;

/** The signed URL of a version's manifest (W&B's `Artifact._fetch_manifest`). */
export const FETCH_ARTIFACT_MANIFEST = /* GraphQL */ `
  query FetchArtifactManifest($id: ID!) {
    artifact(id: $id) {
      currentManifest {
        file {
          directUrl
        }
      }
    }
  }
`;

/** One page of a version's files with their signed URLs (W&B's `Artifact._fetch_file_urls`). */
export const GET_ARTIFACT_MEMBERSHIP_FILE_URLS = /* GraphQL */ `
  query GetArtifactMembershipFileUrls($entity: String!, $project: String!, $collection: String!, $alias: String!, $cursor: String, $perPage: Int) {
    project(name: $project, entityName: $entity) {
      artifactCollection(name: $collection) {
        artifactMembership(aliasName: $alias) {
          files(after: $cursor, first: $perPage) {
            pageInfo {
              endCursor
              hasNextPage
            }
            edges {
              node {
                name
                directUrl
              }
            }
          }
        }
      }
    }
  }
`;
