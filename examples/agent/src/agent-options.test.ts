import { parseAgentConfig } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { agentOptionsFromConfig, registrationConfig } from './agent-options.js';

describe('agentOptionsFromConfig', () => {
  it('maps config keys to AgentOptions in the agent units', () => {
    const config = parseAgentConfig(
      {
        entity: 'team',
        max_jobs: -1,
        max_schedulers: 2,
        stopped_run_timeout: 30,
        start_timeout: 0,
        poll_interval: 2.5,
        max_resume_count: 1,
        kill_grace_period: 3,
        secure_mode: true,
      },
      'test config',
    );
    expect(agentOptionsFromConfig(config)).toEqual({
      entity: 'team',
      maxJobs: -1,
      maxSchedulers: 2,
      stoppedRunTimeout: 30,
      startTimeout: 0,
      pollIntervalMs: 2500,
      maxResumeCount: 1,
      apiKey: undefined,
      baseUrl: undefined,
      secureMode: true,
    });
  });

  it('leaves the poll interval to the source when unset, and keeps W&B defaults', () => {
    const o = agentOptionsFromConfig(parseAgentConfig({}, 'test config'));
    expect(o.pollIntervalMs).toBeUndefined();
    expect(o).toMatchObject({ maxJobs: 1, maxSchedulers: 1, stoppedRunTimeout: 60, startTimeout: 1800, maxResumeCount: 5 });
  });

  it('does not hand the API key over at registration', () => {
    const config = parseAgentConfig({ api_key: 'k'.repeat(40), queues: ['a'] }, 'test config');
    expect(registrationConfig(config)).not.toHaveProperty('api_key');
    expect(registrationConfig(config)).toHaveProperty('queues', ['a']);
  });
});
