import { href } from '../router.ts';

export const WELCOME_SEEN = 'codeyard.welcome-seen';

/** The admin's first screen: the two things to do before anyone else can use it. */
export function Welcome(props: { onDone: () => void }) {
  return (
    <section class="page narrow" aria-labelledby="page-title">
      <h1 id="page-title">Welcome to codeyard</h1>
      <p>You are the administrator. Two things make it useful for others:</p>
      <ol class="big-steps">
        <li>
          <h2>Add the people who will use it</h2>
          <p>Each person gets their own login, their own workspaces and their own sandboxes, which nobody else can open.</p>
          <a class="button" href={href.users}>Add users</a>
        </li>
        <li>
          <h2>Set a model key for the opencode agent</h2>
          <p>opencode, the AI coding agent in every VS Code sandbox, needs a model provider key. The gateway keeps it and never hands it to a sandbox;
            users get the default model with no setup of their own.</p>
          <a class="button" href={href.ai}>Set a model key</a>
        </li>
      </ol>
      <button class="secondary" onClick={props.onDone}>Got it, go to my sandboxes</button>
    </section>
  );
}
