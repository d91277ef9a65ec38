/**
 * The slice of W&B's GraphQL schema that the Launch agent and `launch_add` use, written from the
 * operations documented in `reference/wandb-launch-agent-behaviour.md` (the argument and field names
 * of W&B's Python client), plus the artifact queries job resolution sends (`ArtifactMembershipByName`,
 * `ArtifactByID`, `FetchArtifactManifest`, `GetArtifactMembershipFileUrls` in W&B's
 * `wandb/sdk/artifacts/_generated/operations.py`). Types the agent never reads are left out.
 */
export const wandbLaunchSchemaSDL = /* GraphQL */ `
  scalar JSONString
  scalar DateTime
  "W&B's 64-bit integer (artifact and file sizes)."
  scalar Int64

  type Query {
    viewer: User
    entity(name: String!): Entity
    project(name: String, entityName: String): Project
    launchAgent(id: ID!): LaunchAgent
    artifact(id: ID!): Artifact
  }

  type User {
    id: ID!
    username: String!
    entity: String!
    email: String
    teams: [String!]!
  }

  type Entity {
    id: ID!
    name: String!
    isTeam: Boolean!
  }

  type Project {
    id: ID!
    name: String!
    entityName: String!
    runQueues: [RunQueue!]!
    runQueue(name: String!): RunQueue
    run(name: String!): Run
    entity: Entity!
    "A version by \`name:alias\` or \`name:vN\` (W&B's \`ArtifactMembershipByName\`)."
    artifactCollectionMembership(name: String!): ArtifactCollectionMembership
    artifactCollection(name: String!): ArtifactCollection
  }

  enum ArtifactState {
    PENDING
    COMMITTED
    DELETED
    GARBAGE_COLLECTED
    PENDING_DELETION
  }

  type ArtifactType {
    id: ID!
    name: String!
  }

  interface ArtifactCollection {
    id: ID!
    name: String!
    project: Project
    artifactMembership(aliasName: String!): ArtifactCollectionMembership
  }

  type ArtifactSequence implements ArtifactCollection {
    id: ID!
    name: String!
    project: Project
    artifactMembership(aliasName: String!): ArtifactCollectionMembership
  }

  type ArtifactAlias {
    id: ID!
    alias: String!
    artifactCollection: ArtifactCollection
  }

  type ArtifactCollectionMembership {
    id: ID!
    versionIndex: Int
    aliases: [ArtifactAlias!]!
    artifactCollection: ArtifactCollection
    artifact: Artifact
    "Files with signed download URLs, ordered by name; at most 1000 a page (default 50)."
    files(after: String, first: Int, names: [String!]): FileConnection
  }

  type Artifact {
    id: ID!
    state: ArtifactState!
    digest: String!
    size: Int64!
    fileCount: Int64!
    versionIndex: Int
    description: String
    metadata: JSONString
    createdAt: DateTime!
    artifactType: ArtifactType!
    artifactSequence: ArtifactSequence!
    aliases: [ArtifactAlias!]!
    currentManifest: ArtifactManifest
  }

  type ArtifactManifest {
    id: ID!
    file: File!
  }

  type File {
    id: ID!
    name: String!
    directUrl: String!
    sizeBytes: Int64!
    md5: String
  }

  type FileConnection {
    pageInfo: PageInfo!
    edges: [FileEdge!]!
  }

  type FileEdge {
    cursor: String!
    node: File
  }

  enum RunQueueAccessType {
    PROJECT
    USER
  }

  enum RunQueuePrioritizationMode {
    DISABLED
    V0
  }

  type RunQueue {
    id: ID!
    name: String!
    createdBy: String
    access: RunQueueAccessType!
    prioritizationMode: RunQueuePrioritizationMode
    "Items in push order; at most 100 a page (the default)."
    runQueueItems(first: Int, after: String): RunQueueItemConnection!
    runQueueItem(id: ID!): RunQueueItem
  }

  type PageInfo {
    hasNextPage: Boolean!
    hasPreviousPage: Boolean!
    startCursor: String
    endCursor: String
  }

  type RunQueueItemConnection {
    pageInfo: PageInfo!
    edges: [RunQueueItemEdge!]!
  }

  type RunQueueItemEdge {
    cursor: String!
    node: RunQueueItem!
  }

  enum RunQueueItemState {
    PENDING
    LEASED
    CLAIMED
    FAILED
  }

  type RunQueueItemIssue {
    message: String
    stage: String
    filePaths: [String!]
  }

  type RunQueueItem {
    id: ID!
    state: RunQueueItemState!
    createdAt: DateTime!
    updatedAt: DateTime!
    runSpec: JSONString!
    priority: Int!
    associatedRunId: String
    launchAgentId: ID
    error: RunQueueItemIssue
    warnings: [RunQueueItemIssue!]!
  }

  type Run {
    id: ID!
    name: String!
    state: String!
    stopped: Boolean!
  }

  type LaunchAgent {
    id: ID!
    name: String!
    runQueues: [ID!]!
    hostname: String!
    agentStatus: String
    stopPolling: Boolean!
    heartbeatAt: DateTime
    version: String
    agentConfig: JSONString
  }

  type Mutation {
    createLaunchAgent(input: CreateLaunchAgentInput!): CreateLaunchAgentPayload
    updateLaunchAgent(input: UpdateLaunchAgentInput!): UpdateLaunchAgentPayload
    createRunQueue(input: CreateRunQueueInput!): CreateRunQueuePayload
    popFromRunQueue(input: PopFromRunQueueInput!): PopFromRunQueuePayload
    ackRunQueueItem(input: AckRunQueueItemInput!): AckRunQueueItemPayload
    failRunQueueItem(input: FailRunQueueItemInput!): FailRunQueueItemPayload
    updateRunQueueItemWarning(input: UpdateRunQueueItemWarningInput!): UpdateRunQueueItemWarningPayload
    pushToRunQueueByName(input: PushToRunQueueByNameInput!): PushToRunQueueByNamePayload
  }

  input CreateLaunchAgentInput {
    entityName: String!
    projectName: String!
    runQueues: [ID!]!
    hostname: String!
    agentConfig: JSONString
    version: String
    clientMutationId: String
  }
  type CreateLaunchAgentPayload {
    launchAgentId: ID!
    success: Boolean
    clientMutationId: String
  }

  input UpdateLaunchAgentInput {
    launchAgentId: ID!
    agentStatus: String
    clientMutationId: String
  }
  type UpdateLaunchAgentPayload {
    success: Boolean
    clientMutationId: String
  }

  input CreateRunQueueInput {
    entityName: String!
    projectName: String!
    queueName: String!
    access: RunQueueAccessType!
    prioritizationMode: RunQueuePrioritizationMode
    defaultResourceConfigID: ID
    clientMutationId: String
  }
  type CreateRunQueuePayload {
    success: Boolean
    queueID: ID
    clientMutationId: String
  }

  input PopFromRunQueueInput {
    entityName: String!
    projectName: String!
    queueName: String!
    launchAgentId: ID
    clientMutationId: String
  }
  type PopFromRunQueuePayload {
    runQueueItemId: ID!
    runSpec: JSONString!
    clientMutationId: String
  }

  input AckRunQueueItemInput {
    runQueueItemId: ID!
    runName: String!
    clientMutationId: String
  }
  type AckRunQueueItemPayload {
    success: Boolean!
    clientMutationId: String
  }

  input FailRunQueueItemInput {
    runQueueItemId: ID!
    message: String
    stage: String
    filePaths: [String!]
    clientMutationId: String
  }
  type FailRunQueueItemPayload {
    success: Boolean!
    clientMutationId: String
  }

  input UpdateRunQueueItemWarningInput {
    runQueueItemId: ID!
    message: String!
    stage: String!
    filePaths: [String!]
    clientMutationId: String
  }
  type UpdateRunQueueItemWarningPayload {
    success: Boolean!
    clientMutationId: String
  }

  input PushToRunQueueByNameInput {
    entityName: String!
    projectName: String!
    queueName: String!
    runSpec: JSONString!
    priority: Int
    templateVariableValues: JSONString
    clientMutationId: String
  }
  type PushToRunQueueByNamePayload {
    runQueueItemId: ID!
    runSpec: JSONString
    clientMutationId: String
  }
`;
