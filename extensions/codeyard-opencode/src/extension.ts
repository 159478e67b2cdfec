// opencode beside the editor: one terminal named "opencode" in a split, a new
// session on demand, and the selection sent to it as @path#Lstart-end.
import * as vscode from 'vscode';

const NAME = 'opencode';

function findTerminal(): vscode.Terminal | undefined {
  return vscode.window.terminals.find((t) => t.name === NAME);
}

function startTerminal(): vscode.Terminal {
  const terminal = vscode.window.createTerminal({ name: NAME, location: { viewColumn: vscode.ViewColumn.Beside } });
  terminal.sendText('opencode');
  terminal.show();
  return terminal;
}

/** `@src/app.ts#L37-42` for the active editor's selection (the whole file without one). */
export function reference(path: string, start: number, end: number, empty: boolean): string {
  if (empty) return `@${path}`;
  return start === end ? `@${path}#L${start}` : `@${path}#L${start}-${end}`;
}

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('codeyard.opencode.open', () => {
      const existing = findTerminal();
      if (existing) existing.show();
      else startTerminal();
    }),
    vscode.commands.registerCommand('codeyard.opencode.newSession', () => {
      findTerminal()?.dispose();
      startTerminal();
    }),
    vscode.commands.registerCommand('codeyard.opencode.insertReference', () => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) return void vscode.window.showInformationMessage('Open a file first: its selection goes to opencode as @file#Lx-y.');
      const sel = editor.selection;
      // A selection ending at column 0 of a line does not include that line.
      const endLine = sel.end.character === 0 && sel.end.line > sel.start.line ? sel.end.line : sel.end.line + 1;
      const ref = reference(vscode.workspace.asRelativePath(editor.document.uri, false), sel.start.line + 1, endLine, sel.isEmpty);
      const terminal = findTerminal() ?? startTerminal();
      terminal.show(false);
      terminal.sendText(`${ref} `, false);
    }),
  );
}

export function deactivate(): void {}
