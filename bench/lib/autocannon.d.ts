// The slice of autocannon's API the HTTP load generator uses (the package ships no types).
declare module 'autocannon' {
  interface Histogram { average: number; p50: number; p99: number }
  interface Result { requests: Histogram; latency: Histogram; throughput: Histogram; errors: number; timeouts: number; non2xx: number }
  interface Options { url: string; headers?: Record<string, string>; connections?: number; duration?: number; pipelining?: number }
  export default function autocannon(opts: Options): Promise<Result>;
}
