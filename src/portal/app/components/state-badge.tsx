import type { Sandbox } from '../api.ts';

const LABELS: Record<Sandbox['state'], string> = {
  starting: 'Starting', running: 'Running', restarting: 'Restarting', stopping: 'Stopping', stopped: 'Stopped', error: 'Error',
};

export function StateBadge(props: { state: Sandbox['state'] }) {
  return <span class={`badge state-${props.state}`}>{LABELS[props.state] ?? props.state}</span>;
}
