"""A bounded load run against examples/serve (loopback): for each concurrency level, that many
clients each send N short streaming chat requests, one after the other; prints requests/s,
generated tokens/s and the p50/p99 time to first token per level.

usage: serve_load.py --base-url http://127.0.0.1:PORT/v1 [--api-key KEY] [--requests N]
                     [--concurrency 1,4,16] [--max-tokens 16]

Not part of the test suite (it measures; it checks only that every request completes).
"""
import argparse
import statistics
import sys
import threading
import time
import urllib.parse

import openai


def percentile(values, p):
    """Nearest-rank percentile of `values` (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def one_request(client, model, i, max_tokens):
    """(time to first token, total time, completion tokens) of one streaming chat."""
    start = time.perf_counter()
    first = None
    tokens = 0
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"Write one sentence about the number {i}."}],
        max_tokens=max_tokens,
        temperature=0.7,
        seed=i,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    total = time.perf_counter() - start
    return (first if first is not None else total), total, tokens


def level(client, model, clients, requests, max_tokens):
    results = []
    errors = []
    lock = threading.Lock()

    def worker(c):
        for r in range(requests):
            try:
                result = one_request(client, model, c * requests + r, max_tokens)
                with lock:
                    results.append(result)
            except Exception as error:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(repr(error))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ttft = [r[0] * 1000 for r in results]
    latency = [r[1] * 1000 for r in results]
    tokens = sum(r[2] for r in results)
    return {
        "clients": clients,
        "requests": len(results),
        "errors": errors,
        "wall": wall,
        "rps": len(results) / wall if wall > 0 else 0.0,
        "tps": tokens / wall if wall > 0 else 0.0,
        "ttft50": percentile(ttft, 50),
        "ttft99": percentile(ttft, 99),
        "lat50": statistics.median(latency) if latency else float("nan"),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--requests", type=int, default=8, help="requests per client (default 8)")
    parser.add_argument("--concurrency", default="1,4,16", help="client counts (default 1,4,16)")
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    host = urllib.parse.urlparse(args.base_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing to load {host}: loopback only")
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if not levels or min(levels) < 1 or max(levels) > 64 or not 1 <= args.requests <= 100:
        sys.exit("concurrency levels must be 1..64 and --requests 1..100")
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=600)
    model = client.models.list().data[0].id
    one_request(client, model, 0, 4)  # warm-up
    print(f"model {model}, {args.requests} streaming chat requests per client, max_tokens {args.max_tokens}")
    header = f"{'clients':>7} {'requests':>8} {'wall s':>7} {'req/s':>6} {'tok/s':>6} {'TTFT p50 ms':>11} {'TTFT p99 ms':>11} {'latency p50 ms':>14}"
    print(header)
    print("-" * len(header))
    failed = False
    for clients in levels:
        r = level(client, model, clients, args.requests, args.max_tokens)
        print(
            f"{r['clients']:>7} {r['requests']:>8} {r['wall']:>7.2f} {r['rps']:>6.2f} {r['tps']:>6.1f} "
            f"{r['ttft50']:>11.0f} {r['ttft99']:>11.0f} {r['lat50']:>14.0f}",
            flush=True,
        )
        if r["errors"]:
            failed = True
            print(f"  {len(r['errors'])} failed: {r['errors'][:3]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
