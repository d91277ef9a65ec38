import type { V1Job } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { KubeletStep } from './kubelet.js';
import { eventually, jobManifest, useKubeServer } from './test-helpers.js';

type Obj = Record<string, any>;
type InitExecutor = Extract<KubeletStep, { init: unknown }>['init'];

const fixture = useKubeServer();

/** A Job whose pod has two init containers before its app container. */
function withInits(name: string) {
  const job = jobManifest(name) as Obj;
  job.spec.template.spec.initContainers = [
    { name: 'first', image: 'busybox:1.36', command: ['sh', '-c', 'one'] },
    { name: 'second', image: 'busybox:1.36', command: ['sh', '-c', 'two'] },
  ];
  return job as V1Job;
}

describe('scripted kubelet: the init step runs init containers for real', () => {
  it('runs each init container in order while it is running, logs to it, then completes it before the app container starts', async () => {
    const { server, batch, core } = await fixture.setup();
    const seen: Obj[] = [];
    const init: InitExecutor = async (pod, container, io) => {
      const live = server.getObject(`/api/v1/namespaces/default/pods/${pod.metadata.name}`) as Obj;
      seen.push({ name: container.name, command: container.command, statuses: structuredClone(live.status.initContainerStatuses), phase: live.status.phase });
      io.log(`ran ${container.name}`);
      return { exitCode: 0 };
    };
    server.kubelet.script({ label: { app: 'launch' } }, [{ init }, { running: true }, { succeed: true }]);
    await batch.createNamespacedJob({ namespace: 'default', body: withInits('inits-ok') });
    const pod = await eventually(async () => {
      const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'job-name=inits-ok' });
      const p = pods.items[0] as Obj | undefined;
      return p?.status?.phase === 'Succeeded' ? p : undefined;
    });
    expect(seen.map((s) => s.name)).toEqual(['first', 'second']);
    expect(seen[0]!.command).toEqual(['sh', '-c', 'one']);
    // While the first ran: it was running, the second still waiting; the pod Pending.
    expect(seen[0]!.phase).toBe('Pending');
    expect(seen[0]!.statuses.map((s: Obj) => Object.keys(s.state)[0])).toEqual(['running', 'waiting']);
    expect(seen[1]!.statuses.map((s: Obj) => Object.keys(s.state)[0])).toEqual(['terminated', 'running']);
    expect(pod.status.initContainerStatuses.map((s: Obj) => s.state.terminated)).toEqual([
      expect.objectContaining({ exitCode: 0, reason: 'Completed' }),
      expect.objectContaining({ exitCode: 0, reason: 'Completed' }),
    ]);
    const log = await core.readNamespacedPodLog({ name: pod.metadata.name, namespace: 'default', container: 'second' });
    expect(log).toBe('ran second\n');
  });

  it('fails the pod (and the Job) when an init container fails: later ones and the app container never run', async () => {
    const { server, batch, core } = await fixture.setup();
    const ran: string[] = [];
    const init: InitExecutor = async (_pod, container, io) => {
      ran.push(container.name);
      io.log('cannot fetch');
      return { exitCode: 2 };
    };
    let executed = false;
    server.kubelet.script({ label: { app: 'launch' } }, [
      { init },
      { running: true },
      {
        execute: async () => {
          executed = true;
          return { exitCode: 0 };
        },
      },
    ]);
    await batch.createNamespacedJob({ namespace: 'default', body: withInits('inits-fail') });
    const job = await eventually(() => {
      const j = server.getObject('/apis/batch/v1/namespaces/default/jobs/inits-fail') as Obj;
      return (j?.status?.failed ?? 0) >= 1 ? j : undefined;
    });
    expect(job.status.failed).toBe(1);
    const pod = (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'job-name=inits-fail' })).items[0] as Obj;
    expect(pod.status.phase).toBe('Failed');
    expect(pod.status.initContainerStatuses[0].state.terminated).toMatchObject({ exitCode: 2, reason: 'Error' });
    expect(pod.status.initContainerStatuses[1].state.waiting).toBeDefined();
    expect(pod.status.containerStatuses[0].state).toEqual({ waiting: { reason: 'PodInitializing' } });
    expect(ran).toEqual(['first']);
    expect(executed).toBe(false);
    expect(await core.readNamespacedPodLog({ name: pod.metadata.name, namespace: 'default', container: 'first' })).toBe('cannot fetch\n');
  });
});
