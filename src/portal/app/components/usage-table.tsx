import type { UsageSummary } from '../api.ts';
import { count } from '../format.ts';

/** Model calls and tokens by user, provider and model, with the period's totals in the footer. */
export function UsageTable(props: { usage: UsageSummary; showUser: boolean; caption: string }) {
  const { rows, totals } = props.usage;
  if (rows.length === 0) return <p class="muted">No model calls in this period.</p>;
  return (
    <table class="table usage">
      <caption class="sr-only">{props.caption}</caption>
      <thead>
        <tr>
          {props.showUser && <th scope="col">User</th>}<th scope="col">Provider</th><th scope="col">Model</th>
          <th scope="col" class="num">Requests</th><th scope="col" class="num">Input tokens</th><th scope="col" class="num">Output tokens</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={`${r.user}/${r.provider}/${r.model}`}>
            {props.showUser && <td>{r.user}</td>}<td>{r.provider}</td>
            <td>{r.model ?? '—'}{r.ownKeyCalls > 0 && <span class="muted" title="made with the user's own key, outside the budget"> · {r.ownKeyCalls === r.calls ? 'own key' : `${count(r.ownKeyCalls)} with own key`}</span>}</td>
            <td class="num">{count(r.calls)}</td><td class="num">{count(r.inputTokens)}</td><td class="num">{count(r.outputTokens)}</td>
          </tr>
        ))}
      </tbody>
      <tfoot>
        <tr>
          <th scope="row" colSpan={props.showUser ? 3 : 2}>Total</th>
          <td class="num">{count(totals.calls)}</td><td class="num">{count(totals.inputTokens)}</td><td class="num">{count(totals.outputTokens)}</td>
        </tr>
      </tfoot>
    </table>
  );
}
