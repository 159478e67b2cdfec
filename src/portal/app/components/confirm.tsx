import { useEffect, useRef } from 'preact/hooks';

/** A modal yes/no question with the consequence spelled out. */
export function Confirm(props: { title: string; body: string; confirm: string; danger?: boolean; onAnswer: (yes: boolean) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => { dialog.current?.showModal(); }, []);
  return (
    <dialog ref={dialog} class="dialog" aria-labelledby="confirm-title" onClose={() => props.onAnswer(dialog.current?.returnValue === 'yes')}>
      <form method="dialog">
        <h2 id="confirm-title">{props.title}</h2>
        <p>{props.body}</p>
        <div class="actions">
          <button value="no" class="secondary">Cancel</button>
          <button value="yes" class={props.danger ? 'danger' : ''}>{props.confirm}</button>
        </div>
      </form>
    </dialog>
  );
}
