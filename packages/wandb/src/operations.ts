/**
 * The GraphQL documents the W&B Launch agent sends, with the operation and variable names of W&B's
 * Python client (`internal_api.py`) so that server logs and rate limits see the same traffic.
 */
export const VIEWER = /* GraphQL */ `
  query Viewer {
    viewer {
      id
      username
      entity
    }
  }
`;

export const ENTITY_IS_TEAM = /* GraphQL */ `
  query EntityIsTeam($entity: String!) {
    entity(name: $entity) {
      id
      isTeam
    }
  }
`;

export const PROJECT_RUN_QUEUES = /* GraphQL */ `
  query ProjectRunQueues($entity: String!, $projectName: String!) {
    project(entityName: $entity, name: $projectName) {
      runQueues {
        id
        name
        createdBy
        access
      }
    }
  }
`;

export const CREATE_RUN_QUEUE = /* GraphQL */ `
  mutation createRunQueue($entity: String!, $project: String!, $queueName: String!, $access: RunQueueAccessType!) {
    createRunQueue(input: { entityName: $entity, projectName: $project, queueName: $queueName, access: $access }) {
      success
      queueID
    }
  }
`;

export const CREATE_LAUNCH_AGENT = /* GraphQL */ `
  mutation createLaunchAgent($entity: String!, $project: String!, $queues: [ID!]!, $hostname: String!, $agentConfig: JSONString, $version: String) {
    createLaunchAgent(
      input: { entityName: $entity, projectName: $project, runQueues: $queues, hostname: $hostname, agentConfig: $agentConfig, version: $version }
    ) {
      launchAgentId
    }
  }
`;

export const LAUNCH_AGENT = /* GraphQL */ `
  query LaunchAgent($agentId: ID!) {
    launchAgent(id: $agentId) {
      id
      name
      runQueues
      hostname
      agentStatus
      stopPolling
      heartbeatAt
    }
  }
`;

export const UPDATE_LAUNCH_AGENT = /* GraphQL */ `
  mutation updateLaunchAgent($agentId: ID!, $agentStatus: String) {
    updateLaunchAgent(input: { launchAgentId: $agentId, agentStatus: $agentStatus }) {
      success
    }
  }
`;

export const POP_FROM_RUN_QUEUE = /* GraphQL */ `
  mutation popFromRunQueue($entity: String!, $project: String!, $queueName: String!, $launchAgentId: ID) {
    popFromRunQueue(input: { entityName: $entity, projectName: $project, queueName: $queueName, launchAgentId: $launchAgentId }) {
      runQueueItemId
      runSpec
    }
  }
`;

export const ACK_RUN_QUEUE_ITEM = /* GraphQL */ `
  mutation ackRunQueueItem($itemId: ID!, $runId: String!) {
    ackRunQueueItem(input: { runQueueItemId: $itemId, runName: $runId }) {
      success
    }
  }
`;

export const FAIL_RUN_QUEUE_ITEM = /* GraphQL */ `
  mutation failRunQueueItem($runQueueItemId: ID!, $message: String!, $stage: String!, $filePaths: [String!]) {
    failRunQueueItem(input: { runQueueItemId: $runQueueItemId, message: $message, stage: $stage, filePaths: $filePaths }) {
      success
    }
  }
`;

export const UPDATE_RUN_QUEUE_ITEM_WARNING = /* GraphQL */ `
  mutation updateRunQueueItemWarning($runQueueItemId: ID!, $message: String!, $stage: String!, $filePaths: [String!]) {
    updateRunQueueItemWarning(input: { runQueueItemId: $runQueueItemId, message: $message, stage: $stage, filePaths: $filePaths }) {
      success
    }
  }
`;

export const PUSH_TO_RUN_QUEUE_BY_NAME = /* GraphQL */ `
  mutation pushToRunQueueByName(
    $entityName: String!
    $projectName: String!
    $queueName: String!
    $runSpec: JSONString!
    $priority: Int
    $templateVariableValues: JSONString
  ) {
    pushToRunQueueByName(
      input: {
        entityName: $entityName
        projectName: $projectName
        queueName: $queueName
        runSpec: $runSpec
        priority: $priority
        templateVariableValues: $templateVariableValues
      }
    ) {
      runQueueItemId
      runSpec
    }
  }
`;

export const RUN_STOPPED_STATUS = /* GraphQL */ `
  query RunStoppedStatus($projectName: String, $entityName: String, $runId: String!) {
    project(name: $projectName, entityName: $entityName) {
      run(name: $runId) {
        stopped
      }
    }
  }
`;

export const RUN_STATE = /* GraphQL */ `
  query RunState($project: String!, $entity: String!, $name: String!) {
    project(name: $project, entityName: $entity) {
      run(name: $name) {
        state
      }
    }
  }
`;

/**
 * The items of one queue, as W&B's public API reads them (`RunQueue._get_items`, `QueuedRun`), with
 * the fields the read-backs need. A Relay connection: pages of `first` items after a cursor.
 */
export const RUN_QUEUE_ITEMS = /* GraphQL */ `
  query GetRunQueueItems($projectName: String!, $entityName: String!, $runQueue: String!, $first: Int, $after: String) {
    project(name: $projectName, entityName: $entityName) {
      runQueue(name: $runQueue) {
        runQueueItems(first: $first, after: $after) {
          pageInfo {
            hasNextPage
            endCursor
          }
          edges {
            node {
              id
              state
              createdAt
              runSpec
              associatedRunId
              launchAgentId
            }
          }
        }
      }
    }
  }
`;
