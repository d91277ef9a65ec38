import { silentLogger, type AgentRecord, type ItemRecord } from '@launch/core';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, sourceFlag } from '../flags.js';
import type { Io } from '../io.js';
import { loadConfig } from '../load-config.js';
import { colorEnabled, palette } from '../output/color.js';
import { ITEM_HEADERS, itemRow } from '../output/item-format.js';
import { renderTable } from '../output/table.js';
import { formatAge } from '../output/time.js';
import { selectSource } from '../select-source.js';
import { parseCommandArgs, UsageError } from '../usage.js';
import { cliRedactor } from '../redaction.js';

export const STATUS_HELP = `Usage: launch-agent status [options]

Shows the embedded queue's items (id, queue, priority, state, run id, age, exit code or failure,
warnings) and the agents that served it.

Options:
  -q, --queue NAME        only this queue
      --json              print {"items": [...], "agents": [...]} on stdout (specs left out)
${CONFIG_FLAGS_HELP}`;

const FLAGS = {
  ...CONFIG_FLAGS,
  queue: { type: 'string', short: 'q' },
  json: { type: 'boolean' },
} as const;

export async function statusCommand(argv: string[], io: Io): Promise<number> {
  const { values: v } = parseCommandArgs('status', argv, FLAGS);
  if (v.help) {
    io.stdout.write(STATUS_HELP + '\n');
    return 0;
  }
  const { config, origins } = await loadConfig(io, v.config, { stateDir: v['state-dir'], source: sourceFlag('status', v.source) });
  const selected = await selectSource({ config, origins, env: io.env, homedir: io.homedir, logger: silentLogger, command: 'status' });
  const queue = selected.embedded;
  if (!queue) throw new UsageError('status lists the embedded queue; for W&B queues use the W&B UI (or --source embedded)', 'status');
  try {
    const items = (await queue.list(v.queue ? { queue: v.queue } : {})).sort((a, b) => a.enqueuedAt.localeCompare(b.enqueuedAt));
    const agents = await queue.listAgents();
    const redactor = cliRedactor(io.env, config.api_key);
    if (v.json) {
      const view = { stateDir: queue.stateDir, items: items.map(({ spec: _spec, ...rest }) => rest), agents };
      io.stdout.write(redactor.redact(JSON.stringify(redactor.redactValue(view), null, 2)) + '\n');
      return 0;
    }
    io.stdout.write(redactor.redact(renderStatus(items, agents, io, queue.stateDir)) + '\n');
    return 0;
  } finally {
    await queue.close?.();
  }
}

export const AGENT_HEADERS = ['AGENT', 'NAME', 'STATUS', 'CLAIMS', 'QUEUES', 'HOST', 'PID', 'UPDATED'];

/**
 * The status view: items with the agent holding each claim now, and agents with the claims they hold. A dead
 * agent is shown as gone with the status it last reported; once another agent took its claims over it holds none.
 */
export function renderStatus(items: ItemRecord[], agents: AgentRecord[], io: Pick<Io, 'stdout' | 'env'>, stateDir: string, now = Date.now()): string {
  const c = palette(colorEnabled(io.stdout, io.env));
  const parts = [c.dim(`state: ${stateDir}`)];
  const byId = new Map(agents.map((a) => [a.id, a]));
  const alive = (id: string) => byId.get(id)?.alive;
  parts.push(
    items.length === 0
      ? 'No items.'
      : renderTable(
          ITEM_HEADERS,
          items.map((i) => itemRow(i, c, now, alive)),
        ),
  );
  if (agents.length > 0) {
    const claims = new Map<string, number>();
    for (const i of items) {
      if ((i.state === 'claimed' || i.state === 'acked') && i.claimedBy) claims.set(i.claimedBy, (claims.get(i.claimedBy) ?? 0) + 1);
    }
    const rows = agents.map((a) => [
      a.id,
      a.name,
      a.status === 'KILLED' ? c.dim(a.status) : a.alive === false ? c.red(`gone (last reported ${a.status})`) : c.green(a.status),
      String(claims.get(a.id) ?? 0),
      a.queues.join(','),
      a.hostname,
      String(a.pid),
      `${formatAge(a.updatedAt, now)} ago`,
    ]);
    parts.push(renderTable(AGENT_HEADERS, rows));
  }
  return parts.join('\n\n');
}
