/**
 * Reads token counts out of a model answer as it streams past, without holding
 * it: OpenAI (usage.prompt_tokens / completion_tokens, or the Responses API's
 * input_tokens / output_tokens) and Anthropic (message_start's input, the last
 * message_delta's output), in one JSON body or in server-sent events.
 */
export class UsageMeter {
  private input = 0;
  private output = 0;
  private model: string | null = null;
  private partial = '';
  private json = '';
  private sse: boolean | undefined;
  /** A plain JSON answer is read whole, up to this much; usage sits in it somewhere. */
  private static readonly MAX_JSON = 4 * 1024 * 1024;

  feed(chunk: Buffer, contentType: string): void {
    this.sse ??= contentType.includes('text/event-stream');
    if (!this.sse) {
      if (this.json.length < UsageMeter.MAX_JSON) this.json += chunk.toString('utf8');
      return;
    }
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (!data || data === '[DONE]') continue;
      try { this.take(JSON.parse(data)); } catch { /* a line that is not JSON */ }
    }
  }

  totals(): { input: number; output: number; model: string | null } {
    if (this.sse === false && this.json) {
      try { this.take(JSON.parse(this.json)); } catch { /* an error page */ }
      this.json = '';
    }
    return { input: this.input, output: this.output, model: this.model };
  }

  private take(event: Record<string, unknown>): void {
    const message = event.message as { usage?: Usage; model?: string } | undefined;
    const response = event.response as { usage?: Usage; model?: string } | undefined;
    if (typeof event.model === 'string') this.model = event.model;
    if (message?.model) this.model = message.model;
    for (const u of [event.usage as Usage | undefined, message?.usage, response?.usage]) {
      if (!u) continue;
      const input = u.prompt_tokens ?? u.input_tokens;
      const output = u.completion_tokens ?? u.output_tokens;
      if (typeof input === 'number' && input > 0) this.input = Math.max(this.input, input);
      if (typeof output === 'number') this.output = Math.max(this.output, output);
    }
  }
}

interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  input_tokens?: number;
  output_tokens?: number;
}
