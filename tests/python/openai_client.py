"""Checks examples/serve with the official `openai` client (and raw HTTP where the client cannot
do what is checked).

usage: openai_client.py --base-url http://127.0.0.1:PORT/v1 --api-key KEY
                        --smollm2 PATH --gemma3 PATH

Runs every check, prints one line per check (`ok NAME (S s): detail` or `FAIL NAME: reason`)
and exits 1 when any failed. The server must run SMOLLM2 at the start; it runs SMOLLM2 again
at the end (the hot-swap check loads GEMMA3 and then SMOLLM2 back).
"""
import argparse
import json
import math
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import openai

MESSAGES = [{"role": "user", "content": "Name three colors of the rainbow."}]

FRUIT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "color": {"enum": ["red", "green", "yellow", "orange"]},
        "weight_grams": {"type": "integer"},
        "ripe": {"type": "boolean"},
    },
    "required": ["name", "color", "weight_grams", "ripe"],
    "additionalProperties": False,
}


class Checks:
    def __init__(self, args):
        self.args = args
        self.base = args.base_url.rstrip("/")
        self.root = self.base[: -len("/v1")] if self.base.endswith("/v1") else self.base
        # No retries: a 503 or 401 must surface at once.
        self.client = openai.OpenAI(base_url=self.base, api_key=args.api_key, max_retries=0, timeout=300)
        self.model = self.client.models.list().data[0].id
        self.failures = []

    def run(self, name, check):
        start = time.monotonic()
        try:
            detail = check()
            print(f"ok {name} ({time.monotonic() - start:.2f} s): {detail}", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is reported
            self.failures.append(name)
            print(f"FAIL {name} ({time.monotonic() - start:.2f} s): {error!r}", flush=True)
            traceback.print_exc(file=sys.stdout)

    # -- raw HTTP ---------------------------------------------------------------------------

    def raw(self, method, path, body=None, key=None, content_type="application/json"):
        """(status, parsed JSON body or text) of a raw request; `body` bytes or an object."""
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        request = urllib.request.Request(self.root + path, data=body, method=method)
        request.add_header("Authorization", f"Bearer {key or self.args.api_key}")
        if body is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def oversized_body(self):
        """(status, parsed body) for a request announcing a 9 MiB body: the server refuses it
        from the Content-Length, before any of it is sent (sending it all could race the
        server's close)."""
        url = urllib.parse.urlparse(self.root)
        head = (
            f"POST /v1/completions HTTP/1.1\r\nHost: {url.hostname}\r\n"
            f"Authorization: Bearer {self.args.api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {9 << 20}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
            sock.sendall(head)
            response = b""
            while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
                data = sock.recv(4096)
                if not data:
                    break
                response += data
        head, _, body = response.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        return status, json.loads(body)

    # -- checks -----------------------------------------------------------------------------

    def models_list(self):
        models = self.client.models.list().data
        assert len(models) == 1, models
        assert models[0].id.endswith(".gguf"), models[0]
        assert models[0].object == "model"
        return models[0].id

    def chat_stream_equals_non_stream(self):
        whole = self.client.chat.completions.create(
            model=self.model, messages=MESSAGES, temperature=0, max_tokens=24
        )
        text = whole.choices[0].message.content
        assert text, whole
        assert whole.choices[0].message.role == "assistant"
        assert whole.choices[0].finish_reason in ("stop", "length"), whole
        assert whole.usage.completion_tokens <= 24 and whole.usage.prompt_tokens > 0, whole.usage
        chunks = list(
            self.client.chat.completions.create(
                model=self.model, messages=MESSAGES, temperature=0, max_tokens=24, stream=True
            )
        )
        assert chunks[0].choices[0].delta.role == "assistant", chunks[0]
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish == [whole.choices[0].finish_reason], finish
        assert streamed == text, (streamed, text)
        return f"{len(chunks)} chunks, {text!r}"

    def stream_usage(self):
        chunks = list(
            self.client.chat.completions.create(
                model=self.model,
                messages=MESSAGES,
                temperature=0,
                max_tokens=8,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        usage = chunks[-1].usage
        assert usage is not None and usage.completion_tokens == 8, chunks[-1]
        return f"usage {usage.prompt_tokens} + {usage.completion_tokens}"

    def completions(self):
        result = self.client.completions.create(
            model=self.model, prompt="The three primary colors are", max_tokens=16, temperature=0
        )
        text = result.choices[0].text
        assert text.strip(), result
        assert result.usage.completion_tokens <= 16, result.usage
        streamed = "".join(
            c.choices[0].text
            for c in self.client.completions.create(
                model=self.model,
                prompt="The three primary colors are",
                max_tokens=16,
                temperature=0,
                stream=True,
            )
            if c.choices
        )
        assert streamed == text, (streamed, text)
        return repr(text)

    def embeddings(self):
        texts = ["The cat sits on the mat.", "A dog runs in the park.", "Cats sit on mats."]
        # The client asks for base64 unless told otherwise.
        result = self.client.embeddings.create(model=self.model, input=texts)
        vectors = [d.embedding for d in result.data]
        assert len(vectors) == 3 and [d.index for d in result.data] == [0, 1, 2], result.data
        dim = len(vectors[0])
        assert dim > 0 and all(len(v) == dim for v in vectors), [len(v) for v in vectors]
        assert all(math.isfinite(x) for v in vectors for x in v)
        for v in vectors:
            assert abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-3, "not L2-normalised"
        floats = self.client.embeddings.create(model=self.model, input=texts[0], encoding_format="float")
        assert len(floats.data) == 1
        assert max(abs(a - b) for a, b in zip(floats.data[0].embedding, vectors[0])) < 1e-5
        assert result.usage.prompt_tokens > 0, result.usage
        return f"dimension {dim}"

    def json_schema(self):
        result = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": "Describe a banana as JSON."}],
            temperature=0,
            max_tokens=200,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "fruit", "schema": FRUIT_SCHEMA, "strict": True},
            },
        )
        text = result.choices[0].message.content
        assert result.choices[0].finish_reason == "stop", result
        value = json.loads(text)
        jsonschema.validate(value, FRUIT_SCHEMA)
        # The same under sampling, streamed.
        chunks = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": "Describe an apple as JSON."}],
            temperature=0.8,
            seed=7,
            max_tokens=200,
            stream=True,
            response_format={"type": "json_schema", "json_schema": {"name": "fruit", "schema": FRUIT_SCHEMA}},
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        jsonschema.validate(json.loads(streamed), FRUIT_SCHEMA)
        # An unsupported keyword is a 400 naming it.
        try:
            self.client.chat.completions.create(
                model=self.model,
                messages=MESSAGES,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "^a+$"}},
                },
            )
            raise AssertionError("a schema with `pattern` was accepted")
        except openai.BadRequestError as error:
            assert "pattern" in str(error), error
        return text.replace("\n", " ")

    def concurrent_streams(self):
        results = [None] * 16
        errors = []

        def one(i):
            try:
                stream = self.client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "user", "content": f"Write a short sentence about the number {i}."}],
                    temperature=0.7,
                    seed=i,
                    max_tokens=16,
                    stream=True,
                )
                text, finish = "", None
                for chunk in stream:
                    if chunk.choices:
                        text += chunk.choices[0].delta.content or ""
                        finish = chunk.choices[0].finish_reason or finish
                results[i] = (text, finish)
            except Exception as error:  # noqa: BLE001
                errors.append((i, repr(error)))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert all(r is not None and r[0].strip() and r[1] in ("stop", "length") for r in results), results
        return f"{len(results)} streams completed"

    def wrong_api_key(self):
        bad = openai.OpenAI(base_url=self.base, api_key="wrong-key", max_retries=0)
        try:
            bad.models.list()
            raise AssertionError("a wrong key was accepted")
        except openai.AuthenticationError as error:
            assert error.status_code == 401, error
            assert error.body and error.body.get("code") == "invalid_api_key", error.body
        status, body = self.raw("GET", "/health", key="wrong-key")
        assert status == 200 and body["status"] == "ok", (status, body)
        return "401; /health open"

    def invalid_requests(self):
        status, body = self.raw("POST", "/v1/chat/completions", b'{"messages": [')
        assert status == 400, (status, body)
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert error["type"] == "invalid_request_error", error
        status, body = self.raw("POST", "/v1/chat/completions", {"messages": MESSAGES, "temperature": "hot"})
        assert status == 400 and body["error"]["param"] == "temperature", (status, body)
        status, body = self.raw("POST", "/v1/chat/completions", {"messages": "hello"})
        assert status == 400 and body["error"]["param"] == "messages", (status, body)
        status, body = self.raw("POST", "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 10**6})
        assert status == 400 and body["error"]["param"] == "max_tokens", (status, body)
        status, body = self.raw("POST", "/v1/completions", {"prompt": "x" * 20000, "max_tokens": 4})
        assert status == 400 and body["error"]["code"] == "context_length_exceeded", (status, body)
        status, body = self.raw("POST", "/v1/embeddings", {"input": [1, 2, 3]})
        assert status == 400 and body["error"]["param"] == "input", (status, body)
        status, body = self.oversized_body()
        assert status == 413 and "error" in body, (status, body)
        status, body = self.raw("GET", "/v1/nothing")
        assert status == 404 and "error" in body, (status, body)
        try:
            self.client.chat.completions.create(model=self.model, messages=MESSAGES, temperature=5)
            raise AssertionError("temperature 5 was accepted")
        except openai.BadRequestError as error:
            assert error.body["param"] == "temperature", error.body
        return "400/413/404 with OpenAI error bodies"

    def disconnect_mid_stream(self):
        url = urllib.parse.urlparse(self.root)
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": "Tell me a very long story about a dragon."}],
                "max_tokens": 800,
                "stream": True,
            }
        ).encode()
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.hostname}\r\n"
            f"Authorization: Bearer {self.args.api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock = socket.create_connection((url.hostname, url.port), timeout=120)
        sock.sendall(head + body)
        received = b""
        while received.count(b"data: ") < 5:
            data = sock.recv(4096)
            assert data, f"the server closed the stream early: {received!r}"
            received += data
        assert received.startswith(b"HTTP/1.1 200"), received[:200]
        sock.close()
        # The server goes on serving (and logs the cancellation: the Rust test reads it).
        time.sleep(0.5)
        status, health = self.raw("GET", "/health")
        assert status == 200 and health["status"] == "ok", (status, health)
        result = self.client.completions.create(model=self.model, prompt="Hello", max_tokens=4, temperature=0)
        assert result.choices[0].text is not None
        return f"closed after {received.count(b'data: ')} chunks; server healthy"

    def hot_swap(self):
        # A stream that runs while the model is swapped finishes on the old model.
        first = self.model
        stream = self.client.chat.completions.create(
            model=first,
            messages=[{"role": "user", "content": "Count from one to twenty in words."}],
            temperature=0,
            max_tokens=48,
            stream=True,
        )
        iterator = iter(stream)
        chunk = next(iterator)
        status, body = self.raw("POST", "/v1/models/load", {"model": self.args.gemma3})
        assert status == 200, (status, body)
        rest = list(iterator)
        assert all(c.model == first for c in [chunk, *rest]), {c.model for c in rest}
        assert any(c.choices and c.choices[0].finish_reason for c in rest), "the old stream did not finish"
        models = [m.id for m in self.client.models.list().data]
        assert len(models) == 1 and "gemma" in models[0].lower(), models
        gemma = models[0]
        result = self.client.completions.create(
            model=models[0], prompt="The capital of France is", max_tokens=8, temperature=0
        )
        assert result.model == models[0] and result.choices[0].text.strip(), result
        chat = self.client.chat.completions.create(model=models[0], messages=MESSAGES, temperature=0, max_tokens=8)
        assert chat.model == models[0], chat
        # Unloaded: generation answers 503.
        status, body = self.raw("POST", "/v1/models/unload", {})
        assert status == 200, (status, body)
        try:
            self.client.completions.create(model=models[0], prompt="x", max_tokens=2)
            raise AssertionError("a request without a model succeeded")
        except openai.InternalServerError as error:
            assert error.status_code == 503, error
            assert error.body["code"] == "model_not_loaded", error.body
        assert self.client.models.list().data == []
        status, body = self.raw("POST", "/v1/models/load", {"model": "/no/such/model.gguf"})
        assert status == 400 and body["error"]["param"] == "model", (status, body)
        status, body = self.raw("POST", "/v1/models/load", {"model": self.args.smollm2})
        assert status == 200, (status, body)
        models = [m.id for m in self.client.models.list().data]
        assert models == [first], models
        again = self.client.completions.create(model=first, prompt="Hello", max_tokens=4, temperature=0)
        assert again.model == first
        return f"{first} -> {gemma} -> unloaded -> {first}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--smollm2", required=True)
    parser.add_argument("--gemma3", required=True)
    args = parser.parse_args()
    checks = Checks(args)
    for name in [
        "models_list",
        "chat_stream_equals_non_stream",
        "stream_usage",
        "completions",
        "embeddings",
        "json_schema",
        "concurrent_streams",
        "wrong_api_key",
        "invalid_requests",
        "disconnect_mid_stream",
        "hot_swap",
    ]:
        checks.run(name, getattr(checks, name))
    if checks.failures:
        print(f"{len(checks.failures)} check(s) failed: {', '.join(checks.failures)}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
