// A fake model provider for tests: an HTTP server on 127.0.0.1 that speaks
// OpenAI Chat Completions and Anthropic Messages, streaming (server-sent
// events) and not, answers "Hello from the fake" with fixed token counts, and
// records every request it was sent (so a test can see which key arrived).
import { createServer, type Server, type ServerResponse } from 'node:http';

export const FAKE_ANSWER = 'Hello from the fake';

/** Token counts the fake reports: OpenAI format (model `fake-big`: far more input). */
export const OPENAI_USAGE = { input: 11, output: 4, bigInput: 100_000 };
/** Token counts the fake reports: Anthropic format. */
export const ANTHROPIC_USAGE = { input: 21, output: 7 };

export interface SeenRequest { path: string; auth: string | undefined; apiKey: string | undefined; body: string }

export interface FakeModelProvider {
  port: number;
  /** Every request, oldest first. */
  seen: SeenRequest[];
  close: () => Promise<void>;
}

/**
 * Models: any name works; `fake-big` reports 100 000 input tokens (to exhaust a
 * budget), `fake-slow` never answers (to time out). `/v1/messages` is
 * Anthropic's format; every other path OpenAI's.
 */
export async function startFakeModelProvider(): Promise<FakeModelProvider> {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization, apiKey: req.headers['x-api-key'] as string | undefined, body });
      let parsed: { model?: string; stream?: boolean } = {};
      try { parsed = body ? JSON.parse(body) : {}; } catch { /* answered as if empty */ }
      if (parsed.model === 'fake-slow') return;
      if (req.url?.startsWith('/v1/messages')) answerAnthropic(res, parsed);
      else answerOpenAI(res, parsed);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    seen,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function answerAnthropic(res: ServerResponse, req: { model?: string; stream?: boolean }): void {
  if (req.stream) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { id: 'm1', model: req.model, usage: { input_tokens: ANTHROPIC_USAGE.input, output_tokens: 1 } } })}\n\n`);
    res.write(`event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: FAKE_ANSWER } })}\n\n`);
    res.end(`event: message_delta\ndata: ${JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: ANTHROPIC_USAGE.output } })}\n\n`);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ id: 'm1', type: 'message', model: req.model, content: [{ type: 'text', text: FAKE_ANSWER }], usage: { input_tokens: ANTHROPIC_USAGE.input, output_tokens: ANTHROPIC_USAGE.output } }));
}

function answerOpenAI(res: ServerResponse, req: { model?: string; stream?: boolean }): void {
  const usage = { prompt_tokens: req.model === 'fake-big' ? OPENAI_USAGE.bigInput : OPENAI_USAGE.input, completion_tokens: OPENAI_USAGE.output };
  if (req.stream) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = (delta: object, finish: string | null, extra = {}) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: req.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
    res.write(chunk({ role: 'assistant', content: FAKE_ANSWER }, null));
    res.write(chunk({}, 'stop', { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }));
    res.end('data: [DONE]\n\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: req.model, choices: [{ index: 0, message: { role: 'assistant', content: FAKE_ANSWER }, finish_reason: 'stop' }], usage }));
}

/**
 * The codeyard.yaml `ai:` section that puts the fake behind the gateway as `fake`
 * (OpenAI-compatible, the default model) and `fakeanthropic`. `extra` lines go
 * after the providers: indent by 4 to add a provider, by 2 for an `ai:` setting.
 */
export function fakeProviderConfig(port: number, extra: string[] = []): string {
  return [
    'ai:',
    '  providers:',
    '    fake:',
    '      kind: openai-compatible',
    `      baseUrl: http://127.0.0.1:${port}/v1`,
    '      models: [fake-model, fake-big, fake-slow]',
    '    fakeanthropic:',
    '      kind: anthropic',
    `      baseUrl: http://127.0.0.1:${port}`,
    '      models: [claude-fake]',
    ...extra,
    '  defaultModel: fake/fake-model',
  ].join('\n') + '\n';
}
